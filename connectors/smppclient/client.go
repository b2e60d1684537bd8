// Package smppclient holds the binds of one connector to an upstream SMSC:
// it keeps one or more sessions bound (transceivers, transmitters, receivers
// or transmitter+receiver pairs, over TCP or TLS), sends submit_sm over the
// bound sessions within each one's window and within the connector's TPS,
// keeps every bind alive with enquire_link, rebinds with backoff, and hands
// delivery receipts and mobile-originated messages to a Handler before
// acknowledging them, whichever session they arrive on.
//
// Each session runs on smppsession: every call takes a context, sequence
// numbers and the send window belong to the session, and each Submit waits
// for its own submit_sm_resp. The bind and the submit_sm are built with
// gosmpp's pdu package, so any SMSC that accepts gosmpp accepts this client.
package smppclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linxGnu/gosmpp/pdu"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// Bind modes.
const (
	Transceiver = "transceiver"
	Transmitter = "transmitter"
	Receiver    = "receiver"
	// TransmitterReceiver holds a transmitter for submit_sm and a receiver
	// for receipts and MO, as a pair, for SMSCs that offer no transceiver.
	TransmitterReceiver = "transmitter+receiver"
)

// MaxBinds is the most sessions one client holds.
const MaxBinds = 64

// Config describes the binds of one connector to an upstream SMSC. Zero
// durations and sizes take the defaults named on each field.
type Config struct {
	ID         string // connector ID, e.g. "sim"; labels metrics and receipts
	Addr       string // host:port
	SystemID   string
	Password   string
	SystemType string
	// BindMode is Transceiver (default), Transmitter, Receiver or TransmitterReceiver.
	BindMode string
	// Binds is the number of sessions held at once (pairs, for
	// TransmitterReceiver), each with its own window; default 1.
	Binds int
	// TLS, when set, wraps every connection in TLS with these settings.
	TLS *tls.Config
	// TPS caps the submit_sm this client sends per second, over all its
	// sessions; 0 sends as fast as the windows allow.
	TPS float64

	WindowSize      int           // submit_sm awaiting their response at once, per session; default 10
	EnquireLink     time.Duration // silence from the SMSC before an enquire_link; default 30s
	ResponseTimeout time.Duration // wait for any response, and for the bind itself; default 10s
	RebindMin       time.Duration // first wait before binding again; default 1s
	RebindMax       time.Duration // the wait doubles up to this; default 30s
	HandlerTimeout  time.Duration // time a Handler gets per receipt or MO; default 30s

	// ReceiptIDFormat is the notation of message IDs in this SMSC's receipts
	// (receipted_message_id, or id: in the text): smsgw.UpstreamIDHex,
	// smsgw.UpstreamIDDecimal, or "" to compare IDs as written.
	ReceiptIDFormat string
	// SubmitIDFormat is the notation of message_id in submit_sm_resp. When
	// empty it is "hex" if ReceiptIDFormat is set (the common case of an SMSC
	// that answers in hex and writes receipts in decimal), and "" otherwise.
	SubmitIDFormat string
}

func (c *Config) setDefaults() {
	if c.BindMode == "" {
		c.BindMode = Transceiver
	}
	if c.Binds == 0 {
		c.Binds = 1
	}
	if c.WindowSize == 0 {
		c.WindowSize = 10
	}
	if c.EnquireLink == 0 {
		c.EnquireLink = 30 * time.Second
	}
	if c.ResponseTimeout == 0 {
		c.ResponseTimeout = 10 * time.Second
	}
	if c.RebindMin == 0 {
		c.RebindMin = time.Second
	}
	if c.RebindMax == 0 {
		c.RebindMax = 30 * time.Second
	}
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = 30 * time.Second
	}
	if c.SubmitIDFormat == "" && c.ReceiptIDFormat != "" {
		c.SubmitIDFormat = smsgw.UpstreamIDHex
	}
}

