package mongostore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/store/groupcommit"
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
//
// Its work is batched, so a receipt costs a fraction of a round trip per
// step under load: the Puts and the Acks of concurrent callers are written
// together (group commit), and a Claim takes several items at once.
type Outbox struct {
	coll   *mongo.Collection
	leases *mongo.Collection
	sent   *mongo.Collection
	events *mongo.Collection
	now    func() time.Time

	puts *groupcommit.Committer[smsgw.OutboxItem]
	acks *groupcommit.Committer[ack]
}

// leaseDoc is one claimed attempt of an outbox item.
type leaseDoc struct {
	ID     string    `bson:"_id"` // <item ID>:<attempt>
	ItemID string    `bson:"itemId"`
	Owner  string    `bson:"owner"`
	Until  time.Time `bson:"until"`
}

// ack is one owner's acknowledgement of one item. notOwned is set when
// the item's lease is no longer the owner's (or the item is gone).
type ack struct {
	id, owner string
	notOwned  *bool
}

// Outbox returns the outbox, creating its indexes. Its batched writes stop
// when the store is closed.
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
		if err := s.ensureIndex(ctx, ix.coll, ix.name, ix.keys); err != nil {
			return nil, err
		}
	}
	o.puts = groupcommit.New("outbox_puts", o.putBatch, s.batching, s.batchMetrics)
	o.acks = groupcommit.New("outbox_acks", o.ackBatch, s.batching, s.batchMetrics)
	s.onClose(func() {
		o.puts.Close()
		o.acks.Close()
	})
	return o, nil
}

// Put writes items. An item whose ID is already stored is left as it is, so
// a retried write neither duplicates nor resets one being sent; one already
// delivered is not written again. The items of concurrent Puts are written
// together.
func (o *Outbox) Put(ctx context.Context, items ...smsgw.OutboxItem) error {
	if len(items) == 0 {
		return nil
	}
	docs := make([]smsgw.OutboxItem, 0, len(items))
	for i, it := range items {
		if it.ID == "" || it.CustomerID == "" || len(it.PDU) == 0 {
			return smsgw.Errorf(smsgw.EINVALID, "outbox item %d has no ID, customer or PDU", i)
		}
		if it.CreatedAt.IsZero() {
			it.CreatedAt = o.now()
		}
		it.CreatedAt, it.ExpiresAt, it.LeaseUntil = it.CreatedAt.UTC(), it.ExpiresAt.UTC(), time.Unix(0, 0).UTC()
		it.LeaseOwner, it.Attempts, it.State, it.SentAt = "", 0, smsgw.OutboxPending, time.Time{}
		docs = append(docs, it)
	}
	if err := o.puts.Do(ctx, docs...); err != nil {
		return fmt.Errorf("mongostore: put %d outbox items: %w", len(items), err)
	}
	return nil
}

// putBatch writes the items of concurrent Puts with one look at the
// delivered items and one unordered insert of the others. An item
// delivered and acknowledged between the two is back in the outbox; Claim
// finds it remembered as delivered and takes it out instead of sending it.
func (o *Outbox) putBatch(ctx context.Context, items []smsgw.OutboxItem) []error {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	delivered, err := o.deliveredAmong(ctx, ids)
	if err != nil {
		return sameError(err, len(items))
	}
	docs := make([]any, 0, len(items))
	at := make([]int, 0, len(items)) // the item each doc is
	for i, it := range items {
		if !delivered[it.ID] { // else a retried write of something already delivered
			docs = append(docs, it)
			at = append(at, i)
		}
	}
	if len(docs) == 0 {
		return nil
	}
	_, err = o.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	docErrs := itemErrors(err, len(docs)) // an item already pending is no failure
	if docErrs == nil {
		return nil
	}
	errs := make([]error, len(items))
	for j, e := range docErrs {
		errs[at[j]] = e
	}
	return errs
}

// deliveredAmong reads which of ids are remembered as delivered, in one
// query.
func (o *Outbox) deliveredAmong(ctx context.Context, ids []string) (map[string]bool, error) {
	delivered, err := stored(ctx, o.sent, ids)
	if err != nil {
		return nil, fmt.Errorf("mongostore: read delivered outbox items: %w", err)
	}
	return delivered, nil
}

// leaseRounds bounds how many attempts of an item one Claim skips past
// when their leases were left behind by owners that stopped.
const leaseRounds = 4

