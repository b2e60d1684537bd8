// Package upstream runs the gateway's side of the binds to upstream SMSCs: the
// send activity that submits a message's parts, and the matching of delivery
// receipts to messages through the correlation store, free of races.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/workflows"
)

// Correlations is the shared store of upstream ID → message, and of receipts
// that arrived before their correlation was written.
type Correlations interface {
	PutCorrelation(ctx context.Context, c smsgw.Correlation) error
	LookupCorrelation(ctx context.Context, connectorID, upstreamID string) (smsgw.Correlation, bool, error)
	ParkReceipt(ctx context.Context, r smsgw.Receipt) error
	ParkedReceipts(ctx context.Context, connectorID, upstreamID string) ([]smsgw.Receipt, error)
	// TakeParked removes a parked receipt, true only for the caller that removed it.
	TakeParked(ctx context.Context, r smsgw.Receipt) (bool, error)
	// ListParked returns up to limit receipts parked before olderThan whose
	// ParkedKey comes after after ("": from the first), in key order.
	ListParked(ctx context.Context, olderThan time.Time, after string, limit int) ([]smsgw.Receipt, error)
	CountParked(ctx context.Context) (int64, error)
	// Correlated reports, for each receipt, whether its upstream ID was
	// given to a message lately, in flight or ended. The store forgets the
	// correlations of ended messages (LookupCorrelation no longer finds
	// them), but remembers that they were made.
	Correlated(ctx context.Context, receipts []smsgw.Receipt) ([]bool, error)
}

// CorrelationExpirer is a correlation store that may need help to forget
// old correlations: a server without TTL indexes (FerretDB) reports
// ServerTTL false, and the rematcher then calls ExpireCorrelations hourly.
type CorrelationExpirer interface {
	ServerTTL() bool
	ExpireCorrelations(ctx context.Context, now time.Time) (int64, error)
}

// ExpireInterval is how often Rematch expires correlations on a store
// whose server does not.
const ExpireInterval = time.Hour

// LateAfter is how long a parked receipt waits before the rematcher asks
// whether it came after its message ended: a receipt that no message in
// flight claims, for an upstream ID that was correlated, is a late one (a
// duplicate an SMSC sent again, or a receipt after the message's
// validity), and is dropped. The wait covers a correlation written late
// for an upstream ID the SMSC has reused: its receipt is parked first and
// must not be taken for the old message's.
const LateAfter = 10 * time.Minute

// rematchPageSize is how many parked receipts a pass of the rematcher takes.
const rematchPageSize = 500

// recentReceipts is how many delivered receipts a Matcher remembers to
// recognise an SMSC's duplicates without signalling the workflow again.
const recentReceipts = 4096

// sentMemory is how many correlations a Matcher remembers of those it wrote
// itself, and rememberFor how long: a receipt that comes back to the
// process that sent its message (one bind per connector, or the same bind)
// is matched without a read of the store.
const (
	sentMemory  = 65536
	rememberFor = 10 * time.Minute
)

// Signaler hands a matched receipt to its message's workflow. It answers
// an error wrapping smsgw.ErrMessageEnded when the workflow has ended.
type Signaler interface {
	SignalReceipt(ctx context.Context, messageID string, s workflows.ReceiptSignal) error
}

