package mysqlstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

func TestLedgerRefusesWhatTheBalanceCannotCover(t *testing.T) {
	s, _ := open(t)
	c := ctx(t)
	if _, err := s.TopUp(c, "acme", "EUR", "inv-1", 100_000, t0); err != nil { // 0.10
		t.Fatal(err)
	}
	for _, id := range []string{"m1", "m2"} {
		if m, err := s.Reserve(c, "acme", "EUR", id, 50_000, 1, t0); err != nil || !m.New {
			t.Fatalf("Reserve(%s) = %+v, %v", id, m, err)
		}
	}
	_, err := s.Reserve(c, "acme", "EUR", "m3", 50_000, 1, t0)
	if smsgw.ErrorCode(err) != smsgw.EPAYMENT {
		t.Fatalf("Reserve(m3) with nothing available: %v, want EPAYMENT", err)
	}
	if want := "insufficient balance: the message costs 0.05 EUR and 0.00 EUR is available; top up the account"; smsgw.ErrorMessage(err) != want {
		t.Errorf("refusal %q, want %q", smsgw.ErrorMessage(err), want)
	}
	// A reservation made before stands whatever the balance is now.
	if m, err := s.Reserve(c, "acme", "EUR", "m1", 50_000, 1, t0); err != nil || m.New || m.Reserved != 50_000 {
		t.Fatalf("Reserve(m1) again = %+v, %v; want the first movement", m, err)
	}
	// m2 is released: its hold is lifted, and m3 fits.
	if m, err := s.CloseMessage(c, "acme", "EUR", "m2", smsgw.MoveRelease, 0, 1, t0); err != nil || m.Reserved != -50_000 || m.Amount != 0 {
		t.Fatalf("release m2 = %+v, %v", m, err)
	}
	if _, err := s.Reserve(c, "acme", "EUR", "m3", 50_000, 1, t0); err != nil {
		t.Fatalf("Reserve(m3) after the release: %v", err)
	}
	// m1 is settled for two segments (it failed over to a connector that
	// split it in two): 0.10 charged against the 0.05 held.
	if m, err := s.CloseMessage(c, "acme", "EUR", "m1", smsgw.MoveSettle, 100_000, 2, t0); err != nil || m.Amount != -100_000 || m.Reserved != -50_000 {
		t.Fatalf("settle m1 = %+v, %v", m, err)
	}
	// A second close of either kind is the first.
	if m, err := s.CloseMessage(c, "acme", "EUR", "m1", smsgw.MoveRelease, 0, 1, t0); err != nil || m.New || m.Kind != smsgw.MoveSettle {
		t.Fatalf("release after settle = %+v, %v; want the settlement", m, err)
	}
	b, err := s.Balance(c, "acme", "EUR")
	if err != nil {
		t.Fatal(err)
	}
	if b.Balance != 0 || b.Reserved != 50_000 || b.Available() != -50_000 {
		t.Errorf("balance %+v, want 0.00 with 0.05 held (m3)", b)
	}
	// A postpaid message is charged with nothing held.
	if m, err := s.CloseMessage(c, "acme", "EUR", "p1", smsgw.MoveSettle, 30_000, 1, t0); err != nil || m.Reserved != 0 {
		t.Fatalf("settle p1 = %+v, %v", m, err)
	}
	if d, err := s.Reconcile(c); err != nil || len(d) != 0 {
		t.Errorf("Reconcile = %+v, %v", d, err)
	}
}

