// Package smppserver is the customers' SMSC: an SMPP 3.4 server that
// third-party ESMEs bind to as transmitter, receiver or transceiver.
//
// A submit_sm or data_sm becomes a smsgw.Message handed to the gateway's one
// Submitter, and is answered only once the Submitter has made it durable, with
// our message ID. Receipts and mobile-originated messages go back as
// deliver_sm through an outbox in the event store: the smpp notification
// channel (Channel) writes an item per deliver_sm, and every replica of the
// server claims the items of the customers bound to it under a lease, so a
// customer bound to several replicas gets each item once, and a customer
// that is not bound gets it when it binds. When the channel runs in a
// process that also serves the customer's receiver bind, it hands the
// deliver_sm to that bind directly (DeliverDirect), and writes to the
// outbox only what the customer did not take at once.
//
// docs/smpp.md describes the behaviour customers see.
package smppserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
)

// Config tunes the server. Zero values take the defaults named.
type Config struct {
	// SystemID is the system_id in bind responses. Default "smsgw".
	SystemID string
	// ReplicaID names this replica as the owner of outbox leases. Default:
	// the host name and a random suffix.
	ReplicaID string
	// Window is the most submissions one session may have outstanding;
	// one more is answered ESME_RMSGQFUL. Default 100.
	Window int
	// DeliverWindow is the most deliver_sm one session has awaiting
	// deliver_sm_resp. Default 10.
	DeliverWindow int
	// SubmitTimeout bounds one submission's wait for the workflow engine;
	// past it the ESME gets ESME_RMSGQFUL and may try again. Default 10s.
	SubmitTimeout time.Duration
	// ResponseTimeout is the wait for deliver_sm_resp, enquire_link_resp
	// and unbind_resp. Default 10s.
	ResponseTimeout time.Duration
	// EnquireLink is how long a session may be silent before the server
	// sends enquire_link. Default 30s.
	EnquireLink time.Duration
	// MissedEnquireLinks is how many enquire_link intervals may pass without
	// a PDU from the ESME before the session is closed. Default 3.
	MissedEnquireLinks int
	// BindTimeout closes a connection that has not bound by then. Default 30s.
	BindTimeout time.Duration
	// FirstPDUTimeout closes a connection that has not sent a whole PDU
	// by then (over TLS, the handshake included). Default 5s.
	FirstPDUTimeout time.Duration
	// MaxUnbound caps the connections that have not bound yet, and
	// MaxUnboundPerSource those of one source (an IPv4 address or an IPv6
	// /64); see admission. Defaults 1024 and 32; negative: no cap.
	MaxUnbound, MaxUnboundPerSource int
	// BindFailures slows down and locks out repeated failed binds.
	BindFailures BindFailures
	// ConcatTimeout is how long the parts of a concatenated submission wait
	// for the rest; then each is answered ESME_RSUBMITFAIL. Default 60s.
	ConcatTimeout time.Duration
	// DrainTimeout bounds the wait for outstanding work when the server
	// stops. Default 10s.
	DrainTimeout time.Duration
	// PollInterval is how often a customer's outbox is looked at when
	// nothing woke it. Default 1s.
	PollInterval time.Duration
	// Lease is how long a claimed outbox item is ours; it must exceed
	// ResponseTimeout. Default 60s.
	Lease time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// def gives *d the default v when it is not set.
func def(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

func (c *Config) setDefaults() {
	if c.SystemID == "" {
		c.SystemID = "smsgw"
	}
	if c.ReplicaID == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		c.ReplicaID = host + "-" + hex.EncodeToString(b[:])
	}
	if c.Window <= 0 {
		c.Window = 100
	}
	if c.DeliverWindow <= 0 {
		c.DeliverWindow = 10
	}
	if c.MissedEnquireLinks <= 0 {
		c.MissedEnquireLinks = 3
	}
	def(&c.SubmitTimeout, 10*time.Second)
	def(&c.ResponseTimeout, 10*time.Second)
	def(&c.EnquireLink, 30*time.Second)
	def(&c.BindTimeout, 30*time.Second)
	def(&c.FirstPDUTimeout, 5*time.Second)
	if c.MaxUnbound == 0 {
		c.MaxUnbound = 1024
	}
	if c.MaxUnboundPerSource == 0 {
		c.MaxUnboundPerSource = 32
	}
	c.BindFailures.setDefaults()
	def(&c.ConcatTimeout, 60*time.Second)
	def(&c.DrainTimeout, 10*time.Second)
	def(&c.PollInterval, time.Second)
	def(&c.Lease, 60*time.Second)
	if c.Lease <= c.ResponseTimeout {
		c.Lease = 2 * c.ResponseTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Outbox is where receipts and MO wait for a customer's receiver binds
// (mongostore.Outbox).
type Outbox interface {
	// Claim leases up to limit of the customer's oldest claimable items to owner.
	Claim(ctx context.Context, customerID, owner string, now time.Time, lease time.Duration, limit int) ([]smsgw.OutboxItem, error)
	Ack(ctx context.Context, id, owner string) (bool, error)
	Release(ctx context.Context, id, owner string, retryAt time.Time) error
	Refuse(ctx context.Context, id, owner, reason string) (bool, error)
	Expire(ctx context.Context, now time.Time, limit int) ([]smsgw.OutboxItem, error)
	Pending(ctx context.Context) (map[string]int64, error)
}

// Deps are what the server works with.
type Deps struct {
	Config    *config.Live
	Submitter smsgw.Submitter
	// Messages answers query_sm, cancel_sm and replace_sm; nil refuses them.
	Messages smsgw.MessageReader
	// Canceller withdraws messages not yet sent (cancel_sm); nil refuses them.
	Canceller smsgw.Canceller
	// Replacer changes messages not yet sent (replace_sm); nil refuses them.
	Replacer smsgw.Replacer
	// Outbox holds what is owed to receivers; nil sends nothing.
	Outbox     Outbox
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Server is the SMPP server. It is safe for concurrent use; one Server may
// serve several listeners (plain TCP and TLS).
type Server struct {
	cfg       Config
	deps      Deps
	log       *slog.Logger
	metrics   *metrics
	concat    *reassembler
	admission *admission // connections waiting to bind
	guard     *bindGuard // failed binds
	// directSent are the outbox item IDs delivered lately without the outbox.
	directSent recentIDs

	mu          sync.Mutex
	sessions    map[*session]struct{}
	bound       map[string]map[*session]struct{} // by customer: every bound session
	dispatchers map[string]*dispatcher           // by customer, while one of its sessions can receive
	limiters    map[string]*rate.Limiter         // by customer
	draining    bool                             // no new connections or binds
	active      sync.WaitGroup                   // sessions
	settling    sync.WaitGroup                   // outbox updates after a deliver_sm's outcome
}

// New returns a server.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg.setDefaults()
	if deps.Config == nil || deps.Submitter == nil {
		return nil, errors.New("smppserver: Config and Submitter are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	adm := newAdmission(cfg.MaxUnbound, cfg.MaxUnboundPerSource)
	m, err := newMetrics(deps.Registerer, adm.count)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, deps: deps, log: deps.Logger.With("component", "smpp-server"), metrics: m,
		admission: adm, guard: newBindGuard(cfg.BindFailures, cfg.Now),
		sessions:    map[*session]struct{}{},
		bound:       map[string]map[*session]struct{}{},
		dispatchers: map[string]*dispatcher{},
		limiters:    map[string]*rate.Limiter{},
	}
	s.concat = newReassembler(s, cfg.ConcatTimeout)
	s.directSent.period = directSentPeriod
	return s, nil
}

// ReplicaID is the name this server's outbox leases carry.
func (s *Server) ReplicaID() string { return s.cfg.ReplicaID }

// Serve accepts connections on ln until ctx ends, then drains: it stops
// accepting binds, lets every session finish its outstanding work, unbinds
// and closes them, and returns once they are gone (or DrainTimeout and
// ResponseTimeout have passed).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() {
		// Sessions refuse new submissions before the listener closes, so a
		// client that sees new connections refused sees its session
		// draining too.
		s.stopTakingWork()
		_ = ln.Close()
	})
	defer stop()
	var tempDelay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				s.drain()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				time.Sleep(tempDelay)
				continue
			}
			return fmt.Errorf("smppserver: accept: %w", err)
		}
		tempDelay = 0
		go s.ServeConn(ctx, conn)
	}
}

