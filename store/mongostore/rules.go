package mongostore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/smsgw/smsgw"
)

// OptOutsCollection is the opt-out list, shared by every replica: one
// document per customer, sender ("" for the customer as a whole) and
// number, whose ID is all three, so a submission's check is a lookup by ID.
// (The velocity and pumping-guard counters are in the reporting database,
// whose upserts are atomic; see mysqlstore.AddVelocity.)
const OptOutsCollection = "optouts"

// CreateRulesIndexes creates the index of the opt-out listing. It is
// idempotent; call it once at start.
func (s *Store) CreateRulesIndexes(ctx context.Context) error {
	return s.ensureIndex(ctx, s.db.Collection(OptOutsCollection), "customerId_id",
		bson.D{{Key: "customerId", Value: 1}, {Key: "_id", Value: 1}})
}

// optOutID is an entry's document ID: customer, sender and number, so an
// entry is stored once and its lookup is by ID.
func optOutID(customerID, sender, number string) string {
	return customerID + "\x00" + sender + "\x00" + number
}

type optOutDoc struct {
	ID           string `bson:"_id"`
	smsgw.OptOut `bson:",inline"`
}

// OptedOut implements smsgw.OptOutList: an entry of the customer as a
// whole, or of sender when it is a number. Each entry is looked up by its
// _id alone, which MongoDB answers from its index, and so does the
// embedded MongoDB-wire server, from the index devdb adds (FerretDB's own
// is on another expression; a filter on anything more than the _id, $in
// included, reads the whole collection there), so a long opt-out list
// costs no more per submission than a short one (BenchmarkOptedOut).
func (s *Store) OptedOut(ctx context.Context, customerID, sender, number string) (bool, error) {
	ids := []string{optOutID(customerID, "", number)}
	if sender != "" {
		ids = append(ids, optOutID(customerID, sender, number))
	}
	for _, id := range ids {
		err := s.db.Collection(OptOutsCollection).FindOne(ctx, bson.D{{Key: "_id", Value: id}},
			options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			continue
		case err != nil:
			return false, fmt.Errorf("mongostore: opt-out of %s: %w", customerID, wrap(err))
		}
		return true, nil
	}
	return false, nil
}

// AddOptOuts implements smsgw.OptOutList. An entry already there keeps
// its first time, source and keyword.
func (s *Store) AddOptOuts(ctx context.Context, entries []smsgw.OptOut) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	models := make([]mongo.WriteModel, 0, len(entries))
	for _, e := range entries {
		e.At = e.At.UTC().Truncate(time.Millisecond)
		if e.At.IsZero() {
			e.At = s.now().UTC().Truncate(time.Millisecond)
		}
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: optOutID(e.CustomerID, e.Sender, e.Number)}}).
			SetUpdate(bson.D{{Key: "$setOnInsert", Value: e}}).
			SetUpsert(true))
	}
	res, err := s.db.Collection(OptOutsCollection).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	if err != nil {
		return 0, fmt.Errorf("mongostore: add opt-outs: %w", wrap(err))
	}
	return int(res.UpsertedCount), nil
}

// RemoveOptOut implements smsgw.OptOutList.
func (s *Store) RemoveOptOut(ctx context.Context, customerID, sender, number string) (bool, error) {
	res, err := s.db.Collection(OptOutsCollection).DeleteOne(ctx, bson.D{{Key: "_id", Value: optOutID(customerID, sender, number)}})
	if err != nil {
		return false, fmt.Errorf("mongostore: remove opt-out: %w", wrap(err))
	}
	return res.DeletedCount > 0, nil
}

// Page sizes of the opt-out listing.
const (
	DefaultOptOutPageSize = 100
	MaxOptOutPageSize     = 1000
)

// ListOptOuts implements smsgw.OptOutList: the customer's entries ordered
// by sender and number; the page token is the last entry's ID.
func (s *Store) ListOptOuts(ctx context.Context, q smsgw.OptOutQuery) ([]smsgw.OptOut, string, error) {
	size := q.PageSize
	if size <= 0 {
		size = DefaultOptOutPageSize
	}
	size = min(size, MaxOptOutPageSize)
	filter := bson.D{{Key: "customerId", Value: q.CustomerID}}
	if q.Sender != "" {
		filter = append(filter, bson.E{Key: "sender", Value: q.Sender})
	}
	if q.PageToken != "" {
		if !strings.HasPrefix(q.PageToken, q.CustomerID+"\x00") {
			return nil, "", smsgw.Errorf(smsgw.EINVALID, "pageToken is not one this listing gave")
		}
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: q.PageToken}}})
	}
	cur, err := s.db.Collection(OptOutsCollection).Find(ctx, filter,
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(size+1)))
	if err != nil {
		return nil, "", fmt.Errorf("mongostore: list opt-outs: %w", wrap(err))
	}
	var docs []optOutDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, "", fmt.Errorf("mongostore: list opt-outs: %w", wrap(err))
	}
	next := ""
	if len(docs) > size {
		docs = docs[:size]
		next = docs[size-1].ID
	}
	out := make([]smsgw.OptOut, len(docs))
	for i, d := range docs {
		out[i] = d.OptOut
		out[i].At = d.At.UTC()
	}
	return out, next, nil
}