// Claim takes up to limit of the oldest items of a customer that are neither
// expired, nor leased, nor waiting for a retry, and leases them to owner
// until now+lease, oldest first. None is an empty slice. Other replicas
// claiming at the same time get other items: each attempt's lease can be
// taken once.
//
// On the happy path a claim costs four round trips however many items it
// takes: the candidates, their leases (one unordered insert), the items
// marked as leased (one bulk write), and a look at the delivered items.
func (o *Outbox) Claim(ctx context.Context, customerID, owner string, now time.Time, lease time.Duration, limit int) ([]smsgw.OutboxItem, error) {
	limit = max(limit, 1)
	now = now.UTC()
	until := now.Add(lease).Truncate(time.Millisecond) // as stored
	filter := bson.D{
		{Key: "customerId", Value: customerID},
		{Key: "state", Value: smsgw.OutboxPending},
		{Key: "expiresAt", Value: bson.D{{Key: "$gt", Value: now}}},
		{Key: "leaseUntil", Value: bson.D{{Key: "$lte", Value: now}}},
	}
	cur, err := o.coll.Find(ctx, filter, options.Find().
		SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}).
		SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("mongostore: find outbox items of %s: %w", customerID, wrap(err))
	}
	var candidates []smsgw.OutboxItem
	if err := cur.All(ctx, &candidates); err != nil {
		return nil, fmt.Errorf("mongostore: find outbox items of %s: %w", customerID, wrap(err))
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	won, err := o.takeLeases(ctx, candidates, owner, now, until)
	if err != nil || len(won) == 0 {
		return nil, err
	}
	claimed, err := o.markLeased(ctx, won, owner, now, until)
	if err != nil || len(claimed) == 0 {
		return nil, err
	}
	return o.skipDelivered(ctx, claimed)
}

// takeLeases claims the next attempt of each candidate by inserting its
// lease document, all in one unordered insert, and returns the candidates
// won, with their attempt numbers. An attempt already taken whose lease has
// run out (its owner stopped before marking the item) is skipped for the
// one after it.
func (o *Outbox) takeLeases(ctx context.Context, candidates []smsgw.OutboxItem, owner string, now, until time.Time) ([]smsgw.OutboxItem, error) {
	pending := make([]smsgw.OutboxItem, len(candidates))
	for i, c := range candidates {
		c.Attempts++
		pending[i] = c
	}
	var won []smsgw.OutboxItem
	for range leaseRounds {
		docs := make([]any, len(pending))
		for i, c := range pending {
			docs[i] = leaseDoc{ID: leaseID(c.ID, c.Attempts), ItemID: c.ID, Owner: owner, Until: until}
		}
		taken, err := duplicatesOf(o.leases.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)))
		if err != nil {
			return nil, fmt.Errorf("mongostore: lease %d outbox items: %w", len(pending), wrap(err))
		}
		var held []string
		for i, c := range pending {
			if taken[i] {
				held = append(held, leaseID(c.ID, c.Attempts))
			} else {
				won = append(won, c)
			}
		}
		if len(held) == 0 {
			break
		}
		// Those attempts are someone else's: held by another replica now,
		// or left behind by one that stopped before marking its item.
		stale, err := o.staleLeases(ctx, held, now)
		if err != nil {
			return nil, err
		}
		next := pending[:0]
		for i, c := range pending {
			if taken[i] && stale[leaseID(c.ID, c.Attempts)] {
				c.Attempts++
				next = append(next, c)
			}
		}
		pending = next
		if len(pending) == 0 {
			break
		}
	}
	// Oldest first, as the candidates came.
	order := make(map[string]int, len(candidates))
	for i, c := range candidates {
		order[c.ID] = i
	}
	slices.SortFunc(won, func(a, b smsgw.OutboxItem) int { return order[a.ID] - order[b.ID] })
	return won, nil
}

// staleLeases reads which of the lease documents ids have run out by now.
// A lease that is gone (its item delivered meanwhile) is not stale.
func (o *Outbox) staleLeases(ctx context.Context, ids []string, now time.Time) (map[string]bool, error) {
	cur, err := o.leases.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, fmt.Errorf("mongostore: read outbox leases: %w", wrap(err))
	}
	var held []leaseDoc
	if err := cur.All(ctx, &held); err != nil {
		return nil, fmt.Errorf("mongostore: read outbox leases: %w", wrap(err))
	}
	stale := make(map[string]bool, len(held))
	for _, l := range held {
		if !l.Until.After(now) {
			stale[l.ID] = true
		}
	}
	return stale, nil
}

