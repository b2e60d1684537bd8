package smppserver

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppstatus"
)

// DirectDeliverer sends deliver_sm on a customer's receiver binds held by
// this process, without the outbox (Server.DeliverDirect).
type DirectDeliverer interface {
	DeliverDirect(ctx context.Context, customerID string, items []smsgw.OutboxItem) int
}

// Results of a direct delivery (smsgw_smpp_direct_deliveries_total).
const (
	directOK         = "ok"          // every deliver_sm answered ESME_ROK
	directNoReceiver = "no_receiver" // no receiver bind here, or none with a free slot
	directRefused    = "refused"     // a non-zero deliver_sm_resp
	directFailed     = "failed"      // no answer in time, or the session went
)

// DeliverDirect sends the deliver_sm of one delivery (a receipt, or the
// parts of an MO, as the outbox items they would be) to the customer's
// receiver sessions bound to this process, in order, each within a
// session's deliver window and awaited before the next: all of them within
// ResponseTimeout, and ctx. It returns how many, from the first, the
// customer answered ESME_ROK; the caller puts the rest in the outbox.
// Nothing is retried here: a part that is not taken at once goes the
// outbox's way, with its backoff and its refusals for good.
//
// An item this server delivered directly in the last minutes is not sent
// again: a notification whose local activity runs again (its workflow task
// was lost) is then delivered once, as the outbox would have it.
func (s *Server) DeliverDirect(ctx context.Context, customerID string, items []smsgw.OutboxItem) int {
	if len(items) == 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ResponseTimeout)
	defer cancel()
	kind := items[0].Kind
	result := directOK
	n := 0
	for _, it := range items {
		if !s.directSent.has(it.ID) {
			if result = s.deliverOneDirect(ctx, customerID, kind, it.PDU); result != directOK {
				break
			}
			s.directSent.add(it.ID)
		}
		n++
	}
	s.metrics.direct.WithLabelValues(customerID, kind, result).Inc()
	return n
}

// recentIDs remembers IDs for between one and two periods.
type recentIDs struct {
	period time.Duration

	mu        sync.Mutex
	cur, prev map[string]struct{}
	rotated   time.Time
}

// directSentPeriod is how long a direct delivery is remembered, at least.
const directSentPeriod = 10 * time.Minute

func (r *recentIDs) rotate() {
	if now := time.Now(); now.Sub(r.rotated) >= r.period || r.cur == nil {
		r.prev, r.cur, r.rotated = r.cur, map[string]struct{}{}, now
	}
}

func (r *recentIDs) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rotate()
	_, inCur := r.cur[id]
	_, inPrev := r.prev[id]
	return inCur || inPrev
}

func (r *recentIDs) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rotate()
	r.cur[id] = struct{}{}
}

func (s *Server) deliverOneDirect(ctx context.Context, customerID, kind string, pdu []byte) string {
	if ctx.Err() != nil {
		return directFailed
	}
	sess := s.receiverWithSlot(customerID)
	if sess == nil {
		return directNoReceiver
	}
	window := s.metrics.window.WithLabelValues(customerID, "deliver")
	window.Inc()
	resp, err := sess.smpp.Call(ctx, bytes.Clone(pdu))
	sess.returnDeliverSlot()
	window.Dec()
	switch {
	case err != nil:
		s.metrics.deliveries.WithLabelValues(customerID, kind, "failed").Inc()
		sess.log().Info("direct deliver_sm not answered; it goes to the outbox", "kind", kind, "err", err)
		return directFailed
	case resp.Status != smppstatus.ESME_ROK:
		s.metrics.deliveries.WithLabelValues(customerID, kind, "refused").Inc()
		sess.log().Info("direct deliver_sm refused; it goes to the outbox", "kind", kind, "status", smppstatus.Name(resp.Status))
		return directRefused
	}
	s.metrics.deliveries.WithLabelValues(customerID, kind, "ok").Inc()
	return directOK
}
