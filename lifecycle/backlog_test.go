package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/smsgw/smsgw"
)

// sharedCount is the visibility store as the Backlog sees it: a count per
// customer, set by the test, and how often it was read.
type sharedCount struct {
	mu     sync.Mutex
	n      map[string]int64
	err    error
	reads  int
	before time.Time // the startedBefore of the last read
}

func (c *sharedCount) CountBacklog(_ context.Context, customerID string, _, startedBefore time.Time) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	c.before = startedBefore
	return c.n[customerID], c.err
}

func (c *sharedCount) set(customerID string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[customerID] = n
}

func newTestBacklog(t *testing.T, counter BacklogCounter) (*Backlog, *time.Time, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	b, err := NewBacklog(counter, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC) // fixed date: the clock is injected
	b.now = func() time.Time { return now }
	return b, &now, reg
}

func TestBacklogCountsOwnAcceptancesBetweenRefreshes(t *testing.T) {
	counter := &sharedCount{n: map[string]int64{"acme": 1}}
	b, _, reg := newTestBacklog(t, counter)
	ctx := context.Background()
	for i := range 2 {
		done, err := b.Admit(ctx, "acme", "", 3)
		if err != nil {
			t.Fatalf("submission %d: %v", i, err)
		}
		done(true)
	}
	_, err := b.Admit(ctx, "acme", "", 3)
	if smsgw.ErrorCode(err) != smsgw.ETHROTTLED || smsgw.RetryAfter(err) <= 0 {
		t.Fatalf("third submission over 1 shared + 2 own: %v, want ETHROTTLED with a retry time", err)
	}
	if got := testutil.ToFloat64(b.refused.WithLabelValues("acme")); got != 1 {
		t.Errorf("refusals = %v, want 1", got)
	}
	if n, _ := testutil.GatherAndCount(reg, "smsgw_customer_backlog"); n != 1 {
		t.Errorf("backlog gauge series = %d, want 1", n)
	}
	if counter.reads != 1 {
		t.Errorf("shared count read %d times within one refresh interval, want 1", counter.reads)
	}
}

func TestBacklogFailedStartDoesNotCount(t *testing.T) {
	b, _, _ := newTestBacklog(t, &sharedCount{n: map[string]int64{}})
	ctx := context.Background()
	for range 5 {
		done, err := b.Admit(ctx, "acme", "", 1)
		if err != nil {
			t.Fatal(err)
		}
		done(false) // the workflow did not start: nothing was accepted
	}
}

func TestBacklogAdmittingCountsUntilDone(t *testing.T) {
	b, _, _ := newTestBacklog(t, &sharedCount{n: map[string]int64{}})
	ctx := context.Background()
	done, err := b.Admit(ctx, "acme", "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Admit(ctx, "acme", "", 1); smsgw.ErrorCode(err) != smsgw.ETHROTTLED {
		t.Fatalf("second submission while the first starts: %v, want ETHROTTLED", err)
	}
	done(true)
}

