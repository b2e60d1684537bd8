package mongostore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/smsgw/smsgw"
)

// InboundCollection holds mobile-originated messages, routed or not.
const InboundCollection = "inbound"

// Page sizes of the listings.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// CreateInboundIndexes creates the indexes behind the inbound listing and
// the failed-notification listing. It is idempotent; call it once at start
// (or from `smsgw migrate`).
func (s *Store) CreateInboundIndexes(ctx context.Context) error {
	indexes := []struct {
		coll *mongo.Collection
		name string
		keys bson.D
	}{
		{s.inbound(), "customerId_receivedAt", bson.D{{Key: "customerId", Value: 1}, {Key: "receivedAt", Value: -1}, {Key: "_id", Value: -1}}},
		{s.events, "type_customerId_at", bson.D{{Key: "type", Value: 1}, {Key: "customerId", Value: 1}, {Key: "at", Value: -1}}},
	}
	for _, ix := range indexes {
		if err := s.ensureIndex(ctx, ix.coll, ix.name, ix.keys); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) inbound() *mongo.Collection { return s.db.Collection(InboundCollection) }

// inboundDoc is an inbound message as stored. Times are kept to the millisecond.
type inboundDoc struct {
	ID         string    `bson:"_id"`
	CustomerID string    `bson:"customerId"`
	Status     string    `bson:"status"`
	From       string    `bson:"from"`
	To         string    `bson:"to"`
	Text       string    `bson:"text"`
	Encoding   string    `bson:"encoding"`
	Parts      int       `bson:"parts"`
	Partial    bool      `bson:"partial,omitempty"`
	Keyword    string    `bson:"keyword,omitempty"`
	Connector  string    `bson:"connector,omitempty"`
	ReceivedAt time.Time `bson:"receivedAt"`
	UpdatedAt  time.Time `bson:"updatedAt"`
}

func (d inboundDoc) record() smsgw.InboundRecord {
	return smsgw.InboundRecord{
		InboundMessage: smsgw.InboundMessage{
			ID: d.ID, From: d.From, To: d.To, Text: d.Text, Encoding: d.Encoding, Parts: d.Parts,
			Partial: d.Partial, Keyword: d.Keyword, Connector: d.Connector, ReceivedAt: d.ReceivedAt,
		},
		CustomerID: d.CustomerID, Status: d.Status, UpdatedAt: d.UpdatedAt,
	}
}

// PutInbound stores an inbound message. A message already stored under the
// same ID is returned as it was first stored, with created false.
func (s *Store) PutInbound(ctx context.Context, r smsgw.InboundRecord) (smsgw.InboundRecord, bool, error) {
	if r.ID == "" {
		return smsgw.InboundRecord{}, false, smsgw.Errorf(smsgw.EINVALID, "inbound message has no ID")
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = s.now()
	}
	doc := inboundDoc{
		ID: r.ID, CustomerID: r.CustomerID, Status: r.Status, From: r.From, To: r.To, Text: r.Text,
		Encoding: r.Encoding, Parts: r.Parts, Partial: r.Partial, Keyword: r.Keyword, Connector: r.Connector,
		ReceivedAt: r.ReceivedAt.UTC().Truncate(time.Millisecond), UpdatedAt: r.UpdatedAt.UTC().Truncate(time.Millisecond),
	}
	_, err := s.inbound().InsertOne(ctx, doc)
	if err == nil {
		return doc.record(), true, nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		return smsgw.InboundRecord{}, false, fmt.Errorf("mongostore: put inbound %s: %w", r.ID, wrap(err))
	}
	stored, err := s.GetInbound(ctx, r.ID)
	if err != nil {
		return smsgw.InboundRecord{}, false, err
	}
	return stored, false, nil
}

// GetInbound returns one inbound message, or an error with code ENOTFOUND.
func (s *Store) GetInbound(ctx context.Context, id string) (smsgw.InboundRecord, error) {
	var doc inboundDoc
	err := s.inbound().FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return smsgw.InboundRecord{}, smsgw.Errorf(smsgw.ENOTFOUND, "inbound message %q not found", id)
	}
	if err != nil {
		return smsgw.InboundRecord{}, fmt.Errorf("mongostore: get inbound %s: %w", id, wrap(err))
	}
	return doc.record(), nil
}