// Matcher ties receipts to messages. The send side writes the correlation and
// then looks for parked receipts (without holding up the send, Correlate);
// the receipt side looks up the correlation, parks the receipt when there is
// none, and looks again. Every write is acknowledged before the read that
// follows it, so whichever side comes second sees the other and delivers the
// signal; when both do, the workflow ignores the duplicate.
//
// A receipt this process already delivered (same connector, upstream ID and
// state) is recognised as a duplicate and acknowledged without a second
// signal: an SMSC repeats a receipt whenever an answer was lost, and each
// signal costs the workflow history events. A duplicate that reaches
// another replica while its message is in flight is signalled, and the
// workflow ignores it.
//
// The correlations this process wrote in the last rememberFor are also
// kept in memory: a receipt for one of them is signalled without looking
// the store up. Should its message have ended (ErrMessageEnded), the
// receipt takes the store's path, where a reused upstream ID finds its
// newer message.
//
// Once a message has ended the store forgets its correlations, so a receipt
// that comes after (a duplicate, or a receipt later than the message's
// validity) finds none and is parked like an early one; the rematcher
// recognises it, LateAfter after it came, by its upstream ID having been
// correlated (Correlations.Correlated), and drops it, counted as late.
type Matcher struct {
	store   Correlations
	signal  Signaler
	logger  *slog.Logger
	now     func() time.Time
	results *prometheus.CounterVec
	parked  prometheus.Gauge
	// held are the sends held for their receipts (held.go), heldGauge
	// how many.
	held      held
	heldGauge prometheus.Gauge
	recent    recentSet
	sent      boundedMap[sentCorrelation]
	// early counts Correlate's looks for early receipts still running.
	early sync.WaitGroup
	// lateAfter is LateAfter; tests shorten it.
	lateAfter time.Duration
	// rematchPage is how many parked receipts a pass of the rematcher
	// takes (rematchPageSize; tests shorten it), and rematchFrom the key
	// after which the next pass starts ("": from the first). Only
	// RematchOnce, one pass at a time, touches them.
	rematchPage int
	rematchFrom string
}

// NewMatcher returns a Matcher whose metrics are registered on reg.
func NewMatcher(store Correlations, signal Signaler, logger *slog.Logger, reg prometheus.Registerer) *Matcher {
	m := &Matcher{
		store:       store,
		signal:      signal,
		logger:      logger,
		now:         time.Now,
		lateAfter:   LateAfter,
		rematchPage: rematchPageSize,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsgw_receipts_total",
			Help: "Delivery receipts from upstream by connector and result: matched at once, with_send (handed back with its held send), parked (no correlation yet), rematched later, duplicate (already delivered), or late (parked, then dropped: its message had ended).",
		}, []string{"connector", "result"}),
		parked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "smsgw_receipts_unmatched",
			Help: "Receipts parked without a matching message.",
		}),
		heldGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "smsgw_upstream_sends_held",
			Help: "Send activities held open for their part's receipt (a connector's receiptWait).",
		}),
	}
	reg.MustRegister(m.results, m.parked, m.heldGauge)
	return m
}

// Correlate records upstream ID → message after a successful submit_sm_resp.
// It returns once the correlation is durable; the receipts that came before
// it (parked) are looked up after that, off the send's path, so a message
// does not wait for a read that almost always finds nothing. The look is
// tried again while it fails, for up to earlyLookupFor; should it still
// fail, or the process stop before it is made (Settle waits for the looks
// under way), the rematcher delivers such a receipt (RematchOnce).
func (m *Matcher) Correlate(ctx context.Context, c smsgw.Correlation) error {
	if err := m.store.PutCorrelation(ctx, c); err != nil {
		return fmt.Errorf("record correlation %s/%s: %w", c.ConnectorID, c.UpstreamID, err)
	}
	m.sent.put(correlationKey(c.ConnectorID, c.UpstreamID), sentCorrelation{Correlation: c, at: m.now()})
	m.early.Add(1)
	go func() {
		defer m.early.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), earlyLookupFor)
		defer cancel()
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
			err := m.deliverEarly(ctx, c)
			if err == nil {
				return
			}
			select {
			case <-ctx.Done():
				m.logger.Warn("receipts that came before their correlation not looked up; the rematcher will",
					"connector", c.ConnectorID, "upstream_id", c.UpstreamID, "err", err)
				return
			case <-time.After(wait):
			}
		}
	}()
	return nil
}

// earlyLookupFor bounds Correlate's tries of its look for parked receipts.
const earlyLookupFor = 10 * time.Second