func TestBacklogDrainsWithTheSharedCount(t *testing.T) {
	counter := &sharedCount{n: map[string]int64{"acme": 5}}
	b, now, _ := newTestBacklog(t, counter)
	ctx := context.Background()
	if _, err := b.Admit(ctx, "acme", "", 5); smsgw.ErrorCode(err) != smsgw.ETHROTTLED {
		t.Fatalf("at the bound: %v, want ETHROTTLED", err)
	}
	counter.set("acme", 2) // sent meanwhile, by any replica
	*now = now.Add(BacklogRefresh + visibilityLag)
	// The first call after the interval starts a refresh in the background
	// and answers from the count it holds; a later one sees the new count.
	deadline := time.Now().Add(10 * time.Second)
	for {
		done, err := b.Admit(ctx, "acme", "", 5)
		if err == nil {
			done(true)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never admitted after the backlog drained: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBacklogCountFailureKeepsAdmitting(t *testing.T) {
	counter := &sharedCount{n: map[string]int64{}, err: errors.New("visibility unavailable")}
	b, _, _ := newTestBacklog(t, counter)
	done, err := b.Admit(context.Background(), "acme", "", 10)
	if err != nil {
		t.Fatalf("with the count unavailable: %v, want admitted (the start answers for Temporal)", err)
	}
	done(true)
}

func TestBacklogNoBound(t *testing.T) {
	counter := &sharedCount{n: map[string]int64{"acme": 1 << 20}}
	b, _, _ := newTestBacklog(t, counter)
	if _, err := b.Admit(context.Background(), "acme", "", 0); err != nil {
		t.Fatalf("bound 0: %v, want no cap", err)
	}
	if counter.reads != 0 {
		t.Errorf("count read %d times without a bound, want 0", counter.reads)
	}
}

// The shared count leaves out the workflows started within visibilityLag,
// the very ones the process adds from its own acceptances: a message this
// process accepted is counted once, not by both.
func TestBacklogCountsOwnRecentAcceptancesOnce(t *testing.T) {
	counter := &sharedCount{n: map[string]int64{}}
	b, now, _ := newTestBacklog(t, counter)
	ctx := context.Background()
	done, err := b.Admit(ctx, "acme", "", 2)
	if err != nil {
		t.Fatal(err)
	}
	done(true)
	if want := now.Add(-visibilityLag); !counter.before.Equal(want) {
		t.Fatalf("counted workflows started before %v, want before %v", counter.before, want)
	}
	// The store now sees the first message, but only as started within the
	// lag: it is not in the count, and the process's own acceptance stands
	// for it. A second submission fits under a bound of 2.
	*now = now.Add(BacklogRefresh)
	b.refresh(ctx, "acme", b.customers["acme"])
	if _, err := b.Admit(ctx, "acme", "", 2); err != nil {
		t.Fatalf("second submission under a bound of 2: %v", err)
	}
}

func TestBacklogQueryCountsDueAcceptedMessagesOfOneCustomer(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC) // fixed date: only formatted
	q := BacklogQuery("acme", at, at.Add(-2*time.Second))
	for _, want := range []string{`StartTime < "2026-12-02T09:59:58Z"`, `CustomerId = "acme"`, `MessageStatus = "ACCEPTED"`, `ExecutionStatus = 'Running'`, `DueAt <= "2026-12-02T10:00:00Z"`, `WorkflowType = "MessageWorkflow"`} {
		if !strings.Contains(q, want) {
			t.Errorf("query %q lacks %s", q, want)
		}
	}
}

// A message this process handed upstream leaves its own count at once:
// the count of a customer sending quickly is what waits, not the last
// seconds' acceptances. One that was not handed stays counted.
func TestBacklogHandedUpstreamLeavesOwnCount(t *testing.T) {
	b, _, _ := newTestBacklog(t, &sharedCount{n: map[string]int64{}})
	ctx := context.Background()
	for i := range 10 {
		id := fmt.Sprintf("msg-%d", i)
		done, err := b.Admit(ctx, "acme", id, 2)
		if err != nil {
			t.Fatalf("submission %d, the ones before handed upstream: %v", i, err)
		}
		done(true)
		b.Handed(id)
	}
	b.Handed("msg-0") // twice, as a retried send may: counted out once
	b.Handed("someone-else")
	for i := range 2 {
		done, err := b.Admit(ctx, "acme", fmt.Sprintf("waiting-%d", i), 2)
		if err != nil {
			t.Fatalf("waiting message %d under a bound of 2: %v", i, err)
		}
		done(true)
	}
	if _, err := b.Admit(ctx, "acme", "third", 2); smsgw.ErrorCode(err) != smsgw.ETHROTTLED {
		t.Fatalf("third message while two wait: %v, want ETHROTTLED", err)
	}
}

// Own admissions are forgotten once the shared count covers them, handed
// or not, so the memory of them stays as small as the lag.
func TestBacklogForgetsOldAdmissions(t *testing.T) {
	counter := &sharedCount{n: map[string]int64{}}
	b, now, _ := newTestBacklog(t, counter)
	ctx := context.Background()
	for i := range 5 {
		done, err := b.Admit(ctx, "acme", fmt.Sprintf("msg-%d", i), 100)
		if err != nil {
			t.Fatal(err)
		}
		done(true)
	}
	counter.set("acme", 5) // the store has them all now
	*now = now.Add(visibilityLag + BacklogRefresh)
	b.refresh(ctx, "acme", b.customers["acme"])
	done, err := b.Admit(ctx, "acme", "next", 100)
	if err != nil {
		t.Fatal(err)
	}
	done(true)
	if got := testutil.ToFloat64(b.gauge.WithLabelValues("acme")); got != 5 {
		t.Errorf("backlog = %v, want the shared 5 (the admissions it covers forgotten)", got)
	}
	if len(b.own) != 1 {
		t.Errorf("%d admissions remembered, want 1 (the one since the count)", len(b.own))
	}
}