// markLeased records the leases won on their items in one bulk write and
// returns the items that are now this owner's. An item read before another
// replica delivered it, or released it for a later retry, matches nothing:
// it is not ours, and our lease on it goes.
func (o *Outbox) markLeased(ctx context.Context, won []smsgw.OutboxItem, owner string, now, until time.Time) ([]smsgw.OutboxItem, error) {
	models := make([]mongo.WriteModel, len(won))
	for i, c := range won {
		models[i] = mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: c.ID}, {Key: "state", Value: smsgw.OutboxPending}, {Key: "leaseUntil", Value: bson.D{{Key: "$lte", Value: now}}}}).
			SetUpdate(bson.D{{Key: "$set", Value: bson.D{
				{Key: "leaseOwner", Value: owner}, {Key: "leaseUntil", Value: until}, {Key: "attempts", Value: c.Attempts},
			}}})
	}
	res, err := o.coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if err != nil && !errors.As(err, &bwe) {
		return nil, fmt.Errorf("mongostore: lease %d outbox items: %w", len(won), wrap(err))
	}
	for i := range won {
		won[i].LeaseOwner, won[i].LeaseUntil = owner, until
	}
	if err == nil && res.MatchedCount == int64(len(won)) {
		return won, nil
	}
	// Some did not match: read which are ours.
	ids := make([]string, len(won))
	for i, c := range won {
		ids[i] = c.ID
	}
	cur, err := o.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "leaseOwner", Value: 1}, {Key: "leaseUntil", Value: 1}, {Key: "attempts", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongostore: read leased outbox items: %w", wrap(err))
	}
	var marked []smsgw.OutboxItem
	if err := cur.All(ctx, &marked); err != nil {
		return nil, fmt.Errorf("mongostore: read leased outbox items: %w", wrap(err))
	}
	byID := make(map[string]smsgw.OutboxItem, len(marked))
	for _, m := range marked {
		byID[m.ID] = m
	}
	var ours []smsgw.OutboxItem
	var lost []string
	for _, c := range won {
		m, ok := byID[c.ID]
		if ok && m.LeaseOwner == owner && m.Attempts == c.Attempts && m.LeaseUntil.Equal(until) {
			ours = append(ours, c)
		} else {
			lost = append(lost, leaseID(c.ID, c.Attempts))
		}
	}
	if len(lost) > 0 {
		_, _ = o.leases.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: lost}}}})
	}
	return ours, nil
}

// skipDelivered takes out of claimed the items remembered as delivered
// (put again by a retried write just as they were acknowledged): they
// leave the outbox instead of going out twice.
func (o *Outbox) skipDelivered(ctx context.Context, claimed []smsgw.OutboxItem) ([]smsgw.OutboxItem, error) {
	ids := make([]string, len(claimed))
	for i, c := range claimed {
		ids[i] = c.ID
	}
	delivered, err := o.deliveredAmong(ctx, ids)
	if err != nil {
		// Not sent: their leases run out and they are claimed again.
		return nil, err
	}
	if len(delivered) == 0 {
		return claimed, nil
	}
	out := claimed[:0]
	var gone []string
	for _, c := range claimed {
		if delivered[c.ID] {
			gone = append(gone, c.ID)
		} else {
			out = append(out, c)
		}
	}
	_, _ = o.coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: gone}}}})
	o.dropLeases(ctx, gone...)
	return out, nil
}

// duplicatesOf reads the outcome of an unordered insert: which documents,
// by index, were refused as duplicates of stored ones (the others were
// written). Any other failure is an error.
func duplicatesOf(_ *mongo.InsertManyResult, err error) (map[int]bool, error) {
	if err == nil {
		return nil, nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return nil, err
	}
	dups := make(map[int]bool, len(bwe.WriteErrors))
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 && we.Code != 11001 {
			return nil, err
		}
		dups[we.Index] = true
	}
	return dups, nil
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
// alone; done reports whether it was this owner's. The acknowledgements of
// concurrent callers are written together.
func (o *Outbox) Ack(ctx context.Context, id, owner string) (done bool, err error) {
	var notOwned bool
	if err := o.acks.Do(ctx, ack{id: id, owner: owner, notOwned: &notOwned}); err != nil {
		return false, fmt.Errorf("mongostore: ack outbox item %s: %w", id, err)
	}
	return !notOwned, nil
}

