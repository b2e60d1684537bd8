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

// OutboxCollection holds what is owed to customers' SMPP binds: delivery
// receipts and mobile-originated messages, one document per deliver_sm.
const OutboxCollection = "smpp_outbox"

// OutboxLeasesCollection records who claimed which attempt of an item.
const OutboxLeasesCollection = "smpp_outbox_leases"

// OutboxSentCollection remembers the items already delivered, until they
// expire, so a retried Put does not deliver one again. Delivered items leave
// the outbox itself, so claims only ever look through what is pending.
const OutboxSentCollection = "smpp_outbox_sent"

// sentDoc is the memory of one delivered item.
type sentDoc struct {
	ID         string    `bson:"_id"`
	CustomerID string    `bson:"customerId"`
	SentAt     time.Time `bson:"sentAt"`
	ExpiresAt  time.Time `bson:"expiresAt"`
}

// Outbox is the smpp_outbox collection. It needs neither transactions nor
// change streams, and does not rely on findOneAndUpdate being atomic
// (FerretDB v1's is not): a replica claims attempt n of an item by
// inserting the lease document "<item ID>:<n>", and an insert on a unique
// _id succeeds for exactly one replica on every server.
type Outbox struct {
	coll   *mongo.Collection
	leases *mongo.Collection
	sent   *mongo.Collection
	events *mongo.Collection
	now    func() time.Time
}

// leaseDoc is one claimed attempt of an outbox item.
type leaseDoc struct {
	ID     string    `bson:"_id"` // <item ID>:<attempt>
	ItemID string    `bson:"itemId"`
	Owner  string    `bson:"owner"`
	Until  time.Time `bson:"until"`
}

// Outbox returns the outbox, creating its indexes.
func (s *Store) Outbox(ctx context.Context) (*Outbox, error) {
	o := &Outbox{
		coll:   s.db.Collection(OutboxCollection),
		leases: s.db.Collection(OutboxLeasesCollection),
		sent:   s.db.Collection(OutboxSentCollection),
		events: s.events,
		now:    s.now,
	}
	indexes := []struct {
		coll *mongo.Collection
		name string
		keys bson.D
	}{
		{o.coll, "customerId_createdAt", bson.D{{Key: "customerId", Value: 1}, {Key: "createdAt", Value: 1}}},
		{o.coll, "expiresAt", bson.D{{Key: "expiresAt", Value: 1}}},
		{o.leases, "itemId", bson.D{{Key: "itemId", Value: 1}}},
		{o.sent, "expiresAt", bson.D{{Key: "expiresAt", Value: 1}}},
	}
	for _, ix := range indexes {
		_, err := ix.coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys, Options: options.Index().SetName(ix.name)})
		if err != nil {
			return nil, fmt.Errorf("mongostore: create index %s on %s: %w", ix.name, ix.coll.Name(), wrap(err))
		}
	}
	return o, nil
}

// Put writes items. An item whose ID is already stored is left as it is, so
// a retried write neither duplicates nor resets one being sent.
func (o *Outbox) Put(ctx context.Context, items ...smsgw.OutboxItem) error {
	if len(items) == 0 {
		return nil
	}
	docs := make([]any, 0, len(items))
	for i, it := range items {
		if it.ID == "" || it.CustomerID == "" || len(it.PDU) == 0 {
			return smsgw.Errorf(smsgw.EINVALID, "outbox item %d has no ID, customer or PDU", i)
		}
		delivered, err := o.sent.CountDocuments(ctx, bson.D{{Key: "_id", Value: it.ID}})
		if err != nil {
			return fmt.Errorf("mongostore: put outbox item %s: %w", it.ID, wrap(err))
		}
		if delivered > 0 {
			continue // a retried write of something already delivered
		}
		if it.CreatedAt.IsZero() {
			it.CreatedAt = o.now()
		}
		it.CreatedAt, it.ExpiresAt, it.LeaseUntil = it.CreatedAt.UTC(), it.ExpiresAt.UTC(), time.Unix(0, 0).UTC()
		it.LeaseOwner, it.Attempts, it.State, it.SentAt = "", 0, smsgw.OutboxPending, time.Time{}
		docs = append(docs, it)
	}
	if len(docs) == 0 {
		return nil
	}
	_, err := o.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err != nil && !onlyDuplicates(err) {
		return fmt.Errorf("mongostore: put %d outbox items: %w", len(items), wrap(err))
	}
	// An item delivered and acknowledged between the check above and the
	// insert is back in the outbox: take it out again. (Claim skips such an
	// item too, should it get there first.)
	for _, d := range docs {
		id := d.(smsgw.OutboxItem).ID
		if o.delivered(ctx, id) {
			_, _ = o.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "attempts", Value: 0}})
		}
	}
	return nil
}

