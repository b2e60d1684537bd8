package mongostore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/mongostore"
)

func outboxItem(id, customer string, created time.Time) smsgw.OutboxItem {
	return smsgw.OutboxItem{
		ID: id, CustomerID: customer, SystemID: customer, Kind: smsgw.OutboxReceipt, Subject: "m-" + id,
		PDU: []byte{0, 0, 0, 16, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0}, CreatedAt: created, ExpiresAt: created.Add(time.Hour),
	}
}

// claimOne claims at most one item.
func claimOne(c context.Context, ob *mongostore.Outbox, customer, owner string, now time.Time, lease time.Duration) (smsgw.OutboxItem, bool, error) {
	items, err := ob.Claim(c, customer, owner, now, lease, 1)
	if err != nil || len(items) == 0 {
		return smsgw.OutboxItem{}, false, err
	}
	if len(items) > 1 {
		return smsgw.OutboxItem{}, false, fmt.Errorf("claimed %d items, want at most 1", len(items))
	}
	return items[0], true, nil
}

func TestOutboxPutIsIdempotentAndClaimsOldestFirst(t *testing.T) {
	t.Parallel()
	s, _, _ := open(t)
	c := ctx(t)
	ob, err := s.Outbox(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Put(c, outboxItem("b", "acme", t0.Add(time.Second)), outboxItem("a", "acme", t0), outboxItem("x", "other", t0)); err != nil {
		t.Fatal(err)
	}
	// A retried write changes nothing, not even an item under lease.
	if _, ok, err := claimOne(c, ob, "acme", "r1", t0.Add(time.Minute), time.Minute); err != nil || !ok {
		t.Fatalf("Claim: %v %v", ok, err)
	}
	changed := outboxItem("a", "acme", t0)
	changed.Subject = "changed"
	if err := ob.Put(c, changed, outboxItem("b", "acme", t0.Add(time.Second))); err != nil {
		t.Fatalf("Put again: %v", err)
	}
	got, ok, err := ob.Get(c, "a")
	if err != nil || !ok || got.Subject != "m-a" || got.LeaseOwner != "r1" || got.Attempts != 1 {
		t.Fatalf("item a after a second Put: %+v %v %v", got, ok, err)
	}
	// a is leased by r1, so r2 gets b, then nothing; other customers' items are not its.
	it, ok, err := claimOne(c, ob, "acme", "r2", t0.Add(time.Minute), time.Minute)
	if err != nil || !ok || it.ID != "b" || it.LeaseOwner != "r2" {
		t.Fatalf("second claim: %+v %v %v", it, ok, err)
	}
	if it, ok, err := claimOne(c, ob, "acme", "r2", t0.Add(time.Minute), time.Minute); err != nil || ok {
		t.Fatalf("third claim: %+v %v %v, want none", it, ok, err)
	}
	// Once a's lease ends, anyone can take it.
	it, ok, err = claimOne(c, ob, "acme", "r2", t0.Add(3*time.Minute), time.Minute)
	if err != nil || !ok || it.ID != "a" || it.Attempts != 2 {
		t.Fatalf("claim after the lease ended: %+v %v %v", it, ok, err)
	}
	// The old owner cannot ack what it no longer holds; the new one can.
	if done, err := ob.Ack(c, "a", "r1"); err != nil || done {
		t.Fatalf("ack by the old owner: %v %v", done, err)
	}
	if done, err := ob.Ack(c, "a", "r2"); err != nil || !done {
		t.Fatalf("ack by the owner: %v %v", done, err)
	}
	// A sent item is kept, so writing it again does not deliver it again.
	if err := ob.Put(c, outboxItem("a", "acme", t0)); err != nil {
		t.Fatal(err)
	}
	if it, ok, err := ob.Get(c, "a"); err != nil || !ok || it.State != smsgw.OutboxSent || it.SentAt.IsZero() {
		t.Fatalf("sent item after a second Put: %+v %v %v", it, ok, err)
	}
	if it, ok, err := claimOne(c, ob, "acme", "r2", t0.Add(90*time.Second), time.Minute); err != nil || ok { // b is still leased
		t.Fatalf("claimed a sent item: %+v %v", it, err)
	}
	pending, err := ob.Pending(c)
	if err != nil || pending["acme"] != 1 || pending["other"] != 1 {
		t.Fatalf("Pending: %v %v", pending, err)
	}
}

func TestOutboxReleaseRetriesLaterAndExpiryRemoves(t *testing.T) {
	t.Parallel()
	s, _, _ := open(t)
	c := ctx(t)
	ob, err := s.Outbox(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Put(c, outboxItem("a", "acme", t0)); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Second)
	if _, ok, _ := claimOne(c, ob, "acme", "r1", now, time.Minute); !ok {
		t.Fatal("no claim")
	}
	if err := ob.Release(c, "a", "r1", now.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := claimOne(c, ob, "acme", "r1", now.Add(5*time.Second), time.Minute); ok {
		t.Fatal("claimed before its retry time")
	}
	if _, ok, _ := claimOne(c, ob, "acme", "r1", now.Add(11*time.Second), time.Minute); !ok {
		t.Fatal("not claimable at its retry time")
	}
	// Past its validity it is neither claimed nor kept.
	late := t0.Add(2 * time.Hour)
	if _, ok, _ := claimOne(c, ob, "acme", "r2", late, time.Minute); ok {
		t.Fatal("claimed an expired item")
	}
	expired, err := ob.Expire(c, late, 0)
	if err != nil || len(expired) != 1 || expired[0].ID != "a" || expired[0].Subject != "m-a" {
		t.Fatalf("Expire: %+v %v", expired, err)
	}
	if _, ok, _ := ob.Get(c, "a"); ok {
		t.Fatal("expired item still stored")
	}
	// Sent items go at the end of their validity too, without being reported.
	if err := ob.Put(c, outboxItem("s", "acme", t0)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := claimOne(c, ob, "acme", "r1", t0.Add(time.Second), time.Minute); !ok {
		t.Fatal("no claim of s")
	}
	if done, err := ob.Ack(c, "s", "r1"); !done || err != nil {
		t.Fatalf("Ack: %v %v", done, err)
	}
	expired, err = ob.Expire(c, late, 0)
	if err != nil || len(expired) != 0 {
		t.Fatalf("Expire of a sent item reported %+v %v", expired, err)
	}
	if _, ok, _ := ob.Get(c, "s"); ok {
		t.Fatal("expired sent item still stored")
	}
}

// Two replicas claiming concurrently never hold the same item.
func TestOutboxClaimsAreExclusive(t *testing.T) {
	t.Parallel()
	s, _, _ := open(t)
	c := ctx(t)
	ob, err := s.Outbox(c)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	var items []smsgw.OutboxItem
	for i := range n {
		items = append(items, outboxItem(string(rune('A'+i)), "acme", t0.Add(time.Duration(i)*time.Millisecond)))
	}
	if err := ob.Put(c, items...); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	claimed := map[string]string{}
	var wg sync.WaitGroup
	for _, owner := range []string{"r1", "r2", "r3"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				it, ok, err := claimOne(c, ob, "acme", owner, t0.Add(time.Minute), time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					return
				}
				mu.Lock()
				if prev, dup := claimed[it.ID]; dup {
					t.Errorf("%s claimed by %s and %s", it.ID, prev, owner)
				}
				claimed[it.ID] = owner
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimed) != n {
		t.Fatalf("%d of %d items claimed", len(claimed), n)
	}
}

// countedOutbox opens an outbox whose round trips to the server are
// counted, and the database it is in.
func countedOutbox(t *testing.T) (*mongostore.Outbox, *wireCounter, *mongo.Database) {
	t.Helper()
	proxied, wc := startWireCounter(t, testenv.MongoURI(t))
	db := testenv.MongoDatabase(t)
	s, err := mongostore.Open(ctx(t), proxied, db, mongostore.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	ob, err := s.Outbox(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	client, err := mongo.Connect(options.Client().ApplyURI(proxied))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return ob, wc, client.Database(db)
}

// A claim takes several items, oldest first, in four round trips however
// many; a Put of several items takes two.
func TestOutboxClaimsSeveralItemsAtOnce(t *testing.T) {
	t.Parallel()
	ob, wc, _ := countedOutbox(t)
	c := ctx(t)
	var items []smsgw.OutboxItem
	for i := range 5 {
		items = append(items, outboxItem(fmt.Sprintf("i%d", i), "acme", t0.Add(time.Duration(4-i)*time.Second)))
	}
	wc.reset()
	if err := ob.Put(c, items...); err != nil {
		t.Fatal(err)
	}
	if n := wc.total(); n != 2 {
		t.Errorf("Put of 5 items: %d round trips (%s), want 2", n, wc.breakdown(1))
	}
	wc.reset()
	got, err := ob.Claim(c, "acme", "r1", t0.Add(time.Minute), time.Minute, 3)
	if err != nil {
		t.Fatal(err)
	}
	if n := wc.total(); n != 4 {
		t.Errorf("Claim of 3 items: %d round trips (%s), want 4", n, wc.breakdown(1))
	}
	if ids := idsOf(got); fmt.Sprint(ids) != "[i4 i3 i2]" {
		t.Fatalf("first claim got %v, want the three oldest", ids)
	}
	for _, it := range got {
		if it.LeaseOwner != "r1" || it.Attempts != 1 || !it.LeaseUntil.Equal(t0.Add(2*time.Minute)) || len(it.PDU) == 0 {
			t.Errorf("claimed %+v", it)
		}
	}
	got, err = ob.Claim(c, "acme", "r2", t0.Add(time.Minute), time.Minute, 10)
	if ids := idsOf(got); err != nil || fmt.Sprint(ids) != "[i1 i0]" {
		t.Fatalf("second claim got %v %v, want the two left", ids, err)
	}
	if got, err := ob.Claim(c, "acme", "r3", t0.Add(time.Minute), time.Minute, 10); err != nil || len(got) != 0 {
		t.Fatalf("third claim got %v %v, want none", idsOf(got), err)
	}
}

func idsOf(items []smsgw.OutboxItem) []string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	return ids
}

// In one claim, an item whose next attempt another replica holds is
// skipped, one whose attempt was left behind by a replica that stopped
// before marking it is taken at the attempt after, and the others are
// taken as usual.
func TestOutboxClaimSkipsHeldLeasesAndPassesStaleOnes(t *testing.T) {
	t.Parallel()
	ob, _, db := countedOutbox(t)
	c := ctx(t)
	if err := ob.Put(c, outboxItem("a", "acme", t0), outboxItem("b", "acme", t0.Add(time.Second)), outboxItem("c", "acme", t0.Add(2*time.Second))); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Minute)
	leases := db.Collection(mongostore.OutboxLeasesCollection)
	if _, err := leases.InsertMany(c, []any{
		bson.D{{Key: "_id", Value: "a:1"}, {Key: "itemId", Value: "a"}, {Key: "owner", Value: "gone"}, {Key: "until", Value: now.Add(-time.Second)}},
		bson.D{{Key: "_id", Value: "b:1"}, {Key: "itemId", Value: "b"}, {Key: "owner", Value: "other"}, {Key: "until", Value: now.Add(time.Minute)}},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := ob.Claim(c, "acme", "r1", now, time.Minute, 3)
	if err != nil {
		t.Fatal(err)
	}
	if ids := idsOf(got); fmt.Sprint(ids) != "[a c]" {
		t.Fatalf("claimed %v, want a and c", ids)
	}
	if got[0].Attempts != 2 || got[1].Attempts != 1 {
		t.Errorf("attempts %d and %d, want 2 and 1", got[0].Attempts, got[1].Attempts)
	}
	if b, ok, err := ob.Get(c, "b"); err != nil || !ok || b.LeaseOwner != "" || b.Attempts != 0 {
		t.Errorf("b after the claim: %+v %v %v", b, ok, err)
	}
}

// putBackAfterDelivery puts it (with the others), has it claimed and
// acknowledged, and then inserts it again: a retried write whose insert
// lands just after the acknowledgement, past Put's look at the delivered
// items.
func putBackAfterDelivery(t *testing.T, c context.Context, ob *mongostore.Outbox, db *mongo.Database, it smsgw.OutboxItem, others ...smsgw.OutboxItem) {
	t.Helper()
	if err := ob.Put(c, append([]smsgw.OutboxItem{it}, others...)...); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := claimOne(c, ob, it.CustomerID, "r1", it.CreatedAt.Add(time.Second), time.Minute); err != nil || !ok || got.ID != it.ID {
		t.Fatalf("claim: %+v %v %v", got, ok, err)
	}
	if done, err := ob.Ack(c, it.ID, "r1"); err != nil || !done {
		t.Fatalf("Ack: %v %v", done, err)
	}
	it.State, it.LeaseUntil = smsgw.OutboxPending, time.Unix(0, 0).UTC()
	if _, err := db.Collection(mongostore.OutboxCollection).InsertOne(c, it); err != nil {
		t.Fatal(err)
	}
}

// An item put again by a retried write just as it was acknowledged (the
// race Put's own look at the delivered items cannot close) is taken out by
// the next claim instead of going out twice.
func TestOutboxClaimDropsAnItemPutBackAfterDelivery(t *testing.T) {
	t.Parallel()
	ob, _, db := countedOutbox(t)
	c := ctx(t)
	putBackAfterDelivery(t, c, ob, db, outboxItem("x", "acme", t0), outboxItem("y", "acme", t0.Add(time.Second)))
	got, err := ob.Claim(c, "acme", "r2", t0.Add(2*time.Second), time.Minute, 10)
	if ids := idsOf(got); err != nil || fmt.Sprint(ids) != "[y]" {
		t.Fatalf("claimed %v %v, want only y", ids, err)
	}
	if got, ok, err := ob.Get(c, "x"); err != nil || !ok || got.State != smsgw.OutboxSent {
		t.Fatalf("x after the claim: %+v %v %v, want it remembered as sent and out of the outbox", got, ok, err)
	}
}

// Such an item, put back and never claimed (the customer left), is not
// reported as expired when its time is up: it was delivered.
func TestOutboxExpiryLeavesAnItemPutBackAfterDeliveryUnreported(t *testing.T) {
	t.Parallel()
	ob, _, db := countedOutbox(t)
	c := ctx(t)
	putBackAfterDelivery(t, c, ob, db, outboxItem("x", "acme", t0))
	expired, err := ob.Expire(c, t0.Add(2*time.Hour), 0)
	if err != nil || len(expired) != 0 {
		t.Fatalf("Expire reported %v (%v), want nothing: it was delivered", idsOf(expired), err)
	}
	if got, ok, err := ob.Get(c, "x"); err != nil || ok {
		t.Fatalf("x after its expiry: %+v %v %v, want gone", got, ok, err)
	}
}

// Acknowledgements made at the same time are written together, and each
// caller learns whether the item was its own.
func TestOutboxConcurrentAcks(t *testing.T) {
	t.Parallel()
	ob, wc, _ := countedOutbox(t)
	c := ctx(t)
	const n = 30
	var items []smsgw.OutboxItem
	for i := range n {
		items = append(items, outboxItem(fmt.Sprintf("k%02d", i), "acme", t0.Add(time.Duration(i)*time.Millisecond)))
	}
	if err := ob.Put(c, items...); err != nil {
		t.Fatal(err)
	}
	got, err := ob.Claim(c, "acme", "r1", t0.Add(time.Second), time.Minute, n)
	if err != nil || len(got) != n {
		t.Fatalf("claimed %d items (%v), want %d", len(got), err, n)
	}
	wc.reset()
	done := make([]bool, n+1)
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for i := range n + 1 {
		wg.Go(func() {
			switch {
			case i == n: // not the owner
				done[i], errs[i] = ob.Ack(c, "k00", "r2")
			default:
				done[i], errs[i] = ob.Ack(c, got[i].ID, "r1")
			}
		})
	}
	wg.Wait()
	for i := range n {
		if !done[i] || errs[i] != nil {
			t.Errorf("ack %d: %v %v", i, done[i], errs[i])
		}
	}
	if done[n] || errs[n] != nil {
		t.Errorf("ack by another owner: %v %v, want not done", done[n], errs[n])
	}
	if rt := wc.total(); rt >= 4*n {
		t.Errorf("%d acks took %d round trips, want them shared", n, rt)
	}
	for _, it := range got {
		if g, ok, err := ob.Get(c, it.ID); err != nil || !ok || g.State != smsgw.OutboxSent {
			t.Fatalf("%s after its ack: %+v %v %v", it.ID, g, ok, err)
		}
	}
	pending, err := ob.Pending(c)
	if err != nil || pending["acme"] != 0 {
		t.Errorf("Pending after the acks: %v %v", pending, err)
	}
}