// Validate reports every problem with the configuration, after defaults.
func (c Config) Validate() error {
	c.setDefaults()
	var problems []error
	if c.ID == "" {
		problems = append(problems, errors.New("connector ID is required"))
	}
	if c.Addr == "" {
		problems = append(problems, errors.New("address is required"))
	}
	if c.SystemID == "" {
		problems = append(problems, errors.New("system_id is required"))
	}
	if len(c.SystemID) > 15 || len(c.Password) > 8 || len(c.SystemType) > 12 {
		problems = append(problems, errors.New("system_id, password and system_type may have at most 15, 8 and 12 characters"))
	}
	switch c.BindMode {
	case Transceiver, Transmitter, Receiver, TransmitterReceiver:
	default:
		problems = append(problems, fmt.Errorf("bind mode %q must be %s, %s, %s or %s", c.BindMode, Transceiver, Transmitter, Receiver, TransmitterReceiver))
	}
	if c.Binds < 0 || c.Binds > MaxBinds {
		problems = append(problems, fmt.Errorf("binds %d must be between 1 and %d", c.Binds, MaxBinds))
	}
	if c.WindowSize < 0 || c.TPS < 0 || c.EnquireLink < 0 || c.ResponseTimeout < 0 || c.RebindMin < 0 || c.HandlerTimeout < 0 {
		problems = append(problems, errors.New("window size, TPS and durations must not be negative"))
	}
	if c.RebindMax < c.RebindMin {
		problems = append(problems, fmt.Errorf("rebind maximum %s is below the minimum %s", c.RebindMax, c.RebindMin))
	}
	for _, f := range []string{c.ReceiptIDFormat, c.SubmitIDFormat} {
		if err := smsgw.CheckUpstreamIDFormat(f); err != nil {
			problems = append(problems, err)
		}
	}
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("smppclient %q: %w", c.ID, err)
	}
	return nil
}

// Part is one submit_sm.
type Part struct {
	SourceAddr string
	SourceTON  byte
	SourceNPI  byte
	DestAddr   string
	DestTON    byte
	DestNPI    byte
	DataCoding byte
	ESMClass   byte
	// ShortMessage is already encoded, with its User Data Header when
	// ESMClass&0x40. Up to 254 octets go in short_message, longer ones in
	// the message_payload optional parameter.
	ShortMessage       []byte
	RegisteredDelivery byte          // 1 = final receipt requested
	Validity           time.Duration // 0 = the SMSC's default; sent in relative format
	SAR                *smsgw.SAR    // optional, sent as sar_* optional parameters
}

// Handler takes what the SMSC delivers. The client calls it from several
// goroutines at once, with a context that ends after Config.HandlerTimeout.
// An SMSC may deliver the same receipt or MO again (an answer can be lost
// with the connection), so handling must be idempotent.
type Handler interface {
	// HandleReceipt is called for each delivery receipt (deliver_sm or data_sm
	// whose esm_class says receipt). Return nil only once the receipt is durably
	// held: the client then answers ESME_ROK; on error it answers
	// ESME_RX_T_APPN so the SMSC delivers the receipt again later.
	HandleReceipt(ctx context.Context, r smsgw.Receipt) error
	// HandleMO is called for each mobile-originated deliver_sm or data_sm
	// (anything that is not a receipt). Same durability contract.
	HandleMO(ctx context.Context, mo smsgw.MO) error
}

// MOAnswerWatcher is a Handler that hears when an MO it took has been
// answered ESME_ROK: its deliver_sm_resp is on its way to the SMSC, which
// will not offer that deliver_sm again.
type MOAnswerWatcher interface {
	MOAnswered(ctx context.Context, mo smsgw.MO)
}

// Errors from Submit. Besides these, Submit returns *SubmitError for a
// refusal, an *smsgw.Error with code EINVALID for a part that cannot be
// encoded, and the context's error when ctx ends before the PDU was sent.
var (
	// ErrNotBound means no bind could take the submit_sm: nothing was sent.
	ErrNotBound = errors.New("smppclient: not bound")
	// ErrInDoubt is wrapped by every error after which the SMSC may or may not
	// have accepted the submit_sm. The caller decides whether to send again.
	ErrInDoubt = errors.New("the SMSC may have accepted the submit_sm")
	// ErrResponseTimeout means no submit_sm_resp came within ResponseTimeout. It wraps ErrInDoubt.
	ErrResponseTimeout = fmt.Errorf("smppclient: no submit_sm_resp within the response timeout: %w", ErrInDoubt)
	// ErrConnectionLost means the connection closed after the submit_sm was
	// written and before its response. It wraps ErrInDoubt.
	ErrConnectionLost = fmt.Errorf("smppclient: connection lost while waiting for submit_sm_resp: %w", ErrInDoubt)
)

