package upstream

import (
	"context"
	"sync"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
)

// Sends held for their receipt: a one-part message's send activity, once
// its part is upstream and its correlation durable, may stay open for a
// short while (the connector's receiptWait) instead of completing at once.
// When the part's final receipt comes back to this process meanwhile, the
// send completes with it, and the message's workflow ends on the send's
// result: one workflow task and one signal fewer than a receipt signalled
// after the send (docs/performance.md). Otherwise the send completes
// without it when the wait ends, and the receipt takes the signal's path
// as before.
//
// The send completes asynchronously (the activity returns
// activity.ErrResultPending and the Matcher completes it through Temporal),
// so that the receipt is acknowledged upstream only once Temporal holds it:
// should that completion fail, the receipt is signalled as any other, and
// the send, never completed, is retried by Temporal and finds its part
// upstream already (its intent and correlation). A process that stops
// completes the sends it holds, without receipts (ReleaseHeld); one that
// crashes leaves them to their attempt's timeout and a retry.

// Completer completes an activity that returned activity.ErrResultPending
// (the Temporal client does).
type Completer interface {
	CompleteActivity(ctx context.Context, taskToken []byte, result any, err error) error
}

// heldSend is a send activity waiting for its part's receipt.
type heldSend struct {
	connectorID string
	token       []byte
	result      activities.SendResult
	timer       *time.Timer
}

// held is the Matcher's state of the sends it holds.
type held struct {
	completer Completer
	mu        sync.Mutex
	sends     map[string]*heldSend // by correlationKey
	// finals are the correlation keys of the final receipts this process
	// took lately: a send whose receipt came before it could be held is
	// not held for nothing.
	finals boundedMap[struct{}]
	// stopped is set by ReleaseHeld: no send is held any more.
	stopped bool
}

// completeTimeout bounds a held send's completion through Temporal.
const completeTimeout = 10 * time.Second

// HoldSends lets the Matcher hold sends for their receipts, completing
// them through c. Call it before the first send.
func (m *Matcher) HoldSends(c Completer) {
	m.held.completer = c
}

// holdSend holds the send of token, whose one part went upstream as
// connectorID/upstreamID, for up to wait. It reports false when the send
// is not held and must complete now: no Completer, a process stopping, or
// the part's final receipt already taken.
func (m *Matcher) holdSend(connectorID, upstreamID string, token []byte, result activities.SendResult, wait time.Duration) bool {
	h := &m.held
	if h.completer == nil || wait <= 0 || len(token) == 0 {
		return false
	}
	key := correlationKey(connectorID, upstreamID)
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, seen := h.finals.get(key); seen || h.stopped {
		return false
	}
	if h.sends == nil {
		h.sends = make(map[string]*heldSend)
	}
	s := &heldSend{connectorID: connectorID, token: token, result: result}
	h.sends[key] = s
	s.timer = time.AfterFunc(wait, func() {
		if s := m.takeHeld(key); s != nil {
			m.completeHeld(context.Background(), connectorID, s, nil)
		}
	})
	m.heldGauge.Inc()
	return true
}

// takeHeld removes and returns the send held under key, if any.
func (m *Matcher) takeHeld(key string) *heldSend {
	h := &m.held
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sends[key]
	if s != nil {
		delete(h.sends, key)
		s.timer.Stop()
		m.heldGauge.Dec()
	}
	return s
}

// receiptForHeld completes the send held for r's part with r, when r is
// final and such a send is held. It reports true once Temporal holds the
// send's result with r: r is then delivered. Otherwise (no send held, or
// its completion failed) r goes on to the signal's path.
func (m *Matcher) receiptForHeld(ctx context.Context, r smsgw.Receipt) bool {
	if _, final := r.Status(); !final || m.held.completer == nil {
		return false
	}
	key := correlationKey(r.ConnectorID, r.UpstreamID)
	h := &m.held
	h.mu.Lock()
	h.finals.set(key, struct{}{}, false, sentMemory)
	h.mu.Unlock()
	s := m.takeHeld(key)
	if s == nil {
		return false
	}
	if !m.completeHeld(ctx, r.ConnectorID, s, &r) {
		return false
	}
	m.recent.add(receiptKey(r))
	m.results.WithLabelValues(r.ConnectorID, "with_send").Inc()
	return true
}

// completeHeld completes a held send, with receipt r when r is not nil,
// and reports whether Temporal took it.
func (m *Matcher) completeHeld(ctx context.Context, connectorID string, s *heldSend, r *smsgw.Receipt) bool {
	result := s.result
	result.Receipt = r
	ctx, cancel := context.WithTimeout(ctx, completeTimeout)
	defer cancel()
	if err := m.held.completer.CompleteActivity(ctx, s.token, result, nil); err != nil {
		// Not completed: the attempt times out and is retried, and finds
		// its part upstream already.
		m.logger.Warn("held send not completed; its attempt will be retried", "connector", connectorID,
			"upstream_ids", s.result.UpstreamIDs, "with_receipt", r != nil, "err", err)
		return false
	}
	return true
}

// ReleaseHeld completes every send held, without receipts, and holds none
// from then on. Call it when the connectors stop, before the Temporal
// client closes.
func (m *Matcher) ReleaseHeld() {
	h := &m.held
	h.mu.Lock()
	h.stopped = true
	keys := make([]string, 0, len(h.sends))
	for k := range h.sends {
		keys = append(keys, k)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, k := range keys {
		if s := m.takeHeld(k); s != nil {
			wg.Go(func() { m.completeHeld(context.Background(), s.connectorID, s, nil) })
		}
	}
	wg.Wait()
}
