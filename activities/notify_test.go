package activities

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/testenv"
)

// writtenEvents keeps each AppendEvents call's events apart.
type writtenEvents struct {
	mu    sync.Mutex
	calls [][]smsgw.Event
}

func (w *writtenEvents) AppendEvents(_ context.Context, evs ...smsgw.Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, slices.Clone(evs))
	return nil
}

// ids returns the IDs (message and step) of the events written by call i.
func (w *writtenEvents) ids(i int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ids []string
	for _, e := range w.calls[i] {
		ids = append(ids, e.ID)
	}
	return ids
}

// backgroundEvents is a BackgroundEventStore that keeps what it was
// handed for the test to finish.
type backgroundEvents struct {
	writtenEvents
	handed chan handedEvents
}

type handedEvents struct {
	events []smsgw.Event
	done   func(error)
}

func (b *backgroundEvents) AppendEventsInBackground(_ context.Context, done func(error), evs ...smsgw.Event) {
	b.handed <- handedEvents{slices.Clone(evs), done}
}

// next is the next write handed to the background, by its events' IDs.
func (b *backgroundEvents) next(t *testing.T) ([]string, func(error)) {
	t.Helper()
	select {
	case h := <-b.handed:
		var ids []string
		for _, e := range h.events {
			ids = append(ids, e.ID)
		}
		return ids, h.done
	case <-time.After(5 * time.Second):
		t.Fatal("no events handed to the background")
		return nil, nil
	}
}

