// Package smpptest is an SMSC simulator: an SMPP 3.4 server that accepts
// binds and submit_sm, answers with message IDs, sends delivery receipts back
// and can inject mobile-originated messages. Tests run it in-process on a
// loopback port, httptest style; `smsgw smsc-sim` runs it for development.
//
// Its sessions run on smppsession and its PDUs are gosmpp's. It answers
// like a real SMSC would, including some of their faults on demand: a
// receipt sent before the submit_sm_resp or on another bind, the same
// receipt delivered twice, message IDs written in hex in one place and
// decimal in another, throttling, slow responses, a connection dropped with
// submit_sm unanswered, receipts delivered again when refused, and the whole
// SMSC going down and coming back (Stop and Start).
package smpptest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppstatus"
)

// Config sets how the simulator behaves. The zero value accepts any
// credentials and delivers every message after 100ms.
type Config struct {
	SystemID string // accepted system_id; "" accepts any
	Password string // accepted password; "" accepts any

	// ReceiptDelay is the wait between submit_sm_resp and the receipt. Default 100ms.
	ReceiptDelay time.Duration
	// Outcome gives the receipt's stat and err for a destination. Default
	// DELIVRD, 000. An empty stat sends no receipt, as an SMSC that loses it.
	Outcome func(destAddr string) (stat string, err string)
	// SubmitStatus gives the command_status to answer a submit_sm with; n counts
	// the submit_sm to this destination so far, this one included (1 for the
	// first). Default 0 (accepted).
	SubmitStatus func(destAddr string, n int) uint32
	// ReceiptBeforeResp sends the receipt before the submit_sm_resp, on the
	// same connection, as some SMSCs do under load.
	ReceiptBeforeResp bool
	// ThrottleEvery answers every ThrottleEvery-th submit_sm the simulator
	// receives with ESME_RTHROTTLED (before SubmitStatus is asked); 0 never.
	ThrottleEvery int
	// RespDelay holds each submit_sm_resp back this long. The simulator keeps
	// reading meanwhile, so a window of submit_sm can await their responses.
	RespDelay time.Duration
	// DropAfter closes the connection that carries the DropAfter-th submit_sm
	// without answering it or any submit_sm on it still awaiting a delayed
	// response, as an SMSC that fails mid-window would. It happens once; 0
	// never. The unanswered submit_sm are in Submits with Answered false and
	// get no receipt.
	DropAfter int
	// ReceiptOtherBind delivers each receipt on another session of the same
	// system_id than the one its submit_sm came on, when one can receive.
	ReceiptOtherBind bool
	// DuplicateReceipts delivers each receipt a second time once the ESME
	// has accepted it, as SMSCs do when an answer is lost.
	DuplicateReceipts bool
	// IDFormat is the notation of message IDs in receipts (receipted_message_id
	// and id: in the text). submit_sm_resp always gives the ID in upper-case
	// hex with leading zeros, "00000A1F":
	//   - "hex": receipts say "a1f" (case and leading zeros differ);
	//   - "decimal": receipts say "2591";
	//   - "": receipts repeat the submit_sm_resp ID exactly.
	IDFormat string

	// ReceiptAttempts is how often a receipt is offered before the simulator
	// gives up: again after a non-zero deliver_sm_resp, no answer, or while no
	// receiver of the system_id is bound. Default 5.
	ReceiptAttempts int
	// ReceiptRetryInterval is the wait between those attempts. Default 1s.
	ReceiptRetryInterval time.Duration
	// ResponseTimeout is the wait for deliver_sm_resp. Default 5s.
	ResponseTimeout time.Duration

	Logger *slog.Logger // nil discards
}