// delivered reports whether an item is remembered as delivered. An error
// reads as not delivered: the caller then errs on the side of sending.
func (o *Outbox) delivered(ctx context.Context, id string) bool {
	n, err := o.sent.CountDocuments(ctx, bson.D{{Key: "_id", Value: id}})
	return err == nil && n > 0
}

// claimBatch is how many candidates one Claim looks at.
const claimBatch = 8

// Claim takes the oldest item of a customer that is neither expired, nor
// leased, nor waiting for a retry, and leases it to owner until now+lease.
// ok is false when there is none.
func (o *Outbox) Claim(ctx context.Context, customerID, owner string, now time.Time, lease time.Duration) (it smsgw.OutboxItem, ok bool, err error) {
	now = now.UTC()
	filter := bson.D{
		{Key: "customerId", Value: customerID},
		{Key: "state", Value: smsgw.OutboxPending},
		{Key: "expiresAt", Value: bson.D{{Key: "$gt", Value: now}}},
		{Key: "leaseUntil", Value: bson.D{{Key: "$lte", Value: now}}},
	}
	cur, err := o.coll.Find(ctx, filter, options.Find().
		SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}).
		SetLimit(claimBatch))
	if err != nil {
		return smsgw.OutboxItem{}, false, fmt.Errorf("mongostore: find outbox items of %s: %w", customerID, wrap(err))
	}
	var candidates []smsgw.OutboxItem
	if err := cur.All(ctx, &candidates); err != nil {
		return smsgw.OutboxItem{}, false, fmt.Errorf("mongostore: find outbox items of %s: %w", customerID, wrap(err))
	}
	for _, c := range candidates {
		attempt, won, err := o.takeLease(ctx, c, owner, now, lease)
		if err != nil {
			return smsgw.OutboxItem{}, false, err
		}
		if !won {
			continue
		}
		c.LeaseOwner, c.LeaseUntil, c.Attempts = owner, now.Add(lease), attempt
		res, err := o.coll.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: c.ID}, {Key: "state", Value: smsgw.OutboxPending}, {Key: "leaseUntil", Value: bson.D{{Key: "$lte", Value: now}}}},
			bson.D{{Key: "$set", Value: bson.D{
				{Key: "leaseOwner", Value: owner}, {Key: "leaseUntil", Value: c.LeaseUntil}, {Key: "attempts", Value: attempt},
			}}})
		if err != nil {
			return smsgw.OutboxItem{}, false, fmt.Errorf("mongostore: lease outbox item %s: %w", c.ID, wrap(err))
		}
		if res.MatchedCount == 0 {
			// The candidate was read before another replica delivered it (and
			// dropped its leases), or released it for a later retry: not ours.
			_, _ = o.leases.DeleteOne(ctx, bson.D{{Key: "_id", Value: leaseID(c.ID, attempt)}})
			continue
		}
		if o.delivered(ctx, c.ID) {
			// Put again by a retried write after it was delivered.
			_, _ = o.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: c.ID}})
			o.dropLeases(ctx, c.ID)
			continue
		}
		return c, true, nil
	}
	return smsgw.OutboxItem{}, false, nil
}

// takeLease claims the next attempt of an item by inserting its lease
// document. An attempt already taken whose lease has run out (its owner
// stopped before marking the item) is skipped for the one after it.
func (o *Outbox) takeLease(ctx context.Context, it smsgw.OutboxItem, owner string, now time.Time, lease time.Duration) (attempt int, won bool, err error) {
	attempt = it.Attempts + 1
	for range 4 {
		doc := leaseDoc{ID: leaseID(it.ID, attempt), ItemID: it.ID, Owner: owner, Until: now.Add(lease)}
		_, err := o.leases.InsertOne(ctx, doc)
		if err == nil {
			return attempt, true, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return 0, false, fmt.Errorf("mongostore: lease outbox item %s: %w", it.ID, wrap(err))
		}
		var held leaseDoc
		if err := o.leases.FindOne(ctx, bson.D{{Key: "_id", Value: doc.ID}}).Decode(&held); err != nil {
			if errors.Is(err, mongo.ErrNoDocuments) {
				return 0, false, nil // acked and cleaned up meanwhile
			}
			return 0, false, fmt.Errorf("mongostore: read lease %s: %w", doc.ID, wrap(err))
		}
		if held.Until.After(now) {
			return 0, false, nil // another replica holds this attempt
		}
		attempt++
	}
	return 0, false, nil
}

func leaseID(itemID string, attempt int) string { return fmt.Sprintf("%s:%d", itemID, attempt) }

