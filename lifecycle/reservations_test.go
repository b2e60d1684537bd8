package lifecycle

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

// A reservation older than the grace period that nothing closed, whose
// message's workflow does not exist, is released, once, by two
// reconcilers running at once against their own connection pools; one
// whose workflow is running, one younger than the grace period and one
// already closed are left as they are, and one older than the pass's
// window waits for a pass over every reservation. While Temporal cannot be
// asked, nothing is released.
func TestOrphanReservationIsReleasedOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dsn := testenv.MySQLDSN(t)
	var stores [2]*mysqlstore.Store
	for i := range stores {
		s, err := mysqlstore.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	tc, err := client.Dial(client.Options{HostPort: testenv.TemporalAddress(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()

	now := time.Now().UTC()
	old := now.Add(-20 * time.Minute)
	ledger := stores[0]
	if _, err := ledger.TopUp(ctx, "pre", "EUR", "inv-1", 1_000_000, old.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	reserve := func(id string, amount int64, at time.Time) {
		t.Helper()
		if _, err := ledger.Reserve(ctx, "pre", "EUR", id, amount, 1, at); err != nil {
			t.Fatal(err)
		}
	}
	reserve("orphan-1", 50_000, old)                // the start was never answered and never happened
	reserve("orphan-2", 70_000, old)                // another, on the same instant: the page cursor must not skip it
	reserve("running", 30_000, old)                 // its workflow is running
	reserve("young", 20_000, now.Add(-time.Minute)) // within the grace period
	reserve("settled", 10_000, old)
	reserve("ancient", 100_000, now.Add(-72*time.Hour)) // never started either, before the last day
	if _, err := ledger.CloseMessage(ctx, "pre", "EUR", "settled", smsgw.MoveSettle, 10_000, 1, old); err != nil {
		t.Fatal(err)
	}
	// A workflow no worker polls for stays running.
	if _, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "running", TaskQueue: "reservations-test-unpolled"}, "MessageWorkflow"); err != nil {
		t.Fatal(err)
	}

	newReconciler := func(tc client.Client, ledger OpenReservations) *ReservationReconciler {
		r, err := NewReservationReconciler(tc, ledger, 10*time.Minute, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		r.Batch = 1 // every open reservation on a page of its own
		return r
	}

	// Temporal unreachable: the pass fails and releases nothing.
	down, err := client.NewLazyClient(client.Options{HostPort: closedAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	r := newReconciler(down, ledger)
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	if released, err := r.ReconcileOnce(short); err == nil || len(released) != 0 {
		t.Fatalf("with Temporal down: released %v, err %v; want an error and nothing released", released, err)
	}
	cancelShort()
	if b, err := ledger.Balance(ctx, "pre", "EUR"); err != nil || b.Reserved != 270_000 {
		t.Fatalf("held after a failed pass: %+v %v, want 0.27", b, err)
	}

	// Two replicas at once, over the last day's reservations.
	var wg sync.WaitGroup
	var released [2][]smsgw.Movement
	var rs [2]*ReservationReconciler
	for i := range stores {
		r := newReconciler(tc, stores[i])
		rs[i] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if released[i], err = r.ReconcileSince(ctx, now.Add(-24*time.Hour)); err != nil {
				t.Errorf("reconciler %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	got := map[string]int{}
	var counted float64
	for i := range released {
		for _, m := range released[i] {
			got[m.Key]++
			if m.Kind != smsgw.MoveRelease || m.Amount != 0 {
				t.Errorf("movement %+v, want a release", m)
			}
		}
		counted += testutil.ToFloat64(rs[i].released)
	}
	if counted != 2 {
		t.Errorf("smsgw_billing_orphan_reservations_released_total %v across the two, want 2", counted)
	}
	if len(got) != 2 || got["orphan-1"] != 1 || got["orphan-2"] != 1 {
		t.Fatalf("released %v, want orphan-1 and orphan-2 once each", got)
	}
	b, err := ledger.Balance(ctx, "pre", "EUR")
	if err != nil {
		t.Fatal(err)
	}
	if b.Reserved != 150_000 || b.Balance != 990_000 {
		t.Fatalf("balance %+v, want 0.99 with 0.15 held (running, young, and ancient, outside the day)", b)
	}
	// A pass over every reservation finds the ancient one, and only it.
	r = newReconciler(tc, stores[1])
	if again, err := r.ReconcileOnce(ctx); err != nil || len(again) != 1 || again[0].Key != "ancient" {
		t.Fatalf("full pass released %v (%v), want ancient alone", again, err)
	}
	if again, err := r.ReconcileOnce(ctx); err != nil || len(again) != 0 {
		t.Fatalf("another full pass released %v (%v), want nothing", again, err)
	}
	if b, err := ledger.Balance(ctx, "pre", "EUR"); err != nil || b.Reserved != 50_000 {
		t.Fatalf("held at the end: %+v %v, want 0.05 (running and young)", b, err)
	}
	if d, err := ledger.Reconcile(ctx); err != nil || len(d) != 0 {
		t.Fatalf("ledger against balances: %v %v", d, err)
	}
}