// TestLedgerExactlyOnceAcrossTwoClients runs the steps of many messages
// from two stores (two connection pools, as two replicas have) at once,
// each step several times and some of them cut off mid-transaction and
// retried, and checks that the ledger holds one movement per step and
// the balance is exactly the top-up minus what was settled.
func TestLedgerExactlyOnceAcrossTwoClients(t *testing.T) {
	s1, dsn := open(t)
	s2, err := mysqlstore.Open(ctx(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	stores := []*mysqlstore.Store{s1, s2}
	c := ctx(t)

	const topUp = 1_000 * smsgw.MicrosPerUnit
	for _, s := range stores { // the same top-up from both: counted once
		if _, err := s.TopUp(c, "acme", "EUR", "inv-42", topUp, t0); err != nil {
			t.Fatal(err)
		}
	}

	const messages = 40
	const unit = 50_000 // 0.05 a segment
	var cutOff atomic.Int64
	// step runs f until it succeeds; the first tries of some are cut off
	// after a random moment, which may fall before, inside or after the
	// transaction's commit.
	step := func(f func(context.Context) error) error {
		for try := 0; ; try++ {
			stepCtx, cancel := c, context.CancelFunc(func() {})
			if try < 2 && rand.IntN(6) == 0 {
				stepCtx, cancel = context.WithTimeout(c, time.Duration(rand.IntN(3000))*time.Microsecond)
				cutOff.Add(1)
			}
			err := f(stepCtx)
			cancel()
			if err == nil || smsgw.ErrorCode(err) == smsgw.EPAYMENT {
				return err
			}
			if c.Err() != nil {
				return err
			}
		}
	}
	var wg sync.WaitGroup
	var settled atomic.Int64
	errs := make(chan error, messages*8)
	for i := range messages {
		id := fmt.Sprintf("msg-%03d", i)
		reserved, sent := 1+i%3, 1+(i+1)%3 // the segments reserved for, and those finally sent
		settle := i%4 != 0                 // one in four is cancelled or expires unsent
		if settle {
			settled.Add(int64(unit * sent))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The same reservation and the same close, from both
			// stores, twice each, concurrently.
			var inner sync.WaitGroup
			for k := range 4 {
				inner.Add(1)
				go func() {
					defer inner.Done()
					s := stores[k%2]
					if err := step(func(ctx context.Context) error {
						_, err := s.Reserve(ctx, "acme", "EUR", id, int64(unit*reserved), reserved, t0)
						return err
					}); err != nil {
						errs <- fmt.Errorf("reserve %s: %w", id, err)
					}
				}()
			}
			inner.Wait()
			for k := range 4 {
				inner.Add(1)
				go func() {
					defer inner.Done()
					s := stores[k%2]
					kind, charge := smsgw.MoveRelease, int64(0)
					if settle {
						kind, charge = smsgw.MoveSettle, int64(unit*sent)
					}
					if err := step(func(ctx context.Context) error {
						_, err := s.CloseMessage(ctx, "acme", "EUR", id, kind, charge, sent, t0)
						return err
					}); err != nil {
						errs <- fmt.Errorf("close %s: %w", id, err)
					}
				}()
			}
			inner.Wait()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d step tries cut off and retried", cutOff.Load())

	b, err := s2.Balance(c, "acme", "EUR")
	if err != nil {
		t.Fatal(err)
	}
	if want := topUp - settled.Load(); b.Balance != want || b.Reserved != 0 {
		t.Errorf("balance %s held %s, want %s held 0.00", smsgw.FormatMicros(b.Balance), smsgw.FormatMicros(b.Reserved), smsgw.FormatMicros(want))
	}
	moves, err := s1.Movements(c, "acme", 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(moves) != 1+2*messages {
		t.Errorf("%d movements, want %d (one top-up, one reservation and one close per message)", len(moves), 1+2*messages)
	}
	var sum, held int64
	steps := map[string]int{}
	for _, m := range moves {
		sum += m.Amount
		held += m.Reserved
		steps[m.Key+"/"+m.Step]++
	}
	for k, n := range steps {
		if n != 1 {
			t.Errorf("step %s counted %d times", k, n)
		}
	}
	if sum != b.Balance || held != b.Reserved {
		t.Errorf("ledger sums to %d held %d, balances row says %d held %d", sum, held, b.Balance, b.Reserved)
	}
	if d, err := s1.Reconcile(c); err != nil || len(d) != 0 {
		t.Errorf("Reconcile = %+v, %v", d, err)
	}
}

func TestMessageRowKeepsItsCost(t *testing.T) {
	s, _ := open(t)
	r := accepted("cost-1")
	upsert(t, s, r)
	f := final("cost-1", smsgw.StatusDelivered, t0.Add(time.Minute))
	f.CostMicros, f.Currency = 130_000, "EUR"
	upsert(t, s, f)
	upsert(t, s, final("cost-1", smsgw.StatusDelivered, t0.Add(2*time.Minute))) // a later write without the cost keeps it
	if got := get(t, s, "cost-1"); got.CostMicros != 130_000 || got.Currency != "EUR" {
		t.Errorf("row cost %d %s, want 130000 EUR", got.CostMicros, got.Currency)
	}
}
