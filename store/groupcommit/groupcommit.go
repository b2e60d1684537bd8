// Package groupcommit writes many callers' small writes as one. A caller
// hands its items to a Committer and waits; the Committer gathers the items
// of the callers that come while a write is in flight into one batch,
// written with one round trip, and tells each caller how its own items
// fared. A caller returns only once its items are durable (or have failed),
// so nothing is acknowledged earlier than with a write of its own.
//
// With no write in flight an item goes out at once, so a lone caller waits
// no longer than before; under load the batches grow on their own up to
// MaxBatch, and the cost of a round trip is shared by everyone in it. With
// Options.Linger, a batch that comes soon after another waits a little for
// company even with no write in flight: a caller that writes again and
// again, one write after the other, then waits up to Linger each time.
//
// A caller whose items nobody waits on (the look for receipts that came
// before their correlation, made in the background after the send
// returned; the record that a notification went out, written in the
// background once the customer heard) hands its items with DoLazy: they
// go with the next batch that goes for a caller of Do, or after
// Options.LazyWait, so they seldom cost a round trip of their own.
//
// Reads can be batched the same way: the items are the questions, and the
// write function fills in their answers.
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// WriteFunc writes a batch of items in one round trip and returns one error
// per item, in order (a nil slice when every item was written). A write
// that fails as a whole returns the same error for each item; one that
// fails part-way fails only the items that failed.
type WriteFunc[T any] func(ctx context.Context, items []T) []error

// Options tune a Committer. The zero value gives the defaults.
type Options struct {
	// MaxBatch caps the items in one write. Default 200.
	MaxBatch int
	// MaxWait is how long a batch waits for more items while other writes
	// are in flight. Default 2 ms.
	MaxWait time.Duration
	// Linger is how long a batch waits for more items when no other write
	// is in flight but one started less than streamGap ago: under a steady
	// stream of writes, too sparse to meet a write in flight, the batches
	// still grow, while a write after a quiet spell goes at once. Default
	// 0: a batch waits only while another write is in flight.
	Linger time.Duration
	// LazyWait is how long items handed with DoLazy wait for a batch of
	// items that are waited on, to go with it, before they go on their
	// own. Default 50 ms.
	LazyWait time.Duration
	// Writes is how many writes may be in flight at once. Default 4.
	Writes int
	// Timeout bounds one write. Default 30 s.
	Timeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 200
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 2 * time.Millisecond
	}
	if o.LazyWait <= 0 {
		o.LazyWait = 50 * time.Millisecond
	}
	if o.Writes <= 0 {
		o.Writes = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return o
}

// streamGap is the longest time between two batches for the second to
// linger (Options.Linger): writes closer than that are a stream.
const streamGap = 100 * time.Millisecond

// ErrClosed is returned for items handed to a closed Committer.
var ErrClosed = errors.New("groupcommit: closed")

// request is one caller's items and where their outcome goes.
type request[T any] struct {
	items []T
	done  chan error
	lazy  bool        // handed with DoLazy or DoLazyThen
	then  func(error) // DoLazyThen's: told the outcome by the Committer
}

// Committer batches the writes of one kind (events, reporting rows, …).
// It is safe for concurrent use.
type Committer[T any] struct {
	write    WriteFunc[T]
	opts     Options
	queue    chan *request[T]
	inFlight chan struct{} // one token per write in flight
	stop     chan struct{} // closed by Close, with closed set
	stopped  chan struct{}
	closeMu  sync.RWMutex // held to read by enqueue, to write by Close
	closed   bool
	metrics  *Metrics
	name     string
	// lastStart is when the last batch was gathered, kept by run.
	lastStart time.Time
}

// New starts a Committer that writes with write. Its metrics carry the
// label store=name on m (nil: none).
func New[T any](name string, write WriteFunc[T], opts Options, m *Metrics) *Committer[T] {
	opts = opts.withDefaults()
	c := &Committer[T]{
		write:    write,
		opts:     opts,
		queue:    make(chan *request[T], 4*opts.MaxBatch),
		inFlight: make(chan struct{}, opts.Writes),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
		metrics:  m,
		name:     name,
	}
	go c.run()
	return c
}

