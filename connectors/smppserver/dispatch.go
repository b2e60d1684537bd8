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
// customer has a session here that can receive.
type dispatcher struct {
	srv        *Server
	customerID string
	wake       chan struct{}
	stop       context.CancelFunc
}

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
	d := &dispatcher{srv: s, customerID: customerID, wake: make(chan struct{}, claimers), stop: cancel}
	s.dispatchers[customerID] = d
	// Several claimers hide the store's round trips; the outbox's leases
	// keep each item to one of them.
	for range claimers {
		go d.run(ctx)
	}
}

// claimers is how many outbox claims a customer's dispatcher has under way at once.
const claimers = 4

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

// receiverWithSlot returns a receiver session of the customer that took a
// deliver slot, or nil when every one is full, draining or gone.
func (s *Server) receiverWithSlot(customerID string) *session {
	s.mu.Lock()
	candidates := make([]*session, 0, len(s.bound[customerID]))
	for sess := range s.bound[customerID] { // map order spreads the load
		candidates = append(candidates, sess)
	}
	s.mu.Unlock()
	for _, sess := range candidates {
		if sess.takeDeliverSlot() {
			return sess
		}
	}
	return nil
}

func (d *dispatcher) kick() {
	for range claimers {
		select {
		case d.wake <- struct{}{}:
		default:
			return
		}
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

func (d *dispatcher) run(ctx context.Context) {
	s := d.srv
	for ctx.Err() == nil {
		sess := s.receiverWithSlot(d.customerID)
		if sess == nil {
			if !d.sleep(ctx) {
				return
			}
			continue
		}
		// Not cancelled with ctx: a claim cut short could leave the item
		// leased to us, unsent, for a whole lease. A claimed item whose
		// session has gone is released by deliver's callback.
		claimCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		it, ok, err := s.deps.Outbox.Claim(claimCtx, d.customerID, s.cfg.ReplicaID, s.cfg.Now(), s.cfg.Lease)
		cancel()
		if err != nil || !ok {
			sess.returnDeliverSlot()
			if err != nil && ctx.Err() == nil {
				s.log.Warn("outbox claim failed", "customer", d.customerID, "err", err)
			}
			if !d.sleep(ctx) {
				return
			}
			continue
		}
		s.settling.Add(1)
		sess.deliver(it, func(status uint32, err error) {
			defer s.settling.Done()
			d.settle(it, status, err)
			d.kick()
		})
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

// takeDeliverSlot reserves room for one deliver_sm on the session.
func (sess *session) takeDeliverSlot() bool {
	if sess.ended() || sess.isDraining() {
		return false
	}
	if _, kind := sess.binding(); !kind.canReceive() {
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