func (c *Config) setDefaults() {
	if c.ReceiptDelay == 0 {
		c.ReceiptDelay = 100 * time.Millisecond
	}
	if c.Outcome == nil {
		c.Outcome = func(string) (string, string) { return "DELIVRD", "000" }
	}
	if c.SubmitStatus == nil {
		c.SubmitStatus = func(string, int) uint32 { return smppstatus.ESME_ROK }
	}
	if c.ReceiptAttempts == 0 {
		c.ReceiptAttempts = 5
	}
	if c.ReceiptRetryInterval == 0 {
		c.ReceiptRetryInterval = time.Second
	}
	if c.ResponseTimeout == 0 {
		c.ResponseTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// SAR is the concatenation a submit_sm carried in sar_* optional parameters.
type SAR struct {
	Ref   uint16
	Total uint8
	Seq   uint8
}

// Submitted is one submit_sm the simulator received.
type Submitted struct {
	SystemID           string
	Bind               int // number of the session it came on, 1 for the first connection
	SourceAddr         string
	SourceTON          byte
	SourceNPI          byte
	DestAddr           string
	DestTON            byte
	DestNPI            byte
	DataCoding         byte
	ESMClass           byte
	RegisteredDelivery byte
	ValidityPeriod     string
	ShortMessage       []byte // short_message as received (User Data Header included), or message_payload
	SAR                *SAR
	Status             uint32 // the command_status it was answered with
	UpstreamID         string // message_id in submit_sm_resp; "" when refused
	ReceiptID          string // the ID its receipt carries (see Config.IDFormat)
	ReceivedAt         time.Time
	// Answered is true once its submit_sm_resp was written: false while the
	// response is delayed, and for good when the connection was dropped first.
	Answered bool
}

// ReceiptAttempt is one offer of a receipt to the ESME.
type ReceiptAttempt struct {
	ReceiptID string // the ID in the receipt
	Attempt   int    // 1 for the first offer
	Bind      int    // number of the session offered to; 0 when none could receive
	Duplicate bool   // a second delivery of a receipt already accepted (Config.DuplicateReceipts)
	Status    uint32 // command_status of the deliver_sm_resp
	Err       error  // no receiver bound, no answer, or connection lost; nil when answered
}

// StatusError is a non-zero command_status in answer to a deliver_sm.
type StatusError struct{ Status uint32 }

func (e *StatusError) Error() string {
	return "smpptest: deliver_sm answered with " + smppstatus.Describe(e.Status)
}

// ErrNoReceiver means no receiver or transceiver is bound to take a deliver_sm.
var ErrNoReceiver = errors.New("smpptest: no receiver or transceiver bound")

// SMSC is the simulator. Create it with New, then Serve or ListenAndServe.
type SMSC struct {
	cfg    Config
	log    *slog.Logger
	nextID atomic.Uint64
	bg     sync.WaitGroup // sessions and receipt deliveries

	mu          sync.Mutex
	serving     bool
	serveCtx    context.Context
	ln          net.Listener  // nil while stopped
	addr        string        // where Start listens again
	started     chan struct{} // closed and replaced by Start
	sessions    map[*session]struct{}
	connections int // sessions ever opened; numbers them
	submits     []Submitted
	perDest     map[string]int
	received    int // submit_sm received, for ThrottleEvery and DropAfter
	dropped     bool
	receipts    []ReceiptAttempt
	binds       int
	unbinds     int
	changed     chan struct{} // closed and replaced whenever the counts above grow
}

// New returns a simulator with cfg's defaults filled in.
func New(cfg Config) *SMSC {
	cfg.setDefaults()
	s := &SMSC{
		cfg:      cfg,
		log:      cfg.Logger,
		sessions: make(map[*session]struct{}),
		perDest:  make(map[string]int),
		changed:  make(chan struct{}),
		started:  make(chan struct{}),
	}
	// IDs grow across restarts of a long-running simulator, so a stale
	// correlation never meets a new message with the same ID.
	s.nextID.Store(uint64(time.Now().Unix()) << 16)
	return s
}

// ListenAndServe listens on addr (host:port) and serves until ctx ends.
func (s *SMSC) ListenAndServe(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("smpptest: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve accepts connections on ln until ctx ends, then closes ln and every
// session and waits for them. It returns nil after ctx ends. While the
// simulator is stopped (Stop) it waits for Start.
func (s *SMSC) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("smpptest: Serve is already running")
	}
	s.serving, s.serveCtx, s.ln, s.addr = true, ctx, ln, ln.Addr().String()
	s.mu.Unlock()
	s.log.Info("SMSC simulator listening", "addr", s.addr)
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.ln != nil {
			_ = s.ln.Close()
		}
	})
	defer stop()

	var err error
	for ctx.Err() == nil {
		s.mu.Lock()
		l, started := s.ln, s.started
		s.mu.Unlock()
		if l == nil { // stopped: wait for Start
			select {
			case <-started:
			case <-ctx.Done():
			}
			continue
		}
		err = s.accept(ctx, l)
		s.mu.Lock()
		replaced := s.ln != l
		s.mu.Unlock()
		if !replaced && ctx.Err() == nil {
			break // the listener failed on its own
		}
	}
	s.mu.Lock()
	if s.ln != nil {
		_ = s.ln.Close()
	}
	s.mu.Unlock()
	if ctx.Err() == nil {
		s.CloseSessions()
		s.bg.Wait()
		return fmt.Errorf("smpptest: accepting: %w", err)
	}
	s.bg.Wait()
	return nil
}

// accept serves connections from ln until it fails or is closed.
func (s *SMSC) accept(ctx context.Context, ln net.Listener) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.serveConn(ctx, conn)
		}()
	}
}

// Stop takes the simulator down as a failing SMSC or network would: the
// listener closes, so new connections are refused, and every session is
// dropped without unbind. Start brings it back on the same address.
func (s *SMSC) Stop() {
	s.mu.Lock()
	ln := s.ln
	s.ln = nil
	for sess := range s.sessions {
		sess.smpp.Close()
	}
	s.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	s.log.Info("SMSC simulator stopped")
}

