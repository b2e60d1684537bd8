package groupcommit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/groupcommit"
)

// recorder is a write function that keeps its batches and can be slowed
// down and told which items fail.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	delay   time.Duration
	bad     func(int) error // the error of one item, nil when it is written
	whole   error           // when set, the whole write fails
}

func (r *recorder) write(ctx context.Context, items []int) []error {
	time.Sleep(r.delay)
	r.mu.Lock()
	r.batches = append(r.batches, slices.Clone(items))
	r.mu.Unlock()
	errs := make([]error, len(items))
	failed := false
	for i, it := range items {
		switch {
		case r.whole != nil:
			errs[i], failed = r.whole, true
		case r.bad != nil && r.bad(it) != nil:
			errs[i], failed = r.bad(it), true
		}
	}
	if !failed {
		return nil
	}
	return errs
}

func (r *recorder) written() (batches, items int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.batches {
		items += len(b)
	}
	return len(r.batches), items
}

func TestConcurrentCallersShareWrites(t *testing.T) {
	rec := &recorder{delay: 5 * time.Millisecond}
	reg := prometheus.NewRegistry()
	m, err := groupcommit.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	c := groupcommit.New("events", rec.write, groupcommit.Options{MaxBatch: 50}, m)
	defer c.Close()
	const callers = 400
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Do(context.Background(), i); err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	batches, items := rec.written()
	if failed.Load() != 0 || items != callers {
		t.Fatalf("%d failed, %d items written, want 0 and %d", failed.Load(), items, callers)
	}
	if batches > callers/4 {
		t.Errorf("%d writes for %d callers: not batched", batches, callers)
	}
	for _, b := range rec.batches {
		if len(b) > 50 {
			t.Errorf("a batch of %d items, more than MaxBatch", len(b))
		}
	}
	if got := testutil.ToFloat64(m.QueuedGauge("events")); got != 0 {
		t.Errorf("queued items %v after every caller returned, want 0", got)
	}
}

func TestALoneCallerDoesNotWait(t *testing.T) {
	rec := &recorder{}
	c := groupcommit.New("rows", rec.write, groupcommit.Options{MaxWait: time.Second}, nil)
	defer c.Close()
	start := time.Now()
	if err := c.Do(context.Background(), 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 200*time.Millisecond {
		t.Fatalf("a lone write took %v: it waited for company", took)
	}
	if batches, items := rec.written(); batches != 1 || items != 3 {
		t.Fatalf("%d batches, %d items", batches, items)
	}
}

func TestAPartialFailureFailsOnlyItsCallers(t *testing.T) {
	bad := errors.New("invalid document")
	rec := &recorder{delay: 5 * time.Millisecond, bad: func(i int) error {
		if i%10 == 7 {
			return fmt.Errorf("item %d: %w", i, bad)
		}
		return nil
	}}
	c := groupcommit.New("events", rec.write, groupcommit.Options{}, nil)
	defer c.Close()
	var wg sync.WaitGroup
	errs := make([]error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Do(context.Background(), i*2, i*2+1) // a caller with two items
		}()
	}
	wg.Wait()
	for i, err := range errs {
		wantBad := (i*2)%10 == 7 || (i*2+1)%10 == 7
		if wantBad != errors.Is(err, bad) {
			t.Errorf("caller %d (items %d, %d): %v", i, i*2, i*2+1, err)
		}
	}
	if batches, _ := rec.written(); batches >= 100 {
		t.Errorf("%d writes for 100 callers: not batched", batches)
	}
}

func TestAWholeFailureFailsEveryCaller(t *testing.T) {
	down := errors.New("server unreachable")
	rec := &recorder{whole: down}
	c := groupcommit.New("rows", rec.write, groupcommit.Options{}, nil)
	defer c.Close()
	if err := c.Do(context.Background(), 1); !errors.Is(err, down) {
		t.Fatalf("Do = %v, want the write's error", err)
	}
	rec.mu.Lock()
	rec.whole = nil
	rec.mu.Unlock()
	if err := c.Do(context.Background(), 1); err != nil {
		t.Fatalf("Do after the server came back = %v", err)
	}
}

