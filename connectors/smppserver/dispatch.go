package smppserver

import (
	"bytes"
	"context"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppstatus"
)

// dispatcher sends one customer's outbox items to its receiver sessions on
// this replica, within each session's deliver window. It runs while the
// customer has a session here that can receive: one claimer that takes, in
// one claim, as many items as the sessions have free deliver slots.
type dispatcher struct {
	srv        *Server
	customerID string
	wake       chan struct{}
	stop       context.CancelFunc
}

// claimMax bounds the items one claim takes.
const claimMax = 50

// startDelivering makes sure a customer's dispatcher runs, and wakes it.
func (s *Server) startDelivering(customerID string) {
	if s.deps.Outbox == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.dispatchers[customerID]; d != nil {
		d.kick()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &dispatcher{srv: s, customerID: customerID, wake: make(chan struct{}, 1), stop: cancel}
	s.dispatchers[customerID] = d
	go d.run(ctx)
}

// stopDispatcherIfIdle stops a customer's dispatcher when none of its
// sessions here can receive any more. s.mu is held.
func (s *Server) stopDispatcherIfIdle(customerID string) {
	d := s.dispatchers[customerID]
	if d == nil {
		return
	}
	for sess := range s.bound[customerID] {
		if _, kind := sess.binding(); kind.canReceive() {
			return
		}
	}
	d.stop()
	delete(s.dispatchers, customerID)
}

// receiverSessions lists the customer's bound sessions, in map order,
// which spreads the load.
func (s *Server) receiverSessions(customerID string) []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*session, 0, len(s.bound[customerID]))
	for sess := range s.bound[customerID] {
		out = append(out, sess)
	}
	return out
}

// receiverWithSlot returns a receiver session of the customer that took a
// deliver slot, or nil when every one is full, draining or gone.
func (s *Server) receiverWithSlot(customerID string) *session {
	for _, sess := range s.receiverSessions(customerID) {
		if sess.takeDeliverSlot() {
			return sess
		}
	}
	return nil
}

// freeDeliverSlots counts the deliver slots free on the customer's
// sessions that can receive, without taking them.
func (s *Server) freeDeliverSlots(customerID string) int {
	n := 0
	for _, sess := range s.receiverSessions(customerID) {
		if sess.canDeliver() {
			n += cap(sess.deliverSlots) - len(sess.deliverSlots)
		}
	}
	return n
}

func (d *dispatcher) kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// sleep waits for a kick, the poll interval or the end; false means the end.
func (d *dispatcher) sleep(ctx context.Context) bool {
	t := time.NewTimer(d.srv.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-d.wake:
	case <-t.C:
	}
	return true
}

// run claims as many items as the customer's receiver sessions have free
// deliver slots and sends them, until ctx ends. It sleeps when no slot is
// free (a delivery's outcome wakes it) and when the outbox has fewer items
// than slots (a new item wakes it, or the poll interval, for items other
// replicas wrote or released). Slots are taken only once the items are
// claimed, so a claim never keeps a direct delivery from a slot.
func (d *dispatcher) run(ctx context.Context) {
	s := d.srv
	for ctx.Err() == nil {
		free := min(s.freeDeliverSlots(d.customerID), claimMax)
		if free == 0 {
			if !d.sleep(ctx) {
				return
			}
			continue
		}
		// Not cancelled with ctx: a claim cut short could leave items
		// leased to us, unsent, for a whole lease.
		claimCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		items, err := s.deps.Outbox.Claim(claimCtx, d.customerID, s.cfg.ReplicaID, s.cfg.Now(), s.cfg.Lease, free)
		cancel()
		if err != nil && ctx.Err() == nil {
			s.log.Warn("outbox claim failed", "customer", d.customerID, "err", err)
		}
		for i, it := range items {
			sess := d.awaitSlot(ctx)
			if sess == nil {
				d.release(items[i:])
				break
			}
			s.settling.Add(1)
			sess.deliver(it, func(status uint32, err error) {
				defer s.settling.Done()
				d.settle(it, status, err)
				d.kick()
			})
		}
		if len(items) < free && !d.sleep(ctx) {
			return
		}
	}
}

// slotPoll is how often a claimed item looks for a deliver slot while
// direct deliveries hold them all.
const slotPoll = 5 * time.Millisecond