// SubmitError is an SMSC's refusal of a submit_sm: a non-zero command_status
// in submit_sm_resp, or a generic_nack.
type SubmitError struct {
	Status    uint32
	Retryable bool // from smppstatus: the same part may succeed later
}

func (e *SubmitError) Error() string {
	kind := "permanent"
	if e.Retryable {
		kind = "retryable"
	}
	return fmt.Sprintf("smppclient: submit_sm refused with %s, %s", smppstatus.Describe(e.Status), kind)
}

// BindError is an SMSC's refusal of the bind itself.
type BindError struct{ Status uint32 }

func (e *BindError) Error() string {
	return "smppclient: bind refused with " + smppstatus.Describe(e.Status)
}

// Client holds the binds of one connector to one SMSC. Create it with New and
// keep Run going; Submit may be called from any goroutine.
type Client struct {
	cfg     Config
	handler Handler
	log     *slog.Logger
	metrics *metrics
	limiter *rate.Limiter // nil without a TPS limit
	running atomic.Bool

	mu       sync.Mutex
	sessions []*session    // bound sessions, in the order they bound
	up       bool          // a session that can submit is bound (any session, for a receiver-only client)
	boundCh  chan struct{} // closed while up
	lostCh   chan struct{} // closed while not up
	next     int           // where the next pick starts, so equal sessions take turns
}

// New checks cfg and returns a client that is not yet bound. A nil logger
// discards logs; a nil registerer leaves the metrics unregistered.
func New(cfg Config, h Handler, logger *slog.Logger, reg prometheus.Registerer) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if h == nil && cfg.BindMode != Transmitter {
		return nil, fmt.Errorf("smppclient %q: a %s bind needs a Handler for receipts and MO", cfg.ID, cfg.BindMode)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg, cfg.ID)
	if err != nil {
		return nil, fmt.Errorf("smppclient %q: %w", cfg.ID, err)
	}
	m.tpsLimit.Set(cfg.TPS)
	c := &Client{
		cfg:     cfg,
		handler: h,
		log:     logger.With("connector", cfg.ID, "smsc", cfg.Addr),
		metrics: m,
		boundCh: make(chan struct{}),
		lostCh:  make(chan struct{}),
	}
	close(c.lostCh)
	if cfg.TPS > 0 {
		// A tenth of a second's worth at once: smooth enough for an SMSC that
		// counts per second, without serialising a fast connector.
		c.limiter = rate.NewLimiter(rate.Limit(cfg.TPS), max(1, int(math.Ceil(cfg.TPS/10))))
	}
	return c, nil
}

// slots returns the bind mode of each session the client keeps bound.
func (c *Client) slots() []string {
	var modes []string
	for range c.cfg.Binds {
		if c.cfg.BindMode == TransmitterReceiver {
			modes = append(modes, Transmitter, Receiver)
			continue
		}
		modes = append(modes, c.cfg.BindMode)
	}
	return modes
}

// Run keeps every session bound, binding again with backoff whenever one is
// lost, until ctx ends. Then each session stops taking submits, waits for its
// window to empty and for receipts being handled, and unbinds; Run returns
// nil once all have. A refused bind (wrong password, say) is logged and
// retried like any other failure.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return fmt.Errorf("smppclient %q: Run is already running", c.cfg.ID)
	}
	defer c.running.Store(false)

	var wg sync.WaitGroup
	for i, mode := range c.slots() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.keepBound(ctx, i+1, mode)
		}()
	}
	wg.Wait()
	return nil
}