// deliverEarly signals the receipts parked under c's upstream ID, which
// came before c was written, to c's message.
func (m *Matcher) deliverEarly(ctx context.Context, c smsgw.Correlation) error {
	early, err := m.store.ParkedReceipts(ctx, c.ConnectorID, c.UpstreamID)
	if err != nil {
		return fmt.Errorf("look for early receipts of %s/%s: %w", c.ConnectorID, c.UpstreamID, err)
	}
	for _, r := range early {
		delivered, err := m.deliver(ctx, c, r)
		if err != nil {
			return err
		}
		if delivered {
			m.results.WithLabelValues(c.ConnectorID, "rematched").Inc()
		}
	}
	return nil
}

// Settle waits until the looks for early receipts that Correlate started
// have ended. Call it once nothing calls Correlate any more (the sends have
// stopped), before the store closes.
func (m *Matcher) Settle() { m.early.Wait() }

// HandleReceipt matches a receipt and signals its message, or parks it. It
// returns nil only once the receipt is durably held (signalled, parked, or
// in the result of its held send, held.go), so the caller may then
// acknowledge it upstream.
func (m *Matcher) HandleReceipt(ctx context.Context, r smsgw.Receipt) error {
	if m.recent.has(receiptKey(r)) {
		m.results.WithLabelValues(r.ConnectorID, "duplicate").Inc()
		m.logger.Debug("duplicate receipt acknowledged", "connector", r.ConnectorID, "upstream_id", r.UpstreamID, "stat", r.Stat)
		return nil
	}
	if m.receiptForHeld(ctx, r) {
		return nil
	}
	if sc, ok := m.sent.get(correlationKey(r.ConnectorID, r.UpstreamID)); ok && m.now().Sub(sc.at) < rememberFor {
		if signalled, err := m.signalMatched(ctx, sc.Correlation, r); signalled || err != nil {
			return err
		}
		// Its message has ended: the store knows whether the ID now names another.
	}
	c, ok, err := m.store.LookupCorrelation(ctx, r.ConnectorID, r.UpstreamID)
	if err != nil {
		return fmt.Errorf("look up receipt %s/%s: %w", r.ConnectorID, r.UpstreamID, err)
	}
	if ok {
		if signalled, err := m.signalMatched(ctx, c, r); signalled || err != nil {
			return err
		}
		// The correlation names a message that has ended, which the store
		// has not yet moved to the archive (it does so within a second, or
		// a crash left it): this is a late receipt of that message, or the
		// first of a newer message the SMSC gave the same upstream ID, whose
		// correlation is not written yet. Parked, it reaches the newer
		// message once that correlation is written, or is dropped as late.
	}
	if err := m.store.ParkReceipt(ctx, r); err != nil {
		return fmt.Errorf("park receipt %s/%s: %w", r.ConnectorID, r.UpstreamID, err)
	}
	c, ok, err = m.store.LookupCorrelation(ctx, r.ConnectorID, r.UpstreamID)
	if err != nil {
		return nil // parked: durable; the rematcher or the send side will deliver it
	}
	if !ok {
		m.results.WithLabelValues(r.ConnectorID, "parked").Inc()
		m.logger.Info("receipt parked until its message is known", "connector", r.ConnectorID, "upstream_id", r.UpstreamID, "stat", r.Stat)
		return nil
	}
	delivered, err := m.deliver(ctx, c, r)
	if err != nil {
		// Not signalled: refuse it upstream so the SMSC offers it again.
		return err
	}
	if delivered {
		m.results.WithLabelValues(r.ConnectorID, "matched").Inc()
	}
	return nil
}

// signalMatched signals a receipt to the message its correlation names.
// signalled is false, with no error, when that message has ended.
func (m *Matcher) signalMatched(ctx context.Context, c smsgw.Correlation, r smsgw.Receipt) (signalled bool, err error) {
	err = m.signal.SignalReceipt(ctx, c.MessageID, workflows.ReceiptSignal{Receipt: r, Segment: c.Segment})
	switch {
	case err == nil:
		m.recent.add(receiptKey(r))
		m.results.WithLabelValues(r.ConnectorID, "matched").Inc()
		return true, nil
	case errors.Is(err, smsgw.ErrMessageEnded):
		return false, nil
	}
	return false, err
}