// SetInboundStatus moves an inbound message to status. An unrouted message
// stays unrouted.
func (s *Store) SetInboundStatus(ctx context.Context, id, status string, at time.Time) error {
	_, err := s.inbound().UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "status", Value: bson.D{{Key: "$ne", Value: smsgw.InboundUnrouted}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: status}, {Key: "updatedAt", Value: at.UTC().Truncate(time.Millisecond)}}}})
	if err != nil {
		return fmt.Errorf("mongostore: set inbound %s status: %w", id, wrap(err))
	}
	return nil
}

// ListInbound lists a customer's inbound messages, or with an empty
// CustomerID the unrouted ones, newest first.
func (s *Store) ListInbound(ctx context.Context, q smsgw.InboundQuery) (smsgw.InboundPage, error) {
	filter := bson.D{{Key: "customerId", Value: q.CustomerID}}
	docs, next, err := listPage(ctx, s.inbound(), filter, "receivedAt", q.Since, q.PageSize, q.PageToken,
		func(d inboundDoc) (time.Time, string) { return d.ReceivedAt, d.ID })
	if err != nil {
		return smsgw.InboundPage{}, fmt.Errorf("mongostore: list inbound: %w", err)
	}
	page := smsgw.InboundPage{Messages: make([]smsgw.InboundRecord, len(docs)), NextPageToken: next}
	for i, d := range docs {
		page.Messages[i] = d.record()
	}
	return page, nil
}

// failedDoc is a notify_failed event as the failed-notification listing reads it.
type failedDoc struct {
	ID         string    `bson:"_id"`
	MessageID  string    `bson:"messageId"`
	CustomerID string    `bson:"customerId"`
	At         time.Time `bson:"at"`
	Data       struct {
		Channel  string   `bson:"channel"`
		Subject  string   `bson:"subject"`
		Reason   string   `bson:"reason"`
		Delivery bson.Raw `bson:"delivery"`
		// DeliveredAt is set by the outbox when an SMPP redelivery of it
		// was acknowledged by the customer's bind.
		DeliveredAt *time.Time `bson:"deliveredAt,omitempty"`
	} `bson:"data"`
}

func (d failedDoc) notification() (smsgw.FailedNotification, error) {
	f := smsgw.FailedNotification{
		ID: smsgw.FailedNotificationID(d.ID), EventID: d.ID, Subject: d.MessageID, What: d.Data.Subject,
		Channel: d.Data.Channel, Reason: d.Data.Reason, FailedAt: d.At, DeliveredAt: d.Data.DeliveredAt,
	}
	if len(d.Data.Delivery) > 0 {
		if err := bson.Unmarshal(d.Data.Delivery, &f.Delivery); err != nil {
			return f, fmt.Errorf("delivery of %s: %w", d.ID, err)
		}
	}
	return f, nil
}

// notifiedEventID is the ID of the event Activities.Notify records when the
// delivery a notify_failed event holds goes through after all.
func notifiedEventID(f smsgw.FailedNotification) string {
	return f.Subject + ":notified-" + f.Channel + "-" + f.What
}