// awaitSlot takes a deliver slot of one of the customer's receiver
// sessions, waiting while they are all in use (each is given back within
// ResponseTimeout). nil means no session here can receive any more, or
// ctx has ended.
func (d *dispatcher) awaitSlot(ctx context.Context) *session {
	s := d.srv
	deadline := time.Now().Add(s.cfg.ResponseTimeout + time.Second)
	for {
		if sess := s.receiverWithSlot(d.customerID); sess != nil {
			return sess
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil
		}
		receivers := false
		for _, sess := range s.receiverSessions(d.customerID) {
			receivers = receivers || sess.canDeliver()
		}
		if !receivers {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(slotPoll):
		}
	}
}

// release gives back items claimed but not sent, to be claimed again at
// once, here or by another replica.
func (d *dispatcher) release(items []smsgw.OutboxItem) {
	s := d.srv
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, it := range items {
		if err := s.deps.Outbox.Release(ctx, it.ID, s.cfg.ReplicaID, s.cfg.Now()); err != nil {
			s.log.Warn("outbox release failed; the item is offered again when its lease ends", "customer", it.CustomerID, "err", err)
		}
	}
}

// settle records how a deliver_sm went: delivered items leave the outbox,
// the others are offered again after a backoff. One the receiver refuses
// for good (ESME_RX_P_APPN, ESME_RX_R_APPN) is not offered again: it is
// recorded as a failed notification, to be redelivered on request.
func (d *dispatcher) settle(it smsgw.OutboxItem, status uint32, err error) {
	s := d.srv
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log := s.log.With("customer", it.CustomerID, "kind", it.Kind, "subject", it.Subject, "attempt", it.Attempts)
	refusedForGood := status == smppstatus.ESME_RX_P_APPN || status == smppstatus.ESME_RX_R_APPN
	switch {
	case err == nil && status == smppstatus.ESME_ROK:
		s.metrics.deliveries.WithLabelValues(it.CustomerID, it.Kind, "ok").Inc()
		if _, err := s.deps.Outbox.Ack(ctx, it.ID, s.cfg.ReplicaID); err != nil {
			log.Warn("delivered, but not removed from the outbox: it may be delivered again", "err", err)
		}
		return
	case err == nil && refusedForGood:
		s.metrics.deliveries.WithLabelValues(it.CustomerID, it.Kind, "refused").Inc()
		log.Warn("the customer refused a deliver_sm for good; recorded as a failed notification", "status", smppstatus.Name(status))
		reason := "the customer's bind refused the deliver_sm for good: " + smppstatus.Name(status)
		_, err := s.deps.Outbox.Refuse(ctx, it.ID, s.cfg.ReplicaID, reason)
		if err == nil {
			return
		}
		log.Warn("refused deliver_sm not recorded; offering it again later", "err", err)
	case err != nil:
		s.metrics.deliveries.WithLabelValues(it.CustomerID, it.Kind, "failed").Inc()
	default:
		s.metrics.deliveries.WithLabelValues(it.CustomerID, it.Kind, "refused").Inc()
	}
	retry := min(time.Second<<min(max(it.Attempts-1, 0), 16), 5*time.Minute)
	log.Info("deliver_sm not taken; offering it again later", "status", smppstatus.Name(status), "err", err, "retry_in", retry)
	if err := s.deps.Outbox.Release(ctx, it.ID, s.cfg.ReplicaID, s.cfg.Now().Add(retry)); err != nil {
		log.Warn("outbox release failed; the item is offered again when its lease ends", "err", err)
	}
}

// canDeliver reports whether the session takes deliver_sm: bound to
// receive, and neither ending nor draining.
func (sess *session) canDeliver() bool {
	if sess.ended() || sess.isDraining() {
		return false
	}
	_, kind := sess.binding()
	return kind.canReceive()
}

// takeDeliverSlot reserves room for one deliver_sm on the session.
func (sess *session) takeDeliverSlot() bool {
	if !sess.canDeliver() {
		return false
	}
	select {
	case sess.deliverSlots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (sess *session) returnDeliverSlot() { <-sess.deliverSlots }

// deliver sends an outbox item within a slot taken before; done hears, on
// a goroutine of its own, the deliver_sm_resp status or why there was none.
func (sess *session) deliver(it smsgw.OutboxItem, done func(status uint32, err error)) {
	customerID, _ := sess.binding()
	window := sess.srv.metrics.window.WithLabelValues(customerID, "deliver")
	window.Inc()
	go func() {
		// The engine's response timeout bounds the wait.
		resp, err := sess.smpp.Call(context.Background(), bytes.Clone(it.PDU))
		sess.returnDeliverSlot()
		window.Dec()
		done(resp.Status, err)
	}()
}