// deliver signals a parked receipt to its message. Both sides of the race
// (and the rematcher) may get here for the same receipt; only the one that
// takes it out of the parked set signals it, so the workflow gets it once.
// If the signal then fails, or finds the message ended (see HandleReceipt),
// the receipt is parked again for the rematcher. delivered is true when
// this call signalled it.
func (m *Matcher) deliver(ctx context.Context, c smsgw.Correlation, r smsgw.Receipt) (delivered bool, err error) {
	took, err := m.store.TakeParked(ctx, r)
	if err != nil {
		return false, fmt.Errorf("unpark receipt %s/%s: %w", r.ConnectorID, r.UpstreamID, err)
	}
	if !took {
		return false, nil // another caller has it
	}
	if err := m.signal.SignalReceipt(ctx, c.MessageID, workflows.ReceiptSignal{Receipt: r, Segment: c.Segment}); err != nil {
		if perr := m.store.ParkReceipt(context.WithoutCancel(ctx), r); perr != nil {
			m.logger.Error("receipt neither signalled nor parked again", "connector", r.ConnectorID, "upstream_id", r.UpstreamID, "err", perr)
		}
		if errors.Is(err, smsgw.ErrMessageEnded) {
			return false, nil
		}
		return false, err
	}
	m.recent.add(receiptKey(r))
	return true, nil
}

