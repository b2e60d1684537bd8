package activities

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/smsgw/smsgw"
)

type countingChannel struct {
	mu sync.Mutex
	n  int
}

func (c *countingChannel) Deliver(context.Context, smsgw.Delivery) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return nil
}

type discardEvents struct{}

func (discardEvents) AppendEvents(context.Context, ...smsgw.Event) error { return nil }

// A local activity that delivered a notification runs again when its
// workflow task could not complete; the second run must not deliver it
// again, while another notification of the same message still goes out.
func TestNotifyRunAgainDoesNotDeliverTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	recent, err := NewRecentDeliveries(time.Minute, 10, reg)
	if err != nil {
		t.Fatal(err)
	}
	ch := &countingChannel{}
	now := time.Now()
	a := &Activities{Channels: map[string]Channel{"webhook": ch}, Events: discardEvents{}, Recent: recent,
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}
	final := smsgw.Delivery{Channel: "webhook", CustomerID: "acme",
		Notification: &smsgw.Notification{MessageID: "m1", Status: smsgw.StatusDelivered, Seq: 2}}
	for range 2 {
		if err := a.Notify(context.Background(), final); err != nil {
			t.Fatal(err)
		}
	}
	if ch.n != 1 {
		t.Fatalf("delivered %d times, want 1", ch.n)
	}
	if got := testutil.ToFloat64(recent.skipped); got != 1 {
		t.Errorf("repeats skipped = %v, want 1", got)
	}
	sent := final
	sent.Notification = &smsgw.Notification{MessageID: "m1", Status: smsgw.StatusSent, Seq: 1}
	if err := a.Notify(context.Background(), sent); err != nil {
		t.Fatal(err)
	}
	if ch.n != 2 {
		t.Errorf("another notification of the message: delivered %d in all, want 2", ch.n)
	}
	// Forgotten after keep: a redelivery much later goes out.
	now = now.Add(2 * time.Minute)
	if err := a.Notify(context.Background(), final); err != nil {
		t.Fatal(err)
	}
	if ch.n != 3 {
		t.Errorf("after the memory expired: delivered %d in all, want 3", ch.n)
	}
}
