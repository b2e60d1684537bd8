package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// MOOffersCollection remembers the single-part MO a connector is taking or
// did not answer ESME_ROK, by connector and content: an SMPP deliver_sm
// carries no ID of its own, so this is how an SMSC offering the same
// deliver_sm again is told from a new message that says the same thing.
const MOOffersCollection = "mo_offers"

// moOfferDoc is one MO offer not (yet) answered ESME_ROK.
type moOfferDoc struct {
	ID        string    `bson:"_id"` // the offer key (connector and content)
	MessageID string    `bson:"messageId"`
	OfferedAt time.Time `bson:"offeredAt"` // of the latest offer
}

func (s *Store) moOffers() *mongo.Collection { return s.db.Collection(MOOffersCollection) }

// OfferMO records an offer of the MO named key made at, before its workflow
// is started, and returns the inbound message ID to start it under: the ID
// of an earlier offer of the same MO that was not answered ESME_ROK, made
// no more than window before, or else id. again says which.
func (s *Store) OfferMO(ctx context.Context, key, id string, at time.Time, window time.Duration) (messageID string, again bool, err error) {
	at = at.UTC().Truncate(time.Millisecond)
	var doc moOfferDoc
	err = s.moOffers().FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&doc)
	switch {
	case err == nil && at.Sub(doc.OfferedAt) <= window:
		_, err = s.moOffers().UpdateOne(ctx, bson.D{{Key: "_id", Value: key}}, bson.D{{Key: "$set", Value: bson.D{{Key: "offeredAt", Value: at}}}})
		if err != nil {
			return "", false, fmt.Errorf("mongostore: record the MO offered again: %w", wrap(err))
		}
		return doc.MessageID, true, nil
	case err != nil && !errors.Is(err, mongo.ErrNoDocuments):
		return "", false, fmt.Errorf("mongostore: look up an earlier offer of the MO: %w", wrap(err))
	}
	doc = moOfferDoc{ID: key, MessageID: id, OfferedAt: at}
	_, err = s.moOffers().ReplaceOne(ctx, bson.D{{Key: "_id", Value: key}}, doc, options.Replace().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return "", false, fmt.Errorf("mongostore: record the MO offer: %w", wrap(err))
	}
	return id, false, nil
}

// ForgetMOOffer forgets the offer of the MO named key made at, once it was
// answered ESME_ROK: an identical MO after that is a new message. A later
// offer of the same MO is left alone.
func (s *Store) ForgetMOOffer(ctx context.Context, key string, at time.Time) error {
	at = at.UTC().Truncate(time.Millisecond)
	if _, err := s.moOffers().DeleteOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "offeredAt", Value: at}}); err != nil {
		return fmt.Errorf("mongostore: forget the MO offer: %w", wrap(err))
	}
	return nil
}