// Do writes items as part of a batch and returns once they are written:
// nil when all were, else the first error among them. A caller whose ctx
// ends first gets its error; its items may still be written (writes are
// idempotent for the stores that use this).
func (c *Committer[T]) Do(ctx context.Context, items ...T) error {
	return c.do(ctx, false, items)
}

// DoLazy is Do for items no customer waits on: they wait up to
// Options.LazyWait for a batch that goes for a caller of Do, and go with
// it, instead of starting one of their own. The caller itself waits as
// long.
func (c *Committer[T]) DoLazy(ctx context.Context, items ...T) error {
	return c.do(ctx, true, items)
}

// DoLazyThen is DoLazy for a caller that does not wait for the write: it
// returns once the items are queued (at once, unless the queue is full:
// then when there is room, or with ctx's error), and then, called on the
// Committer's goroutine, hears how they fared; then must not block. Close
// writes what was queued at once. An error returned means the items were
// not taken, and then is not called.
func (c *Committer[T]) DoLazyThen(ctx context.Context, then func(error), items ...T) error {
	if len(items) == 0 {
		if then != nil {
			then(nil)
		}
		return nil
	}
	return c.enqueue(ctx, &request[T]{items: items, done: make(chan error, 1), lazy: true, then: then})
}

func (c *Committer[T]) do(ctx context.Context, lazy bool, items []T) error {
	if len(items) == 0 {
		return nil
	}
	r := &request[T]{items: items, done: make(chan error, 1), lazy: lazy}
	if err := c.enqueue(ctx, r); err != nil {
		return err
	}
	select {
	case err := <-r.done: // every request queued is answered, Close or not
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enqueue hands r to the batches. Close waits for an enqueue under way,
// so that every request queued is written before Close returns.
func (c *Committer[T]) enqueue(ctx context.Context, r *request[T]) error {
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	if c.closed {
		return ErrClosed
	}
	c.metrics.queued(c.name, len(r.items))
	select {
	case c.queue <- r:
		return nil
	case <-ctx.Done():
		c.metrics.queued(c.name, -len(r.items))
		return ctx.Err()
	}
}

// Close stops taking items, writes those already taken and returns when
// the last write is done.
func (c *Committer[T]) Close() {
	c.closeMu.Lock()
	if !c.closed {
		c.closed = true
		close(c.stop)
	}
	c.closeMu.Unlock()
	<-c.stopped
}

// run gathers batches and starts their writes, at most opts.Writes at once.
func (c *Committer[T]) run() {
	defer close(c.stopped)
	defer func() { // wait for the writes in flight
		for range c.opts.Writes {
			c.inFlight <- struct{}{}
		}
	}()
	for {
		var first *request[T]
		select {
		case first = <-c.queue:
		case <-c.stop:
			c.drain()
			return
		}
		batch := c.gather(first)
		c.lastStart = time.Now()
		c.inFlight <- struct{}{}
		go func() {
			defer func() { <-c.inFlight }()
			c.flush(batch)
		}()
	}
}

// gather adds to first what is queued, up to MaxBatch items. While other
// writes are in flight it waits up to MaxWait for more; with none, it
// waits up to Linger when the last batch started less than streamGap ago,
// else the batch goes at once. The wait is chosen once, when the batch
// first has to wait: one that began to wait MaxWait behind a write keeps
// to MaxWait when that write ends. A batch of lazy requests only waits up
// to LazyWait from its first, until a request that is not lazy joins it:
// from then on it is that request's batch.
func (c *Committer[T]) gather(first *request[T]) []*request[T] {
	streaming := c.opts.Linger > 0 && time.Since(c.lastStart) < streamGap
	batch := []*request[T]{first}
	n := len(first.items)
	lazy := first.lazy
	var timeout <-chan time.Time
	if lazy {
		t := time.NewTimer(c.opts.LazyWait)
		defer t.Stop()
		timeout = t.C
	}
	add := func(r *request[T]) {
		batch = append(batch, r)
		n += len(r.items)
		if lazy && !r.lazy { // the wait is chosen again, as for a batch r began
			lazy, timeout = false, nil
			streaming = c.opts.Linger > 0 && time.Since(c.lastStart) < streamGap
		}
	}
	for n < c.opts.MaxBatch {
		select {
		case r := <-c.queue:
			add(r)
			continue
		default:
		}
		if timeout == nil {
			wait := c.opts.MaxWait
			if len(c.inFlight) == 0 {
				if !streaming {
					return batch
				}
				wait = c.opts.Linger
			}
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case r := <-c.queue:
			add(r)
		case <-timeout:
			return batch
		case <-c.stop:
			return batch
		}
	}
	return batch
}

// drain writes what is still queued once Close was called.
func (c *Committer[T]) drain() {
	for {
		select {
		case r := <-c.queue:
			c.flush(c.gather(r))
		default:
			return
		}
	}
}

// flush writes one batch and answers its callers.
func (c *Committer[T]) flush(batch []*request[T]) {
	var items []T
	for _, r := range batch {
		items = append(items, r.items...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	start := time.Now()
	errs := c.write(ctx, items)
	c.metrics.flushed(c.name, len(items), time.Since(start), errs)
	if errs != nil && len(errs) != len(items) {
		err := fmt.Errorf("groupcommit %s: the write gave %d results for %d items", c.name, len(errs), len(items))
		errs = make([]error, len(items))
		for i := range errs {
			errs[i] = err
		}
	}
	i := 0
	for _, r := range batch {
		var err error
		if errs != nil {
			err = errors.Join(errs[i : i+len(r.items)]...)
		}
		i += len(r.items)
		r.done <- err
		if r.then != nil {
			r.then(err)
		}
	}
}

// Metrics are the committers' Prometheus metrics, shared by every
// Committer of a process and told apart by their store label.
type Metrics struct {
	batch  *prometheus.HistogramVec
	flush  *prometheus.HistogramVec
	queue  *prometheus.GaugeVec
	failed *prometheus.CounterVec
}

// NewMetrics registers the committers' metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "smsgw_store_batch_items",
			Help:    "Items written (or looked up) per batch (group commit), by store.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}, []string{"store"}),
		flush: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "smsgw_store_batch_write_seconds",
			Help:    "Time to write (or look up) one batch, by store.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"store"}),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "smsgw_store_batch_queued_items",
			Help: "Items waiting for a batch write, by store.",
		}, []string{"store"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsgw_store_batch_failed_items_total",
			Help: "Items whose batch failed (their callers retry or give up), by store.",
		}, []string{"store"}),
	}
	for _, c := range []prometheus.Collector{m.batch, m.flush, m.queue, m.failed} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("groupcommit metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) queued(store string, n int) {
	if m != nil {
		m.queue.WithLabelValues(store).Add(float64(n))
	}
}

func (m *Metrics) flushed(store string, n int, took time.Duration, errs []error) {
	if m == nil {
		return
	}
	m.queue.WithLabelValues(store).Sub(float64(n))
	m.batch.WithLabelValues(store).Observe(float64(n))
	m.flush.WithLabelValues(store).Observe(took.Seconds())
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	m.failed.WithLabelValues(store).Add(float64(failed))
}

// QueuedGauge is the gauge of items waiting in store's committers.
func (m *Metrics) QueuedGauge(store string) prometheus.Gauge { return m.queue.WithLabelValues(store) }

// Batches is how many batches store's committers have written.
func (m *Metrics) Batches(store string) uint64 {
	var out dto.Metric
	if err := m.batch.WithLabelValues(store).(prometheus.Metric).Write(&out); err != nil {
		return 0
	}
	return out.GetHistogram().GetSampleCount()
}