// Start listens again on the address Serve was given, after Stop. It is
// harmless while the simulator is up.
func (s *SMSC) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.serving:
		return errors.New("smpptest: Start before Serve")
	case s.serveCtx.Err() != nil:
		return fmt.Errorf("smpptest: Start after Serve ended: %w", s.serveCtx.Err())
	case s.ln != nil:
		return nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(s.serveCtx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("smpptest: listening again on %s: %w", s.addr, err)
	}
	s.ln = ln
	close(s.started)
	s.started = make(chan struct{})
	s.log.Info("SMSC simulator started again", "addr", s.addr)
	return nil
}

// Addr returns the address the simulator listens on, once Serve has begun.
func (s *SMSC) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// CloseSessions drops every connection without unbinding, as a failing SMSC
// or network would. The listener keeps accepting.
func (s *SMSC) CloseSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.sessions {
		sess.smpp.Close()
	}
}

// Sessions returns how many connections are open now.
func (s *SMSC) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Unbinds returns how many unbind requests the simulator has received.
func (s *SMSC) Unbinds() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unbinds
}

// WaitUnbinds waits until at least n unbind requests have been received.
func (s *SMSC) WaitUnbinds(ctx context.Context, n int) error {
	return s.waitFor(ctx, func() bool { return s.unbinds >= n }, fmt.Sprintf("%d unbinds", n))
}

// Binds returns how many binds the simulator has accepted.
func (s *SMSC) Binds() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.binds
}

// Submits returns every submit_sm received so far, refused ones included.
func (s *SMSC) Submits() []Submitted {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.submits)
}

// ReceiptAttempts returns every offer of a receipt so far.
func (s *SMSC) ReceiptAttempts() []ReceiptAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.receipts)
}

// WaitSubmits waits until at least n submit_sm have been received.
func (s *SMSC) WaitSubmits(ctx context.Context, n int) error {
	return s.waitFor(ctx, func() bool { return len(s.submits) >= n }, fmt.Sprintf("%d submit_sm", n))
}

// WaitReceiptAttempts waits until at least n receipt offers have been answered or given up.
func (s *SMSC) WaitReceiptAttempts(ctx context.Context, n int) error {
	return s.waitFor(ctx, func() bool { return len(s.receipts) >= n }, fmt.Sprintf("%d receipt attempts", n))
}

// WaitBinds waits until at least n binds have been accepted.
func (s *SMSC) WaitBinds(ctx context.Context, n int) error {
	return s.waitFor(ctx, func() bool { return s.binds >= n }, fmt.Sprintf("%d binds", n))
}

// waitFor waits until cond, called with s.mu held, is true.
func (s *SMSC) waitFor(ctx context.Context, cond func() bool, what string) error {
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("smpptest: waiting for %s: %w", what, ctx.Err())
		}
	}
}

// notify wakes the waiters; s.mu must be held.
func (s *SMSC) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// newIDs returns a message's ID as submit_sm_resp gives it, and as its receipt gives it.
func (s *SMSC) newIDs() (respID, receiptID string) {
	n := s.nextID.Add(1)
	respID = fmt.Sprintf("%016X", n)
	switch s.cfg.IDFormat {
	case smsgw.UpstreamIDHex:
		return respID, fmt.Sprintf("%x", n)
	case smsgw.UpstreamIDDecimal:
		return respID, fmt.Sprintf("%d", n)
	}
	return respID, respID
}

// InjectMO sends a mobile-originated deliver_sm to a bound receiver or
// transceiver and waits for its deliver_sm_resp. It returns ErrNoReceiver
// when none is bound and *StatusError when the ESME refuses the message.
func (s *SMSC) InjectMO(ctx context.Context, from, to string, dataCoding byte, esmClass byte, sm []byte) error {
	sess := s.receiver("", nil, nil)
	if sess == nil {
		return ErrNoReceiver
	}
	raw, err := deliverSM(from, 1, 1, to, 1, 1, esmClass, dataCoding, sm, nil)
	if err != nil {
		return fmt.Errorf("smpptest: building deliver_sm: %w", err)
	}
	status, err := sess.request(ctx, raw)
	if err != nil {
		return fmt.Errorf("smpptest: deliver_sm: %w", err)
	}
	if status != smppstatus.ESME_ROK {
		return &StatusError{Status: status}
	}
	return nil
}

// receiver returns a bound session that can take a deliver_sm for systemID
// ("" for any), preferring prefer while it is still bound, and avoiding
// avoid unless no other session can take it.
func (s *SMSC) receiver(systemID string, prefer, avoid *session) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prefer != nil && prefer != avoid {
		if _, ok := s.sessions[prefer]; ok && prefer.canReceive() {
			return prefer
		}
	}
	var fallback *session
	for sess := range s.sessions {
		if !sess.canReceive() || systemID != "" && sess.systemID() != systemID {
			continue
		}
		if sess != avoid {
			return sess
		}
		fallback = sess
	}
	return fallback
}