// ServeConn runs one connection until the ESME unbinds or leaves, sends
// something that breaks the framing, or ctx ends (then the session drains).
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		_ = conn.Close()
		return
	}
	s.active.Add(1)
	sess := newSession(s, conn)
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	defer s.active.Done()
	if !s.admit(sess) {
		s.forget(sess)
		_ = conn.Close()
		return
	}
	// A connection that sends nothing is closed soon; the deadline is
	// lifted when its first PDU arrives (newSession).
	_ = conn.SetReadDeadline(time.Now().Add(s.cfg.FirstPDUTimeout))
	defer func() {
		if r := recover(); r != nil {
			s.metrics.panics.Inc()
			s.log.Error("session ended by a panic", "remote", sess.remote.String(), "panic", r, "stack", string(debug.Stack()))
			sess.smpp.Close()
		}
		s.forget(sess)
	}()
	sess.run(ctx)
}

// stopTakingWork refuses new connections and makes every session refuse
// new submissions.
func (s *Server) stopTakingWork() {
	s.mu.Lock()
	s.draining = true
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.startDraining()
	}
}

// admit counts a new connection against the caps on unbound connections,
// closing the idle one it replaces, if any. It reports false when the
// connection is refused.
func (s *Server) admit(sess *session) bool {
	outcome, evicted := s.admission.admit(sess)
	if evicted != nil {
		evicted.smpp.Close()
	}
	switch outcome {
	case admitted:
		return true
	case evictedSource:
		s.metrics.shed.WithLabelValues("evicted_per_source").Inc()
		evicted.log().Debug("closed an idle unbound connection to make room for a newer one from the same source")
		return true
	case evictedTotal:
		s.metrics.shed.WithLabelValues("evicted_total").Inc()
		evicted.log().Debug("closed an idle unbound connection to make room for a newer one")
		return true
	case refusedSource:
		s.metrics.shed.WithLabelValues("refused_per_source").Inc()
		sess.log().Debug("refused a connection: its source has as many binds in progress as it may")
	default:
		s.metrics.shed.WithLabelValues("refused_total").Inc()
		sess.log().Debug("refused a connection: as many binds are in progress as the server takes")
	}
	return false
}