// owned reads a pending item, without its PDU, if owner holds its lease.
func (o *Outbox) owned(ctx context.Context, id, owner string) (it smsgw.OutboxItem, ok bool, err error) {
	err = o.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "leaseOwner", Value: owner}, {Key: "state", Value: smsgw.OutboxPending}},
		options.FindOne().SetProjection(bson.D{{Key: "pdu", Value: 0}})).Decode(&it)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return smsgw.OutboxItem{}, false, nil
	case err != nil:
		return smsgw.OutboxItem{}, false, fmt.Errorf("mongostore: outbox item %s: %w", id, wrap(err))
	}
	return it, true, nil
}

// Ack records an item its owner has delivered as sent and takes it out of
// the outbox. An item whose lease another replica has taken since is left
// alone; done reports whether it was this owner's.
func (o *Outbox) Ack(ctx context.Context, id, owner string) (done bool, err error) {
	it, ok, err := o.owned(ctx, id, owner)
	if !ok || err != nil {
		return false, err
	}
	// Remembered first, removed second, so a retried Put never brings a
	// delivered item back; a crash in between leaves it pending as well,
	// and the customer may get that one deliver_sm twice.
	doc := sentDoc{ID: id, CustomerID: it.CustomerID, SentAt: o.now().UTC(), ExpiresAt: it.ExpiresAt}
	if _, err := o.sent.InsertOne(ctx, doc); err != nil && !mongo.IsDuplicateKeyError(err) {
		return false, fmt.Errorf("mongostore: ack outbox item %s: %w", id, wrap(err))
	}
	if _, err := o.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return false, fmt.Errorf("mongostore: ack outbox item %s: %w", id, wrap(err))
	}
	o.dropLeases(ctx, id)
	if it.Delivery != nil && it.Delivery.Redelivers != "" {
		// A redelivery of a failed notification went through: the failure
		// is listed as delivered after all. Its delivery stands even if
		// this mark is lost, so a failure to write it is not reported.
		_, _ = o.events.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: it.Delivery.Redelivers}, {Key: "type", Value: smsgw.EventNotifyFailed}, {Key: "data.deliveredAt", Value: bson.D{{Key: "$exists", Value: false}}}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "data.deliveredAt", Value: o.now().UTC()}}}})
	}
	return true, nil
}

// dropLeases removes the lease documents of an item that is gone. Leftovers
// are harmless, so a failure is not reported.
func (o *Outbox) dropLeases(ctx context.Context, id string) {
	_, _ = o.leases.DeleteMany(ctx, bson.D{{Key: "itemId", Value: id}})
}

// Refuse takes out an item its owner's customer refused for good, and
// records it as a failed notification with the reason, so it is listed and
// can be redelivered like a webhook the customer refused. done reports
// whether the item was this owner's.
func (o *Outbox) Refuse(ctx context.Context, id, owner, reason string) (done bool, err error) {
	it, ok, err := o.owned(ctx, id, owner)
	if !ok || err != nil {
		return false, err
	}
	if it.Delivery != nil {
		ev := smsgw.NotifyFailedEvent(*it.Delivery, reason, "refused-"+strconv.Itoa(it.Attempts), o.now())
		if _, err := o.events.InsertOne(ctx, ev); err != nil && !mongo.IsDuplicateKeyError(err) {
			return false, fmt.Errorf("mongostore: record refused outbox item %s: %w", id, wrap(err))
		}
	}
	if _, err := o.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "leaseOwner", Value: owner}}); err != nil {
		return false, fmt.Errorf("mongostore: refuse outbox item %s: %w", id, wrap(err))
	}
	o.dropLeases(ctx, id)
	return true, nil
}

// Release gives an item back, to be claimed again from retryAt on.
func (o *Outbox) Release(ctx context.Context, id, owner string, retryAt time.Time) error {
	_, err := o.coll.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "leaseOwner", Value: owner}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "leaseOwner", Value: ""}, {Key: "leaseUntil", Value: retryAt.UTC()}}}})
	if err != nil {
		return fmt.Errorf("mongostore: release outbox item %s: %w", id, wrap(err))
	}
	return nil
}