// keepBound holds one session of the given mode until ctx ends.
func (c *Client) keepBound(ctx context.Context, slot int, mode string) {
	log := c.log.With("bind", slot, "mode", mode)
	wait := c.cfg.RebindMin
	for ctx.Err() == nil {
		s, err := c.bind(ctx, mode, log)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.metrics.binds.WithLabelValues(bindResult(err)).Inc()
			log.Warn("bind failed", "err", err, "retry_in", wait)
		} else {
			c.metrics.binds.WithLabelValues("ok").Inc()
			log.Info("bound", "system_id", c.cfg.SystemID, "tls", c.cfg.TLS != nil)
			wait = c.cfg.RebindMin
			c.addSession(s)
			err = s.serve(ctx)
			c.removeSession(s)
			if ctx.Err() != nil {
				return
			}
			log.Warn("bind lost", "err", err, "rebind_in", wait)
		}
		if !sleep(ctx, jitter(wait)) {
			return
		}
		wait = min(2*wait, c.cfg.RebindMax)
	}
}

func bindResult(err error) string {
	var be *BindError
	if errors.As(err, &be) {
		return "refused"
	}
	return "error"
}

// Bound reports whether a session that can submit is bound now and not
// unbinding (for a receiver-only client: any such session).
func (c *Client) Bound() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up
}

// BoundSessions returns how many sessions are bound now, of every mode.
func (c *Client) BoundSessions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sessions)
}

// WaitBound waits until Bound is true, or ctx ends.
func (c *Client) WaitBound(ctx context.Context) error {
	c.mu.Lock()
	ch := c.boundCh
	c.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("smppclient %q: waiting for the bind: %w", c.cfg.ID, ctx.Err())
	}
}

// Lost returns a channel that is closed once Bound is false: at once when
// it is false now, else when the last session that can submit is lost or
// begins to unbind. Call it again after the client is bound again.
func (c *Client) Lost() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lostCh
}

// primary reports whether s counts for Bound.
func (c *Client) primary(s *session) bool {
	return (s.mode != Receiver || c.cfg.BindMode == Receiver) && !s.draining.Load()
}

func (c *Client) addSession(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions = append(c.sessions, s)
	c.metrics.bound.Inc()
	c.updateBoundLocked()
}

func (c *Client) removeSession(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.Index(c.sessions, s); i >= 0 {
		c.sessions = slices.Delete(c.sessions, i, i+1)
		c.metrics.bound.Dec()
	}
	c.updateBoundLocked()
}

// refreshBound recomputes Bound, after a session began to drain.
func (c *Client) refreshBound() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.updateBoundLocked()
}

// updateBoundLocked opens or closes boundCh as the sessions change; c.mu is held.
func (c *Client) updateBoundLocked() {
	up := slices.ContainsFunc(c.sessions, c.primary)
	switch {
	case up && !c.up:
		close(c.boundCh)
		c.lostCh = make(chan struct{})
	case !up && c.up:
		c.boundCh = make(chan struct{})
		close(c.lostCh)
	}
	c.up = up
}

// pick returns the bound session that can submit with the most room in its
// window, skipping those in tried; nil when there is none.
func (c *Client) pick(tried map[*session]bool) *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best *session
	n := len(c.sessions)
	for k := range n {
		s := c.sessions[(c.next+k)%n]
		if s.mode == Receiver || tried[s] || s.draining.Load() || s.ended() {
			continue
		}
		if best == nil || s.smpp.Outstanding() < best.smpp.Outstanding() {
			best = s
		}
	}
	c.next++
	return best
}

// Submit sends one submit_sm over a bound session and waits for its
// response. It returns the SMSC's message ID, normalised (see
// Config.SubmitIDFormat) so that it equals the UpstreamID of the receipts for
// it. An SMSC that accepts a part without giving an ID yields "" and no
// error: the part was accepted, but no receipt can be matched to it.
//
// The session with the most room in its window takes the part; when it is
// found unbinding before anything was written, the next one does.
func (c *Client) Submit(ctx context.Context, p Part) (upstreamID string, err error) {
	req, err := buildSubmit(p)
	if err != nil {
		return "", err
	}
	if c.cfg.BindMode == Receiver {
		return "", fmt.Errorf("%w: connector %q binds as receiver only", ErrNotBound, c.cfg.ID)
	}
	if !c.Bound() {
		return "", fmt.Errorf("%w: connector %q", ErrNotBound, c.cfg.ID)
	}
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			return "", fmt.Errorf("smppclient %q: waiting for the TPS limit: %w", c.cfg.ID, err)
		}
	}
	tried := map[*session]bool{}
	for {
		s := c.pick(tried)
		if s == nil {
			return "", fmt.Errorf("%w: connector %q", ErrNotBound, c.cfg.ID)
		}
		id, err := s.submit(ctx, req)
		if errors.Is(err, errSessionEnding) {
			tried[s] = true
			continue
		}
		if err != nil {
			return "", err
		}
		return smsgw.NormalizeUpstreamID(id, c.cfg.SubmitIDFormat), nil
	}
}