// drain stops new connections and waits for every session to finish.
func (s *Server) drain() {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.active.Wait(); s.settling.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.DrainTimeout + 2*s.cfg.ResponseTimeout):
		s.log.Warn("sessions still open after the drain timeout; closing them")
		s.mu.Lock()
		for sess := range s.sessions {
			sess.smpp.Close()
		}
		s.mu.Unlock()
		<-done
	}
}

// Wake tells the dispatcher of a customer that its outbox has new items,
// when it runs in this process. Other replicas find them by polling.
func (s *Server) Wake(customerID string) {
	s.mu.Lock()
	d := s.dispatchers[customerID]
	s.mu.Unlock()
	if d != nil {
		d.kick()
	}
}

// Maintain expires outbox items (the outbox records each as a failed
// notification) and keeps the pending gauge current,
// every interval, until ctx ends.
func (s *Server) Maintain(ctx context.Context, interval time.Duration) {
	if s.deps.Outbox == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.maintainOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) maintainOnce(ctx context.Context) {
	expired, err := s.deps.Outbox.Expire(ctx, s.cfg.Now(), 0)
	for _, it := range expired {
		s.metrics.expired.WithLabelValues(it.CustomerID).Inc()
		s.log.Warn("outbox item expired before a receiver bind took it; recorded as a failed notification",
			"customer", it.CustomerID, "kind", it.Kind, "subject", it.Subject, "attempts", it.Attempts, "created_at", it.CreatedAt, "expired_at", it.ExpiresAt)
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn("outbox expiry failed", "err", err)
	}
	pending, err := s.deps.Outbox.Pending(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("outbox count failed", "err", err)
		}
		return
	}
	s.metrics.pending.Reset()
	for customer, n := range pending {
		s.metrics.pending.WithLabelValues(customer).Set(float64(n))
	}
}

// forget removes a finished session from every registry.
func (s *Server) forget(sess *session) {
	s.admission.leave(sess)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sess)
	customer, kind := sess.binding()
	if kind == unbound {
		return
	}
	if set := s.bound[customer]; set != nil {
		if _, ok := set[sess]; ok {
			delete(set, sess)
			s.metrics.bound.WithLabelValues(customer, kind.String()).Dec()
		}
		if len(set) == 0 {
			delete(s.bound, customer)
		}
	}
	s.stopDispatcherIfIdle(customer)
}

// limiter returns the customer's token bucket, or nil when it has no cap.
// A changed tps takes effect at the customer's next bind.
func (s *Server) limiter(customerID string, tps float64) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.limiters[customerID]
	if tps <= 0 {
		delete(s.limiters, customerID)
		return nil
	}
	burst := max(1, int(tps))
	if l == nil {
		l = rate.NewLimiter(rate.Limit(tps), burst)
		s.limiters[customerID] = l
	} else if l.Limit() != rate.Limit(tps) {
		l.SetLimit(rate.Limit(tps))
		l.SetBurst(burst)
	}
	return l
}
