package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/smsgw/smsgw"
)

// Collections of the history's own upkeep: imports, erasures.
const (
	// ImportCheckpointsCollection keeps how far each import source was
	// read (`smsgw import`).
	ImportCheckpointsCollection = "import_checkpoints"
	// ErasuresCollection is the audit of erasure requests: when, by whom,
	// what was removed. It holds a hash of the number, never the number.
	ErasuresCollection = "erasures"
)

// checkpointDoc is the position an import source was read to.
type checkpointDoc struct {
	Source    string    `bson:"_id"`
	Pos       int64     `bson:"pos"`
	UpdatedAt time.Time `bson:"updatedAt"`
}

// ImportCheckpoint returns the position source was imported to, 0 when it
// never was.
func (s *Store) ImportCheckpoint(ctx context.Context, source string) (int64, error) {
	var doc checkpointDoc
	err := s.db.Collection(ImportCheckpointsCollection).FindOne(ctx, bson.D{{Key: "_id", Value: source}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mongostore: import checkpoint of %s: %w", source, wrap(err))
	}
	return doc.Pos, nil
}

// SaveImportCheckpoint records that source was imported up to pos.
func (s *Store) SaveImportCheckpoint(ctx context.Context, source string, pos int64) error {
	doc := checkpointDoc{Source: source, Pos: pos, UpdatedAt: s.now().UTC()}
	_, err := s.db.Collection(ImportCheckpointsCollection).ReplaceOne(ctx, bson.D{{Key: "_id", Value: source}}, doc,
		options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("mongostore: save import checkpoint of %s: %w", source, wrap(err))
	}
	return nil
}

// HistoryCustomers returns the customers that have events or inbound
// messages, for the retention purge.
func (s *Store) HistoryCustomers(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, coll := range []*mongo.Collection{s.events, s.inbound()} {
		// A $group rather than distinct: the driver cannot read FerretDB
		// v1's distinct reply.
		cur, err := coll.Aggregate(ctx, bson.A{bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$customerId"}}}}})
		if err != nil {
			return nil, fmt.Errorf("mongostore: customers of %s: %w", coll.Name(), wrap(err))
		}
		var docs []struct {
			ID string `bson:"_id"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			return nil, fmt.Errorf("mongostore: customers of %s: %w", coll.Name(), wrap(err))
		}
		for _, d := range docs {
			if !seen[d.ID] {
				seen[d.ID] = true
				out = append(out, d.ID)
			}
		}
	}
	return out, nil
}

// PurgeHistory deletes a customer's events dated before before, and its
// inbound messages received before then, batch documents at a time, and
// returns how many it deleted. Each batch is one short delete by _id, so
// the purge never holds the collections for long.
func (s *Store) PurgeHistory(ctx context.Context, customerID string, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = 1000
	}
	before = before.UTC()
	var total int64
	for _, p := range []struct {
		coll  *mongo.Collection
		field string
	}{{s.events, "at"}, {s.inbound(), "receivedAt"}} {
		filter := bson.D{{Key: "customerId", Value: customerID}, {Key: p.field, Value: bson.D{{Key: "$lt", Value: before}}}}
		n, err := deleteInBatches(ctx, p.coll, filter, batch)
		total += n
		if err != nil {
			return total, fmt.Errorf("mongostore: purge %s of %s: %w", p.coll.Name(), customerID, err)
		}
	}
	return total, nil
}

// deleteInBatches deletes the documents matching filter, batch at a time:
// it reads batch _ids, deletes them, and goes on until fewer are found.
func deleteInBatches(ctx context.Context, coll *mongo.Collection, filter bson.D, batch int) (int64, error) {
	var total int64
	for {
		cur, err := coll.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(batch)))
		if err != nil {
			return total, wrap(err)
		}
		var docs []struct {
			ID any `bson:"_id"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			return total, wrap(err)
		}
		if len(docs) == 0 {
			return total, nil
		}
		ids := make(bson.A, len(docs))
		for i, d := range docs {
			ids[i] = d.ID
		}
		res, err := coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
		if err != nil {
			return total, wrap(err)
		}
		total += res.DeletedCount
		if len(docs) < batch {
			return total, nil
		}
	}
}

// InboundIDsByNumber returns the IDs of the inbound messages from or to
// any of numbers.
func (s *Store) InboundIDsByNumber(ctx context.Context, numbers []string) ([]string, error) {
	in := bson.D{{Key: "$in", Value: numbers}}
	cur, err := s.inbound().Find(ctx, bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: "from", Value: in}}, bson.D{{Key: "to", Value: in}}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongostore: inbound messages by number: %w", wrap(err))
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongostore: inbound messages by number: %w", wrap(err))
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids, nil
}

// FailedNotificationIDs returns the event IDs of the failed notifications
// of messages: each may have had a redelivery workflow.
func (s *Store) FailedNotificationIDs(ctx context.Context, messageIDs []string) ([]string, error) {
	if len(messageIDs) == 0 {
		return nil, nil
	}
	cur, err := s.events.Find(ctx, bson.D{
		{Key: "messageId", Value: bson.D{{Key: "$in", Value: messageIDs}}},
		{Key: "type", Value: smsgw.EventNotifyFailed},
	}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongostore: failed notifications: %w", wrap(err))
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongostore: failed notifications: %w", wrap(err))
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids, nil
}

// EraseMessages deletes everything the event store keeps of messages (and
// inbound messages) by ID: their events and failed notifications, inbound
// documents, correlations in flight and archived, submission intents and
// the SMPP deliveries owed for them. Deleting what is already gone is no
// error, so an erasure can be run again.
func (s *Store) EraseMessages(ctx context.Context, ids []string) (map[string]int64, error) {
	out := map[string]int64{}
	if len(ids) == 0 {
		return out, nil
	}
	in := bson.D{{Key: "$in", Value: ids}}
	for _, d := range []struct {
		coll  string
		field string
	}{
		{EventsCollection, "messageId"},
		{InboundCollection, "_id"},
		{CorrelationsCollection, "messageId"},
		{CorrelationArchiveCollection, "messageId"},
		{IntentsCollection, "messageId"},
		{MOOffersCollection, "messageId"},
		{OutboxCollection, "subject"},
	} {
		res, err := s.db.Collection(d.coll).DeleteMany(ctx, bson.D{{Key: d.field, Value: in}})
		if err != nil {
			return out, fmt.Errorf("mongostore: erase from %s: %w", d.coll, wrap(err))
		}
		out[d.coll] = res.DeletedCount
	}
	return out, nil
}

// RecordErasure writes the audit record of an erasure.
func (s *Store) RecordErasure(ctx context.Context, e smsgw.ErasureRecord) error {
	e.StartedAt, e.FinishedAt = e.StartedAt.UTC(), e.FinishedAt.UTC()
	_, err := s.db.Collection(ErasuresCollection).ReplaceOne(ctx, bson.D{{Key: "_id", Value: e.ID}}, e, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("mongostore: record erasure %s: %w", e.ID, wrap(err))
	}
	return nil
}

// Erasures returns the audit records of the erasures of a number's hash,
// oldest first.
func (s *Store) Erasures(ctx context.Context, numberHash string) ([]smsgw.ErasureRecord, error) {
	cur, err := s.db.Collection(ErasuresCollection).Find(ctx, bson.D{{Key: "numberHash", Value: numberHash}},
		options.Find().SetSort(bson.D{{Key: "startedAt", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongostore: erasures: %w", wrap(err))
	}
	out := []smsgw.ErasureRecord{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("mongostore: erasures: %w", wrap(err))
	}
	return out, nil
}