// ListFailedNotifications lists a customer's failed notifications, newest
// first, each with the time it was delivered after all, if it was.
func (s *Store) ListFailedNotifications(ctx context.Context, customerID, pageToken string, pageSize int) ([]smsgw.FailedNotification, string, error) {
	filter := bson.D{{Key: "type", Value: smsgw.EventNotifyFailed}, {Key: "customerId", Value: customerID}}
	docs, next, err := listPage(ctx, s.events, filter, "at", time.Time{}, pageSize, pageToken,
		func(d failedDoc) (time.Time, string) { return d.At, d.ID })
	if err != nil {
		return nil, "", fmt.Errorf("mongostore: list failed notifications: %w", err)
	}
	out := make([]smsgw.FailedNotification, 0, len(docs))
	for _, d := range docs {
		f, err := d.notification()
		if err != nil {
			s.log.Warn("failed notification with an unreadable delivery", "event", d.ID, "err", err)
		}
		out = append(out, f)
	}
	if err := s.markDelivered(ctx, out); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// FailedNotification returns one failed notification by its event ID, or an
// error with code ENOTFOUND.
func (s *Store) FailedNotification(ctx context.Context, eventID string) (smsgw.FailedNotification, error) {
	var doc failedDoc
	err := s.events.FindOne(ctx, bson.D{{Key: "_id", Value: eventID}, {Key: "type", Value: smsgw.EventNotifyFailed}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return smsgw.FailedNotification{}, smsgw.Errorf(smsgw.ENOTFOUND, "failed notification %q not found", smsgw.FailedNotificationID(eventID))
	}
	if err != nil {
		return smsgw.FailedNotification{}, fmt.Errorf("mongostore: failed notification %s: %w", eventID, wrap(err))
	}
	f, err := doc.notification()
	if err != nil {
		return f, fmt.Errorf("mongostore: %w", err)
	}
	one := []smsgw.FailedNotification{f}
	if err := s.markDelivered(ctx, one); err != nil {
		return f, err
	}
	return one[0], nil
}

// markDelivered sets DeliveredAt of each failed notification whose delivery
// has gone through since (its notified event was written after it failed).
func (s *Store) markDelivered(ctx context.Context, fs []smsgw.FailedNotification) error {
	if len(fs) == 0 {
		return nil
	}
	ids := make(bson.A, len(fs))
	for i, f := range fs {
		ids[i] = notifiedEventID(f)
	}
	cur, err := s.events.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "at", Value: 1}}))
	if err != nil {
		return fmt.Errorf("mongostore: redelivered notifications: %w", wrap(err))
	}
	var done []struct {
		ID string    `bson:"_id"`
		At time.Time `bson:"at"`
	}
	if err := cur.All(ctx, &done); err != nil {
		return fmt.Errorf("mongostore: redelivered notifications: %w", wrap(err))
	}
	at := map[string]time.Time{}
	for _, d := range done {
		at[d.ID] = d.At
	}
	for i := range fs {
		// A notified event older than the failure is the first delivery's
		// (an SMPP receipt written to the outbox, then expired there).
		if t, ok := at[notifiedEventID(fs[i])]; ok && fs[i].DeliveredAt == nil && !t.Before(fs[i].FailedAt) {
			fs[i].DeliveredAt = &t
		}
	}
	return nil
}

// cursor is where a listing stopped: the time and ID of its last item.
type cursor struct {
	At int64  `json:"t"` // Unix milliseconds
	ID string `json:"i"`
}

// listPage runs a newest-first listing on coll: filter, items at or after
// since, after the page token's cursor, sorted by timeField then _id, both
// descending. It returns the page and the token of the next one ("" on the
// last). key gives an item's sort key.
func listPage[T any](ctx context.Context, coll *mongo.Collection, filter bson.D, timeField string, since time.Time,
	size int, token string, key func(T) (time.Time, string)) ([]T, string, error) {
	switch {
	case size <= 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	if !since.IsZero() {
		filter = append(filter, bson.E{Key: timeField, Value: bson.D{{Key: "$gte", Value: since.UTC().Truncate(time.Millisecond)}}})
	}
	if token != "" {
		c, err := parseCursor(token)
		if err != nil {
			return nil, "", err
		}
		t := time.UnixMilli(c.At).UTC()
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: timeField, Value: bson.D{{Key: "$lt", Value: t}}}},
			bson.D{{Key: timeField, Value: t}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: c.ID}}}},
		}})
	}
	cur, err := coll.Find(ctx, filter, options.Find().
		SetSort(bson.D{{Key: timeField, Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(size)+1))
	if err != nil {
		return nil, "", wrap(err)
	}
	docs := []T{}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, "", wrap(err)
	}
	if len(docs) <= size {
		return docs, "", nil
	}
	docs = docs[:size]
	at, id := key(docs[size-1])
	raw, _ := json.Marshal(cursor{At: at.UnixMilli(), ID: id})
	return docs, base64.RawURLEncoding.EncodeToString(raw), nil
}

func parseCursor(token string) (cursor, error) {
	var c cursor
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil {
		err = json.Unmarshal(raw, &c)
	}
	if err != nil || c.ID == "" || strings.ContainsRune(c.ID, 0) {
		return cursor{}, smsgw.Errorf(smsgw.EINVALID, "pageToken is not one this gateway gave out")
	}
	return c, nil
}