// Expire removes the items whose lifetime ended before now. Each one never
// delivered is first recorded in the event store as a failed notification
// (listed and redeliverable like a webhook that ran out of retries), so
// nothing owed to a customer disappears in silence; the expired items are
// returned for the caller to count and log. At most limit are removed per
// call (0: 1000).
func (o *Outbox) Expire(ctx context.Context, now time.Time, limit int) ([]smsgw.OutboxItem, error) {
	if limit <= 0 {
		limit = 1000
	}
	filter := bson.D{{Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: now.UTC()}}}}
	cur, err := o.coll.Find(ctx, filter, options.Find().SetLimit(int64(limit)).SetProjection(bson.D{{Key: "pdu", Value: 0}}))
	if err != nil {
		return nil, fmt.Errorf("mongostore: find expired outbox items: %w", wrap(err))
	}
	var items []smsgw.OutboxItem
	if err := cur.All(ctx, &items); err != nil {
		return nil, fmt.Errorf("mongostore: find expired outbox items: %w", wrap(err))
	}
	if _, err := o.sent.DeleteMany(ctx, filter); err != nil {
		return nil, fmt.Errorf("mongostore: forget delivered outbox items: %w", wrap(err))
	}
	expired := items[:0]
	for _, it := range items {
		if it.LeaseOwner != "" && it.LeaseUntil.After(now) {
			continue // being sent right now: its outcome decides, or its lease ends first
		}
		failure, err := o.recordExpiry(ctx, it)
		if err != nil {
			return expired, err // the item stays, and is recorded next time
		}
		// Deleted one by one, each still expired, so an item being sent
		// right now is not lost to a concurrent claim and ack.
		res, err := o.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: it.ID}, {Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: now.UTC()}}}})
		if err != nil {
			return expired, fmt.Errorf("mongostore: delete expired outbox item %s: %w", it.ID, wrap(err))
		}
		if res.DeletedCount == 1 {
			o.dropLeases(ctx, it.ID)
			expired = append(expired, it)
			continue
		}
		if failure != "" && it.Kind == smsgw.OutboxReceipt && o.delivered(ctx, it.ID) {
			// Acknowledged by the customer in the meantime: not a failure.
			_, _ = o.events.DeleteOne(ctx, bson.D{{Key: "_id", Value: failure}})
		}
	}
	return expired, nil
}

// recordExpiry records an expired item as a failed notification and returns
// the event's ID ("" for an item that carries no delivery to repeat). The
// parts of one MO expire together and share one failure.
func (o *Outbox) recordExpiry(ctx context.Context, it smsgw.OutboxItem) (eventID string, err error) {
	if it.Delivery == nil {
		return "", nil
	}
	reason := fmt.Sprintf("no receiver bind of %s took it before it expired at %s (%d attempts)",
		it.SystemID, it.ExpiresAt.UTC().Format(time.RFC3339), it.Attempts)
	ev := smsgw.NotifyFailedEvent(*it.Delivery, reason, "expired-"+strconv.FormatInt(it.ExpiresAt.UnixMilli(), 10), o.now())
	if _, err := o.events.InsertOne(ctx, ev); err != nil && !mongo.IsDuplicateKeyError(err) {
		return "", fmt.Errorf("mongostore: record expired outbox item %s: %w", it.ID, wrap(err))
	}
	return ev.ID, nil
}

// Pending counts the items not yet delivered, by customer.
func (o *Outbox) Pending(ctx context.Context) (map[string]int64, error) {
	cur, err := o.coll.Aggregate(ctx, mongo.Pipeline{
		bson.D{{Key: "$match", Value: bson.D{{Key: "state", Value: smsgw.OutboxPending}}}},
		bson.D{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$customerId"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
	})
	if err != nil {
		return nil, fmt.Errorf("mongostore: count outbox items: %w", wrap(err))
	}
	var rows []struct {
		Customer string `bson:"_id"`
		N        int64  `bson:"n"`
	}
	if err := cur.All(ctx, &rows); err != nil {
		return nil, fmt.Errorf("mongostore: count outbox items: %w", wrap(err))
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Customer] = r.N
	}
	return out, nil
}

// Get returns one item, pending or delivered (a delivered item comes back
// without its PDU); ok is false when there is none.
func (o *Outbox) Get(ctx context.Context, id string) (it smsgw.OutboxItem, ok bool, err error) {
	err = o.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&it)
	switch {
	case err == nil:
		return it, true, nil
	case !errors.Is(err, mongo.ErrNoDocuments):
		return smsgw.OutboxItem{}, false, fmt.Errorf("mongostore: get outbox item %s: %w", id, wrap(err))
	}
	var s sentDoc
	err = o.sent.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&s)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return smsgw.OutboxItem{}, false, nil
	case err != nil:
		return smsgw.OutboxItem{}, false, fmt.Errorf("mongostore: get outbox item %s: %w", id, wrap(err))
	}
	return smsgw.OutboxItem{ID: s.ID, CustomerID: s.CustomerID, State: smsgw.OutboxSent, SentAt: s.SentAt, ExpiresAt: s.ExpiresAt}, true, nil
}