// Rematch tries parked receipts older than minAge again, every interval,
// until ctx is done. It also keeps the unmatched gauge current and, when the
// store's server does not expire correlations itself, expires them every
// ExpireInterval (and on the first pass).
func (m *Matcher) Rematch(ctx context.Context, interval, minAge time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastExpiry time.Time
	for {
		if err := m.RematchOnce(ctx, minAge); err != nil && ctx.Err() == nil {
			m.logger.Warn("rematching parked receipts", "err", err)
		}
		if now := m.now(); lastExpiry.IsZero() || now.Sub(lastExpiry) >= ExpireInterval {
			lastExpiry = now
			if _, err := m.ExpireCorrelations(ctx); err != nil && ctx.Err() == nil {
				m.logger.Warn("expiring correlations", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RematchOnce makes one pass over up to rematchPage parked receipts older
// than minAge, going on from where the last pass stopped (and from the
// first after the last), so that receipts which stay parked (never
// correlated, for an operator to see) cannot keep the others from their
// turn: each one whose message is now known is delivered, and those that
// came more than LateAfter ago for a message that has ended are dropped.
func (m *Matcher) RematchOnce(ctx context.Context, minAge time.Duration) error {
	now := m.now()
	parked, err := m.store.ListParked(ctx, now.Add(-minAge), m.rematchFrom, m.rematchPage)
	if err == nil && len(parked) == 0 && m.rematchFrom != "" {
		m.rematchFrom = ""
		parked, err = m.store.ListParked(ctx, now.Add(-minAge), "", m.rematchPage)
	}
	if err != nil {
		return err
	}
	m.rematchFrom = ""
	if len(parked) == m.rematchPage {
		m.rematchFrom = parked[len(parked)-1].ParkedKey()
	}
	// One message's receipts in the order they came (ENROUTE, then DELIVRD).
	slices.SortStableFunc(parked, func(a, b smsgw.Receipt) int { return a.ReceivedAt.Compare(b.ReceivedAt) })
	var old []smsgw.Receipt
	for _, r := range parked {
		c, ok, err := m.store.LookupCorrelation(ctx, r.ConnectorID, r.UpstreamID)
		if err != nil {
			return err
		}
		if !ok {
			if r.ReceivedAt.Before(now.Add(-m.lateAfter)) {
				old = append(old, r)
			}
			continue
		}
		delivered, err := m.deliver(ctx, c, r)
		if err != nil {
			return err
		}
		if delivered {
			m.results.WithLabelValues(r.ConnectorID, "rematched").Inc()
			continue
		}
		// Its correlation names a message that has ended: late once it
		// has waited LateAfter, like one whose correlation is archived.
		if r.ReceivedAt.Before(now.Add(-m.lateAfter)) {
			old = append(old, r)
		}
	}
	if err := m.dropLate(ctx, old); err != nil {
		return err
	}
	n, err := m.store.CountParked(ctx)
	if err != nil {
		return err
	}
	m.parked.Set(float64(n))
	return nil
}

// dropLate takes out of the parked set the receipts, parked long enough,
// whose upstream ID was correlated to a message that has since ended.
func (m *Matcher) dropLate(ctx context.Context, old []smsgw.Receipt) error {
	if len(old) == 0 {
		return nil
	}
	known, err := m.store.Correlated(ctx, old)
	if err != nil {
		return fmt.Errorf("look for the messages of old parked receipts: %w", err)
	}
	for i, r := range old {
		if !known[i] {
			continue // never correlated: kept for an operator to see
		}
		took, err := m.store.TakeParked(ctx, r)
		if err != nil {
			return fmt.Errorf("drop late receipt %s/%s: %w", r.ConnectorID, r.UpstreamID, err)
		}
		if took {
			m.results.WithLabelValues(r.ConnectorID, "late").Inc()
			m.logger.Info("late receipt dropped: its message had ended", "connector", r.ConnectorID, "upstream_id", r.UpstreamID, "stat", r.Stat, "received_at", r.ReceivedAt)
		}
	}
	return nil
}

// ExpireCorrelations removes correlations past their TTL when the store can
// and its server does not do so itself, and returns how many went. Stores
// with TTL indexes, and stores that are no CorrelationExpirer, are left alone.
func (m *Matcher) ExpireCorrelations(ctx context.Context) (int64, error) {
	e, ok := m.store.(CorrelationExpirer)
	if !ok || e.ServerTTL() {
		return 0, nil
	}
	n, err := e.ExpireCorrelations(ctx, m.now())
	if err != nil {
		return 0, fmt.Errorf("expire correlations: %w", err)
	}
	if n > 0 {
		m.logger.Info("expired correlations removed", "count", n)
	}
	return n, nil
}

func receiptKey(r smsgw.Receipt) string {
	return correlationKey(r.ConnectorID, r.UpstreamID) + "\x00" + r.Stat
}

func correlationKey(connectorID, upstreamID string) string {
	return connectorID + "\x00" + upstreamID
}

// sentCorrelation is a correlation this process wrote, and when.
type sentCorrelation struct {
	smsgw.Correlation
	at time.Time
}

// recentSet remembers the last recentReceipts keys added, oldest forgotten first.
type recentSet struct{ m boundedMap[struct{}] }

func (s *recentSet) has(k string) bool {
	_, ok := s.m.get(k)
	return ok
}

func (s *recentSet) add(k string) { s.m.set(k, struct{}{}, false, recentReceipts) }

func (s *recentSet) len() int {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	return len(s.m.values)
}

// boundedMap keeps the last keys set (as many as the limit given to set),
// oldest forgotten first.
type boundedMap[V any] struct {
	mu     sync.Mutex
	values map[string]V
	order  []string // a ring of the keys; once full, next is the oldest
	next   int
}

func (b *boundedMap[V]) get(k string) (V, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.values[k]
	return v, ok
}

// put sets k to v, of at most sentMemory keys; a key already there keeps its place.
func (b *boundedMap[V]) put(k string, v V) { b.set(k, v, true, sentMemory) }

// set adds k with v, forgetting the oldest key beyond limit; a key already
// there keeps its place, and its value unless replace.
func (b *boundedMap[V]) set(k string, v V, replace bool, limit int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.values == nil {
		b.values = make(map[string]V)
	}
	if _, ok := b.values[k]; ok {
		if replace {
			b.values[k] = v
		}
		return
	}
	if len(b.order) < limit {
		b.order = append(b.order, k)
	} else {
		delete(b.values, b.order[b.next])
		b.order[b.next] = k
		b.next = (b.next + 1) % limit
	}
	b.values[k] = v
}