func TestACallerThatGivesUpReturnsAndTheRestGoOn(t *testing.T) {
	rec := &recorder{delay: 200 * time.Millisecond}
	c := groupcommit.New("rows", rec.write, groupcommit.Options{}, nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := c.Do(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do = %v, want the caller's deadline", err)
	}
	if err := c.Do(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
}

func TestCloseWritesWhatWasTaken(t *testing.T) {
	rec := &recorder{delay: 10 * time.Millisecond}
	c := groupcommit.New("rows", rec.write, groupcommit.Options{Writes: 1}, nil)
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.Do(context.Background(), i) == nil {
				ok.Add(1)
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	c.Close()
	wg.Wait()
	if _, items := rec.written(); int64(items) != ok.Load() {
		t.Fatalf("%d items written, %d callers told they were", items, ok.Load())
	}
	if err := c.Do(context.Background(), 99); !errors.Is(err, groupcommit.ErrClosed) {
		t.Fatalf("Do after Close = %v", err)
	}
}

// TestAStreamOfWritesLingers: writes 5 ms apart, each done before the
// next comes, never meet a write in flight; with Linger they still share
// batches, and a write after a quiet spell goes at once.
func TestAStreamOfWritesLingers(t *testing.T) {
	for _, linger := range []time.Duration{0, 200 * time.Millisecond} {
		rec := &recorder{}
		c := groupcommit.New("events", rec.write, groupcommit.Options{Linger: linger}, nil)
		start := time.Now()
		if err := c.Do(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > linger/2+50*time.Millisecond {
			t.Errorf("linger %v: the first write took %v: it waited after a quiet spell", linger, took)
		}
		var wg sync.WaitGroup
		for i := 1; i <= 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.Do(context.Background(), i); err != nil {
					t.Error(err)
				}
			}()
			time.Sleep(5 * time.Millisecond)
		}
		wg.Wait()
		// After a quiet spell longer than a stream's gaps, a write goes at
		// once again.
		time.Sleep(150 * time.Millisecond)
		start = time.Now()
		if err := c.Do(context.Background(), 21); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > linger/2+50*time.Millisecond {
			t.Errorf("linger %v: a write after a quiet spell took %v", linger, took)
		}
		c.Close()
		batches, items := rec.written()
		batches-- // the write after the quiet spell
		items--
		if items != 21 {
			t.Fatalf("linger %v: %d items written, want 21", linger, items)
		}
		switch {
		case linger == 0 && batches < 12:
			t.Errorf("no linger: %d batches for 21 writes 5 ms apart, want about one each", batches)
		case linger > 0 && batches > 10:
			t.Errorf("linger %v: %d batches for 21 writes 5 ms apart: they did not wait for each other", linger, batches)
		}
		t.Logf("linger %v: %d batches for 21 writes", linger, batches)
	}
}

func newMetrics(t *testing.T) *groupcommit.Metrics {
	t.Helper()
	m, err := groupcommit.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitQueued waits until n items wait in store's batches.
func waitQueued(t *testing.T, m *groupcommit.Metrics, store string, n float64) {
	t.Helper()
	testenv.WaitFor(t, fmt.Sprintf("%v items waiting in the %s batches", n, store), func() bool {
		return testutil.ToFloat64(m.QueuedGauge(store)) == n
	})
}

// Lazy items go with the next batch made for a caller who is waited on,
// and that caller does not wait for them.
func TestLazyItemsGoWithTheNextBatch(t *testing.T) {
	rec := &recorder{}
	m := newMetrics(t)
	c := groupcommit.New("events", rec.write, groupcommit.Options{LazyWait: 5 * time.Second}, m)
	defer c.Close()
	lazyDone := make(chan error, 2)
	for _, item := range []int{1, 2} {
		go func() { lazyDone <- c.DoLazy(context.Background(), item) }()
	}
	waitQueued(t, m, "events", 2)
	time.Sleep(50 * time.Millisecond) // taken by the batcher, waiting
	if batches, _ := rec.written(); batches != 0 {
		t.Fatalf("%d batches before a caller who is waited on came: the lazy items did not wait", batches)
	}
	start := time.Now()
	if err := c.Do(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the write waited on took %v: it waited out the lazy items' wait", took)
	}
	for range 2 {
		if err := <-lazyDone; err != nil {
			t.Fatal(err)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.batches) != 1 || len(rec.batches[0]) != 3 {
		t.Fatalf("batches %v, want the two lazy items and the other in one", rec.batches)
	}
}

// With nothing else to go with, lazy items go on their own after LazyWait,
// however quiet the store.
func TestLazyItemsAloneGoAfterTheirWait(t *testing.T) {
	rec := &recorder{}
	const wait = 150 * time.Millisecond
	c := groupcommit.New("parked_lookups", rec.write, groupcommit.Options{LazyWait: wait}, nil)
	defer c.Close()
	start := time.Now()
	if err := c.DoLazy(context.Background(), 1, 2, 3, 4, 5); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < wait*9/10 || took > 10*wait {
		t.Fatalf("lazy items alone took %v to be written, want about %v", took, wait)
	}
	if batches, items := rec.written(); batches != 1 || items != 5 {
		t.Fatalf("%d batches, %d items: want the five lazy items in one", batches, items)
	}
}

// A write waited on that joins lazy items is judged as if it began the
// batch: after a quiet spell it goes at once, even though the lazy items
// came while the last batch was recent enough to linger for.
func TestAWriteJoiningLazyItemsAfterAQuietSpellDoesNotLinger(t *testing.T) {
	rec := &recorder{}
	m := newMetrics(t)
	const linger = time.Second
	c := groupcommit.New("events", rec.write, groupcommit.Options{Linger: linger, LazyWait: time.Hour}, m)
	defer c.Close()
	if err := c.Do(context.Background(), 1); err != nil { // the last batch
		t.Fatal(err)
	}
	go func() { _ = c.DoLazy(context.Background(), 2) }() // within the stream's gap of it
	waitQueued(t, m, "events", 1)
	time.Sleep(150 * time.Millisecond) // longer than the stream's gap (100 ms)
	start := time.Now()
	if err := c.Do(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > linger/2 {
		t.Fatalf("the write took %v: it lingered, judged by the lazy item's arrival", took)
	}
}

// Close writes lazy items at once, without their wait.
func TestCloseDoesNotWaitOutLazyItems(t *testing.T) {
	rec := &recorder{}
	m := newMetrics(t)
	c := groupcommit.New("events", rec.write, groupcommit.Options{LazyWait: time.Hour}, m)
	done := make(chan error, 1)
	go func() { done <- c.DoLazy(context.Background(), 1) }()
	waitQueued(t, m, "events", 1)
	time.Sleep(50 * time.Millisecond) // taken by the batcher, waiting
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited out the lazy items' wait")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, items := rec.written(); items != 1 {
		t.Fatalf("%d items written, want the lazy one", items)
	}
}

// Items handed with DoLazyThen are taken without the caller waiting for
// their write: they go with the next batch waited on, then hears how they
// fared; Close writes those still waiting at once; once closed, they are
// refused and then is not called.
func TestLazyItemsHandedWithoutWaiting(t *testing.T) {
	rec := &recorder{}
	m := newMetrics(t)
	c := groupcommit.New("events", rec.write, groupcommit.Options{LazyWait: time.Hour}, m)
	heard := make(chan error, 3)
	then := func(err error) { heard <- err }
	if err := c.DoLazyThen(context.Background(), then, 1, 2); err != nil {
		t.Fatal(err)
	}
	if batches, _ := rec.written(); batches != 0 {
		t.Fatalf("%d batches written before DoLazyThen returned", batches)
	}
	if err := c.Do(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	if err := <-heard; err != nil {
		t.Fatal(err)
	}
	if batches, items := rec.written(); batches != 1 || items != 3 {
		t.Fatalf("%d batches, %d items: want the lazy items and the other in one", batches, items)
	}

	if err := c.DoLazyThen(context.Background(), then, 4); err != nil {
		t.Fatal(err)
	}
	waitQueued(t, m, "events", 1)
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited out the lazy item's wait")
	}
	select {
	case err := <-heard:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatal("Close returned before the item handed over was written")
	}
	if err := c.DoLazyThen(context.Background(), then, 5); !errors.Is(err, groupcommit.ErrClosed) {
		t.Fatalf("handed to a closed Committer: %v, want %v", err, groupcommit.ErrClosed)
	}
	if len(heard) != 0 {
		t.Fatal("then was called for items refused")
	}
	if _, items := rec.written(); items != 4 {
		t.Fatalf("%d items written, want 4", items)
	}
}

// Items handed while the Committer closes are either refused or written
// before Close returns: none is taken and then forgotten.
func TestItemsHandedWhileClosingAreWrittenOrRefused(t *testing.T) {
	for range 50 {
		rec := &recorder{}
		c := groupcommit.New("events", rec.write, groupcommit.Options{LazyWait: time.Hour}, nil)
		var written, taken, refused, lazyTaken, lazyHeard atomic.Int64
		var wg sync.WaitGroup
		const hands = 20
		for i := range hands {
			wg.Go(func() {
				var err error
				if i%2 == 0 {
					if err = c.DoLazyThen(context.Background(), func(error) { lazyHeard.Add(1) }, i); err == nil {
						lazyTaken.Add(1)
						taken.Add(1)
					}
				} else if err = c.Do(context.Background(), i); err == nil {
					taken.Add(1)
				}
				if errors.Is(err, groupcommit.ErrClosed) {
					refused.Add(1)
				}
			})
		}
		c.Close()
		_, items := rec.written()
		written.Store(int64(items))
		heardByClose := lazyHeard.Load()
		wg.Wait()
		if taken.Load()+refused.Load() != hands || written.Load() != taken.Load() || heardByClose != lazyTaken.Load() {
			t.Fatalf("%d taken, %d refused, %d written when Close returned; %d handed lazily, %d heard of by then; want every item written or refused, and heard of by then",
				taken.Load(), refused.Load(), written.Load(), lazyTaken.Load(), heardByClose)
		}
	}
}

// BenchmarkCommitter writes from 64 goroutines through a store whose round
// trip costs 1 ms, batched and one write per item.
func BenchmarkCommitter(b *testing.B) {
	for _, most := range []int{1, 200} {
		b.Run(fmt.Sprintf("maxBatch=%d", most), func(b *testing.B) {
			rec := &recorder{delay: time.Millisecond}
			c := groupcommit.New("bench", rec.write, groupcommit.Options{MaxBatch: most, Writes: 4}, nil)
			defer c.Close()
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := c.Do(context.Background(), 1); err != nil {
						b.Error(err)
					}
				}
			})
			batches, items := rec.written()
			b.ReportMetric(float64(items)/float64(max(batches, 1)), "items/write")
		})
	}
}