// ackBatch acknowledges the items of concurrent Acks: one read of the
// items, one insert into the delivered memory, one delete from the outbox
// and one of their leases, whatever their number.
func (o *Outbox) ackBatch(ctx context.Context, acks []ack) []error {
	ids := make([]string, len(acks))
	for i, a := range acks {
		ids[i] = a.id
	}
	cur, err := o.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}, {Key: "state", Value: smsgw.OutboxPending}},
		options.Find().SetProjection(bson.D{{Key: "pdu", Value: 0}}))
	if err != nil {
		return sameError(fmt.Errorf("read outbox items: %w", wrap(err)), len(acks))
	}
	var found []smsgw.OutboxItem
	if err := cur.All(ctx, &found); err != nil {
		return sameError(fmt.Errorf("read outbox items: %w", wrap(err)), len(acks))
	}
	byID := make(map[string]smsgw.OutboxItem, len(found))
	for _, it := range found {
		byID[it.ID] = it
	}
	errs := make([]error, len(acks))
	var owned []smsgw.OutboxItem
	var ownedAt []int // the acks of owned items
	seen := map[string]bool{}
	for i, a := range acks {
		it, ok := byID[a.id]
		if !ok || it.LeaseOwner != a.owner {
			*a.notOwned = true
			continue
		}
		ownedAt = append(ownedAt, i)
		if !seen[a.id] {
			seen[a.id] = true
			owned = append(owned, it)
		}
	}
	if len(owned) == 0 {
		return nil
	}
	fail := func(err error) []error {
		for _, i := range ownedAt {
			errs[i] = err
		}
		return errs
	}
	// Remembered first, removed second, so a retried Put never brings a
	// delivered item back; a crash in between leaves it pending as well,
	// and the customer may get that one deliver_sm twice.
	now := o.now().UTC()
	sent := make([]any, len(owned))
	gone := make([]string, len(owned))
	for i, it := range owned {
		sent[i] = sentDoc{ID: it.ID, CustomerID: it.CustomerID, SentAt: now, ExpiresAt: it.ExpiresAt}
		gone[i] = it.ID
	}
	if _, err := o.sent.InsertMany(ctx, sent, options.InsertMany().SetOrdered(false)); err != nil && !onlyDuplicates(err) {
		return fail(fmt.Errorf("remember delivered outbox items: %w", wrap(err)))
	}
	if _, err := o.coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: gone}}}}); err != nil {
		return fail(fmt.Errorf("remove delivered outbox items: %w", wrap(err)))
	}
	o.dropLeases(ctx, gone...)
	o.markRedelivered(ctx, owned, now)
	return nil
}

// markRedelivered lists the failed notifications that items redelivered
// as delivered after all. Their delivery stands even if this mark is
// lost, so a failure to write it is not reported.
func (o *Outbox) markRedelivered(ctx context.Context, items []smsgw.OutboxItem, now time.Time) {
	var models []mongo.WriteModel
	for _, it := range items {
		if it.Delivery == nil || it.Delivery.Redelivers == "" {
			continue
		}
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: it.Delivery.Redelivers}, {Key: "type", Value: smsgw.EventNotifyFailed}, {Key: "data.deliveredAt", Value: bson.D{{Key: "$exists", Value: false}}}}).
			SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "data.deliveredAt", Value: now}}}}))
	}
	if len(models) > 0 {
		_, _ = o.events.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	}
}

// dropLeases removes the lease documents of items that are gone. Leftovers
// are harmless, so a failure is not reported.
func (o *Outbox) dropLeases(ctx context.Context, ids ...string) {
	if len(ids) == 0 {
		return
	}
	_, _ = o.leases.DeleteMany(ctx, bson.D{{Key: "itemId", Value: bson.D{{Key: "$in", Value: ids}}}})
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
	// An item remembered as delivered was put back by a retried write just
	// as it was acknowledged, and never claimed since: it goes, and is no
	// failure. Read before the memory of what expired is forgotten.
	var delivered map[string]bool
	if len(items) > 0 {
		ids := make([]string, len(items))
		for i, it := range items {
			ids[i] = it.ID
		}
		if delivered, err = o.deliveredAmong(ctx, ids); err != nil {
			return nil, err
		}
	}
	if _, err := o.sent.DeleteMany(ctx, filter); err != nil {
		return nil, fmt.Errorf("mongostore: forget delivered outbox items: %w", wrap(err))
	}
	expired := items[:0]
	for _, it := range items {
		if it.LeaseOwner != "" && it.LeaseUntil.After(now) {
			continue // being sent right now: its outcome decides, or its lease ends first
		}
		if delivered[it.ID] {
			_, _ = o.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: it.ID}, {Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: now.UTC()}}}})
			o.dropLeases(ctx, it.ID)
			continue
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
		if failure != "" && it.Kind == smsgw.OutboxReceipt && o.isDelivered(ctx, it.ID) {
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

// isDelivered reports whether an item is remembered as delivered. An error
// reads as not delivered.
func (o *Outbox) isDelivered(ctx context.Context, id string) bool {
	delivered, err := o.deliveredAmong(ctx, []string{id})
	return err == nil && delivered[id]
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
