package mongostore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/smsgw/smsgw"
)

func outboxItem(id, customer string, created time.Time) smsgw.OutboxItem {
	return smsgw.OutboxItem{
		ID: id, CustomerID: customer, SystemID: customer, Kind: smsgw.OutboxReceipt, Subject: "m-" + id,
		PDU: []byte{0, 0, 0, 16, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0}, CreatedAt: created, ExpiresAt: created.Add(time.Hour),
	}
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
	if _, ok, err := ob.Claim(c, "acme", "r1", t0.Add(time.Minute), time.Minute); err != nil || !ok {
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
	it, ok, err := ob.Claim(c, "acme", "r2", t0.Add(time.Minute), time.Minute)
	if err != nil || !ok || it.ID != "b" || it.LeaseOwner != "r2" {
		t.Fatalf("second claim: %+v %v %v", it, ok, err)
	}
	if it, ok, err := ob.Claim(c, "acme", "r2", t0.Add(time.Minute), time.Minute); err != nil || ok {
		t.Fatalf("third claim: %+v %v %v, want none", it, ok, err)
	}
	// Once a's lease ends, anyone can take it.
	it, ok, err = ob.Claim(c, "acme", "r2", t0.Add(3*time.Minute), time.Minute)
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
	if it, ok, err := ob.Claim(c, "acme", "r2", t0.Add(90*time.Second), time.Minute); err != nil || ok { // b is still leased
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
	if _, ok, _ := ob.Claim(c, "acme", "r1", now, time.Minute); !ok {
		t.Fatal("no claim")
	}
	if err := ob.Release(c, "a", "r1", now.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := ob.Claim(c, "acme", "r1", now.Add(5*time.Second), time.Minute); ok {
		t.Fatal("claimed before its retry time")
	}
	if _, ok, _ := ob.Claim(c, "acme", "r1", now.Add(11*time.Second), time.Minute); !ok {
		t.Fatal("not claimable at its retry time")
	}
	// Past its validity it is neither claimed nor kept.
	late := t0.Add(2 * time.Hour)
	if _, ok, _ := ob.Claim(c, "acme", "r2", late, time.Minute); ok {
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
	if _, ok, _ := ob.Claim(c, "acme", "r1", t0.Add(time.Second), time.Minute); !ok {
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
				it, ok, err := ob.Claim(c, "acme", owner, t0.Add(time.Minute), time.Hour)
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