// buildSubmit turns a Part into a submit_sm, or explains why it cannot.
func buildSubmit(p Part) (*pdu.SubmitSM, error) {
	var problems []string
	if p.DestAddr == "" {
		problems = append(problems, "destination address is required")
	}
	if len(p.SourceAddr) > smsgw.MaxAddressLength || len(p.DestAddr) > smsgw.MaxAddressLength {
		problems = append(problems, fmt.Sprintf("addresses may have at most %d characters", smsgw.MaxAddressLength))
	}
	if len(p.ShortMessage) > 0xFFFF {
		problems = append(problems, fmt.Sprintf("message of %d octets is too long", len(p.ShortMessage)))
	}
	if p.Validity < 0 || p.Validity >= 100*24*time.Hour {
		problems = append(problems, fmt.Sprintf("validity %s must be between 0 and 99 days", p.Validity))
	}
	if p.SAR != nil && (p.SAR.Total == 0 || p.SAR.Seq == 0 || p.SAR.Seq > p.SAR.Total) {
		problems = append(problems, fmt.Sprintf("SAR part %d of %d is not a valid segment", p.SAR.Seq, p.SAR.Total))
	}
	if len(problems) > 0 {
		return nil, smsgw.Errorf(smsgw.EINVALID, "cannot submit: %s", joinProblems(problems))
	}

	req := pdu.NewSubmitSM().(*pdu.SubmitSM)
	req.SourceAddr = pdu.NewAddressWithTonNpi(p.SourceTON, p.SourceNPI)
	req.DestAddr = pdu.NewAddressWithTonNpi(p.DestTON, p.DestNPI)
	// Lengths were checked above, so SetAddress cannot fail.
	_ = req.SourceAddr.SetAddress(p.SourceAddr)
	_ = req.DestAddr.SetAddress(p.DestAddr)
	req.EsmClass = p.ESMClass
	req.RegisteredDelivery = p.RegisteredDelivery
	if p.Validity > 0 {
		req.ValidityPeriod = relativeValidity(p.Validity)
	}
	sm := p.ShortMessage
	if len(sm) > smppwire.MaxShortMessage {
		req.RegisterOptionalParam(pdu.Field{Tag: pdu.Tag(smppwire.TagMessagePayload), Data: sm})
		sm = nil
	}
	msg, err := smppwire.ShortMessage(sm, p.DataCoding)
	if err != nil {
		return nil, smsgw.Errorf(smsgw.EINVALID, "cannot submit: %v", err)
	}
	req.Message = msg
	if p.SAR != nil {
		req.RegisterOptionalParam(pdu.Field{Tag: pdu.Tag(smppwire.TagSarMsgRefNum), Data: []byte{byte(p.SAR.Ref >> 8), byte(p.SAR.Ref)}})
		req.RegisterOptionalParam(pdu.Field{Tag: pdu.Tag(smppwire.TagSarTotalSegments), Data: []byte{p.SAR.Total}})
		req.RegisterOptionalParam(pdu.Field{Tag: pdu.Tag(smppwire.TagSarSegmentSeqnum), Data: []byte{p.SAR.Seq}})
	}
	return req, nil
}

func joinProblems(p []string) string {
	s := p[0]
	for _, x := range p[1:] {
		s += "; " + x
	}
	return s
}

// relativeValidity writes d in the relative time format of SMPP 3.4 §7.1.1:
// YYMMDDhhmmss, tenths, "00", "R". d is rounded up to whole seconds.
func relativeValidity(d time.Duration) string {
	secs := int64((d + time.Second - 1) / time.Second)
	days := secs / 86400
	secs %= 86400
	return fmt.Sprintf("0000%02d%02d%02d%02d000R", days, secs/3600, secs%3600/60, secs%60)
}

// jitter returns d less up to a fifth, so replicas that lost their binds
// together do not all come back in the same instant.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// sleep waits for d, and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