// With a store that writes in the background, the record of a message is
// written before any delivery and waited for, and the events of its
// deliveries are handed to the background: the activity returns before
// their write ends, and a write of them that fails is logged, once for
// each delivery.
func TestDeliveriesAreRecordedInTheBackground(t *testing.T) {
	recent, err := NewRecentDeliveries(time.Minute, 10, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	events := &backgroundEvents{handed: make(chan handedEvents, 2)}
	logs := &testenv.SyncBuffer{}
	now := time.Now().UTC().Truncate(time.Second)
	a := &Activities{Channels: map[string]Channel{"webhook": &countingChannel{}, "smpp": &countingChannel{}},
		Events: events, Recent: recent, Logger: slog.New(slog.NewTextHandler(logs, nil)), Now: func() time.Time { return now }}
	final := func(id, channel string) smsgw.Delivery {
		return smsgw.Delivery{Channel: channel, CustomerID: "acme",
			Notification: &smsgw.Notification{MessageID: id, Status: smsgw.StatusDelivered, Seq: 5}}
	}
	record := RecordInput{Events: []smsgw.Event{smsgw.NewEvent("m1", "acme", 4, smsgw.EventFinal, "final", now, nil)}}
	returned := make(chan error, 1)
	go func() {
		_, err := a.RecordAndNotifyAll(context.Background(), record, []smsgw.Delivery{final("m1", "webhook"), final("m1", "smpp")})
		returned <- err
	}()
	select {
	case err := <-returned:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the activity waited for the write of its deliveries' events")
	}
	if len(events.calls) != 1 || !slices.Equal(events.ids(0), []string{"m1:final"}) {
		t.Fatalf("written and waited for: %v, want the record alone", events.calls)
	}
	ids, done := events.next(t)
	if want := []string{"m1:notified-webhook-DELIVERED", "m1:notified-smpp-DELIVERED"}; !slices.Equal(ids, want) {
		t.Fatalf("handed to the background: %v, want %v", ids, want)
	}
	done(nil) // written, after the activity returned
	// A notification on its own (a retry, an inbound message) too, and
	// its write fails.
	if err := a.Notify(context.Background(), final("m2", "webhook")); err != nil {
		t.Fatal(err)
	}
	ids, done = events.next(t)
	if want := []string{"m2:notified-webhook-DELIVERED"}; !slices.Equal(ids, want) {
		t.Fatalf("a lone notification's events handed to the background: %v, want %v", ids, want)
	}
	done(errors.New("server away"))
	if n := strings.Count(logs.String(), "notification delivered but not recorded"); n != 1 {
		t.Fatalf("%d warnings of deliveries not recorded, want 1 (the failed write's):\n%s", n, logs.String())
	}
}

// blockingChannel takes a delivery only once released.
type blockingChannel struct{ release chan struct{} }

func (c blockingChannel) Deliver(ctx context.Context, _ smsgw.Delivery) error {
	select {
	case <-c.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type failingChannel struct{}

func (failingChannel) Deliver(context.Context, smsgw.Delivery) error {
	return errors.New("bind busy")
}

// A final status that goes out on two channels is recorded, delivered on
// both at once, and both deliveries' events go in one write after the
// record's; a channel that fails has no event and is reported for its
// retry; the same local activity run again delivers nothing twice, even
// while the first run still waits on a slow channel.
func TestRecordAndNotifyAllRecordsTheDeliveriesTogether(t *testing.T) {
	recent, err := NewRecentDeliveries(time.Minute, 10, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	webhook, smpp := &countingChannel{}, &countingChannel{}
	events := &writtenEvents{}
	now := time.Now().UTC().Truncate(time.Second)
	slow := blockingChannel{release: make(chan struct{})}
	a := &Activities{Channels: map[string]Channel{"webhook": webhook, "smpp": smpp, "broken": failingChannel{}, "slow": slow},
		Events: events, Recent: recent, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}
	final := func(id, channel string) smsgw.Delivery {
		return smsgw.Delivery{Channel: channel, CustomerID: "acme",
			Notification: &smsgw.Notification{MessageID: id, Status: smsgw.StatusDelivered, Seq: 5}}
	}
	record := func(id string) RecordInput {
		return RecordInput{Events: []smsgw.Event{smsgw.NewEvent(id, "acme", 4, smsgw.EventFinal, "final", now, nil)}}
	}

	outcomes, err := a.RecordAndNotifyAll(context.Background(), record("m1"), []smsgw.Delivery{final("m1", "webhook"), final("m1", "smpp")})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(outcomes, []NotifyOutcome{{}, {}}) {
		t.Fatalf("outcomes %+v, want both delivered", outcomes)
	}
	if webhook.n != 1 || smpp.n != 1 {
		t.Fatalf("delivered %d on the webhook and %d on the bind, want 1 each", webhook.n, smpp.n)
	}
	if len(events.calls) != 2 {
		t.Fatalf("%d event writes, want 2 (the record, then both deliveries)", len(events.calls))
	}
	if got, want := events.ids(1), []string{"m1:notified-webhook-DELIVERED", "m1:notified-smpp-DELIVERED"}; !slices.Equal(got, want) {
		t.Fatalf("second write %v, want %v", got, want)
	}

	// Run again, as when its workflow task could not complete: recorded
	// again (idempotent), delivered no more.
	if _, err := a.RecordAndNotifyAll(context.Background(), record("m1"), []smsgw.Delivery{final("m1", "webhook"), final("m1", "smpp")}); err != nil {
		t.Fatal(err)
	}
	if webhook.n != 1 || smpp.n != 1 || len(events.calls) != 3 {
		t.Fatalf("run again: delivered %d and %d, %d event writes; want 1, 1 and 3 (the record alone)", webhook.n, smpp.n, len(events.calls))
	}

	// One channel fails: its outcome says so, and only the other's
	// delivery is recorded.
	outcomes, err = a.RecordAndNotifyAll(context.Background(), record("m2"), []smsgw.Delivery{final("m2", "broken"), final("m2", "webhook")})
	if err != nil {
		t.Fatal(err)
	}
	if outcomes[0].Error == "" || outcomes[0].Refused || outcomes[1] != (NotifyOutcome{}) {
		t.Fatalf("outcomes %+v, want the broken channel failed (to retry) and the webhook delivered", outcomes)
	}
	if got, want := events.ids(4), []string{"m2:notified-webhook-DELIVERED"}; len(events.calls) != 5 || !slices.Equal(got, want) {
		t.Fatalf("%d event writes, the last %v; want 5, the last %v", len(events.calls), got, want)
	}

	// A run whose time ran out while a slow channel still answers: the
	// workflow sends on every channel again, and the webhook, delivered
	// by the first run already, is not delivered twice.
	done := make(chan []NotifyOutcome)
	go func() {
		outcomes, _ := a.RecordAndNotifyAll(context.Background(), record("m3"), []smsgw.Delivery{final("m3", "webhook"), final("m3", "slow")})
		done <- outcomes
	}()
	for deadline := time.Now().Add(5 * time.Second); ; {
		webhook.mu.Lock()
		n := webhook.n
		webhook.mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook was not delivered while the slow channel waited (%d deliveries in all)", n)
		}
		time.Sleep(time.Millisecond)
	}
	if err := a.Notify(context.Background(), final("m3", "webhook")); err != nil {
		t.Fatal(err)
	}
	close(slow.release)
	if outcomes := <-done; !slices.Equal(outcomes, []NotifyOutcome{{}, {}}) {
		t.Fatalf("outcomes %+v, want both delivered", outcomes)
	}
	if webhook.n != 3 {
		t.Fatalf("the webhook delivered %d times in all, want 3: the retry while the first run waited delivered it again", webhook.n)
	}
}
