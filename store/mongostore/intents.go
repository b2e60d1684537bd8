package mongostore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/smsgw/smsgw"
)

// Submission intents: before a part's submit_sm is written, the connector
// records that it is about to go upstream. A retried send that finds the
// intent of a part, and no correlation for it, knows the part was sent and
// its outcome is unknown; one that finds no intent knows the part never
// left. Intents are written in batches like correlations and expire with
// them.

// intentDoc is a submission intent as stored.
type intentDoc struct {
	ID          string    `bson:"_id"`
	ConnectorID string    `bson:"connectorId"`
	MessageID   string    `bson:"messageId"`
	Segment     int       `bson:"segment"`
	CreatedAt   time.Time `bson:"createdAt"`
	// Resends counts the submissions of the part after the first
	// (inDoubt: resubmit), across attempts.
	Resends int `bson:"resends,omitempty"`
}

func intentKey(connectorID, messageID string, segment int) string {
	return connectorID + ":" + messageID + ":" + strconv.Itoa(segment)
}

// errIntentSeen marks an intent an earlier attempt had already recorded.
var errIntentSeen = errors.New("submission intent recorded before")

// RecordSubmitIntent records that part segment of a message is about to be
// submitted through a connector, and returns once that is durable. first is
// false when an earlier attempt had recorded it: that attempt may have sent
// the part.
func (s *Store) RecordSubmitIntent(ctx context.Context, connectorID, messageID string, segment int) (first bool, err error) {
	if connectorID == "" || messageID == "" || segment < 1 {
		return false, smsgw.Errorf(smsgw.EINVALID, "submission intent needs a connector, a message ID and a part number")
	}
	doc := intentDoc{ID: intentKey(connectorID, messageID, segment), ConnectorID: connectorID, MessageID: messageID, Segment: segment, CreatedAt: s.now().UTC()}
	err = s.intentWrites.Do(ctx, doc)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errIntentSeen):
		return false, nil
	}
	return false, fmt.Errorf("mongostore: record submission intent %s: %w", doc.ID, err)
}

// insertIntents writes a batch of intents in one unordered insert. An
// intent already stored comes back as errIntentSeen, so that its caller
// knows an earlier attempt got that far.
func (s *Store) insertIntents(ctx context.Context, docs []intentDoc) []error {
	batch := make([]any, len(docs))
	for i, d := range docs {
		batch[i] = d
	}
	_, err := s.intents.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false))
	if err == nil {
		return nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return itemErrors(err, len(docs)) // failed as a whole
	}
	errs := make([]error, len(docs))
	for _, we := range bwe.WriteErrors {
		if we.Index < 0 || we.Index >= len(docs) {
			continue
		}
		if we.Code == 11000 || we.Code == 11001 {
			errs[we.Index] = errIntentSeen
		} else {
			errs[we.Index] = fmt.Errorf("document %d: %w", we.Index, we)
		}
	}
	return errs
}

// ForgetSubmitIntent removes the intent of a part whose submit_sm was
// never written or was refused: a retry may send it as if for the first time.
func (s *Store) ForgetSubmitIntent(ctx context.Context, connectorID, messageID string, segment int) error {
	id := intentKey(connectorID, messageID, segment)
	if _, err := s.intents.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return fmt.Errorf("mongostore: forget submission intent %s: %w", id, wrap(err))
	}
	return nil
}

// AddResends adds add (1 before a resubmission, -1 after one that certainly
// did not reach upstream, 0 to read) to the resubmissions recorded on a
// part's intent and returns them.
func (s *Store) AddResends(ctx context.Context, connectorID, messageID string, segment, add int) (int, error) {
	id := intentKey(connectorID, messageID, segment)
	var doc intentDoc
	err := s.intents.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "resends", Value: add}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mongostore: resubmissions of %s: %w", id, wrap(err))
	}
	return doc.Resends, nil
}

// SegmentCorrelation finds the correlation recorded for part segment of a
// message on a connector: the upstream ID the SMSC gave it. ok is false
// when none was recorded.
func (s *Store) SegmentCorrelation(ctx context.Context, connectorID, messageID string, segment int) (c smsgw.Correlation, ok bool, err error) {
	var doc correlationDoc
	err = s.correlations.FindOne(ctx, bson.D{
		{Key: "messageId", Value: messageID}, {Key: "segment", Value: segment}, {Key: "connectorId", Value: connectorID},
	}, options.FindOne().SetSort(bson.D{{Key: "createdAt", Value: -1}})).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return smsgw.Correlation{}, false, nil
	}
	if err != nil {
		return smsgw.Correlation{}, false, fmt.Errorf("mongostore: correlation of part %d of %s: %w", segment, messageID, wrap(err))
	}
	return smsgw.Correlation{
		ConnectorID: doc.ConnectorID, UpstreamID: doc.UpstreamID, MessageID: doc.MessageID, Segment: doc.Segment, CreatedAt: doc.CreatedAt,
	}, true, nil
}
