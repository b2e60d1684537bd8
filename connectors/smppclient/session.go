package smppclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linxGnu/gosmpp/pdu"

	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// maxConcurrentDeliveries bounds the receipts and MO handled at once on one
// bind. When all are busy the reader stops reading, and TCP slows the SMSC down.
const maxConcurrentDeliveries = 32

// errPeerUnbound ends a session the SMSC unbound.
var errPeerUnbound = errors.New("the SMSC sent unbind")

// errSessionEnding means a session was unbinding or lost before a submit_sm
// was written to it: nothing was sent, so another session may take the part.
var errSessionEnding = fmt.Errorf("%w: the session is ending", ErrNotBound)

// session is one bound connection. Its sequence numbers and window are its
// own; it ends when the connection does, and Run makes a new one.
type session struct {
	c    *Client
	mode string // Transceiver, Transmitter or Receiver
	log  *slog.Logger
	conn net.Conn
	r    *bufio.Reader
	seq  atomic.Uint32 // last sequence number used

	writeMu sync.Mutex

	mu       sync.Mutex
	pending  map[uint32]chan smppwire.Frame // requests awaiting their response, by sequence number
	closed   bool
	closeErr error
	done     chan struct{} // closed with the connection

	draining   atomic.Bool
	window     chan struct{} // one token per submit_sm awaiting its response
	submits    tracker       // Submit calls inside the session
	deliveries tracker       // receipts and MO being handled
	deliverSem chan struct{}
	handlerCtx context.Context // outlives Run's context so a drain can finish handling
}

// dial connects to the SMSC, over TLS when the client is configured for it.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{Timeout: c.cfg.ResponseTimeout}
	if c.cfg.TLS != nil {
		conn, err := (&tls.Dialer{NetDialer: d, Config: c.cfg.TLS}).DialContext(ctx, "tcp", c.cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("dialing %s with TLS: %w", c.cfg.Addr, err)
		}
		return conn, nil
	}
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", c.cfg.Addr, err)
	}
	return conn, nil
}

// bind dials the SMSC and binds in the given mode. The bind is gosmpp's
// BindRequest with sequence number 1; the session continues from 2.
func (c *Client) bind(ctx context.Context, mode string, log *slog.Logger) (*session, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	// Until the bind is answered, ctx or the response timeout ends the wait.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	_ = conn.SetDeadline(time.Now().Add(c.cfg.ResponseTimeout))
	fail := func(err error) (*session, error) {
		stop()
		_ = conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}

	var req *pdu.BindRequest
	switch mode {
	case Transmitter:
		req = pdu.NewBindRequest(pdu.Transmitter)
	case Receiver:
		req = pdu.NewBindRequest(pdu.Receiver)
	default:
		req = pdu.NewBindRequest(pdu.Transceiver)
	}
	req.SystemID, req.Password, req.SystemType = c.cfg.SystemID, c.cfg.Password, c.cfg.SystemType
	if _, err := conn.Write(smppwire.Encode(req, 1)); err != nil {
		return fail(fmt.Errorf("sending %s bind: %w", mode, err))
	}
	r := bufio.NewReader(conn)
	for {
		f, err := smppwire.ReadFrame(r)
		if err != nil {
			return fail(fmt.Errorf("waiting for the bind response: %w", err))
		}
		if !f.IsResponse() || f.Seq != 1 {
			continue // an SMSC may send enquire_link before answering; the bind comes first
		}
		if f.Status != 0 {
			return fail(&BindError{Status: f.Status})
		}
		if f.CommandID == smppwire.GenericNack {
			return fail(&BindError{Status: smppstatus.ESME_RSYSERR})
		}
		break
	}
	if !stop() {
		_ = conn.Close()
		return nil, ctx.Err()
	}
	_ = conn.SetDeadline(time.Time{})

	s := &session{
		c:          c,
		mode:       mode,
		log:        log,
		conn:       conn,
		r:          r,
		pending:    make(map[uint32]chan smppwire.Frame),
		done:       make(chan struct{}),
		window:     make(chan struct{}, c.cfg.WindowSize),
		deliverSem: make(chan struct{}, maxConcurrentDeliveries),
		handlerCtx: context.WithoutCancel(ctx),
	}
	s.seq.Store(1)
	return s, nil
}

// serve runs the session until the connection fails or ctx ends; in the
// latter case it drains and unbinds.
func (s *session) serve(ctx context.Context) error {
	go s.readLoop()
	tick := time.NewTicker(s.c.cfg.EnquireLink)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return s.err()
		case <-ctx.Done():
			s.shutdown()
			return nil
		case <-tick.C:
			f, err := s.request(ctx, smppwire.HeaderOnly(smppwire.EnquireLink, 0, 0))
			switch {
			case ctx.Err() != nil:
				// shutting down: the next loop drains
			case err != nil:
				s.close(fmt.Errorf("enquire_link: %w", err))
			case f.CommandID == smppwire.GenericNack:
				s.log.Warn("the SMSC answered enquire_link with generic_nack", "status", smppstatus.Name(f.Status))
			}
		}
	}
}

// shutdown stops taking submits, waits for the window to drain (every
// submit_sm written gets its response, or its response timeout) and for the
// handlers to finish, unbinds and closes the connection.
func (s *session) shutdown() {
	s.draining.Store(true)
	s.c.refreshBound()
	timeout := s.c.cfg.ResponseTimeout
	// Each submit_sm in the window ends by its own response timeout at the
	// latest; the second more covers the ones just being written.
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Second)
	if err := s.submits.wait(ctx); err != nil {
		s.log.Warn("unbinding with submit_sm still awaiting their response")
	}
	cancel()
	ctx, cancel = context.WithTimeout(context.Background(), s.c.cfg.HandlerTimeout)
	if err := s.deliveries.wait(ctx); err != nil {
		s.log.Warn("unbinding with receipts or MO still being handled")
	}
	cancel()
	ctx, cancel = context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := s.request(ctx, smppwire.HeaderOnly(smppwire.Unbind, 0, 0)); err != nil {
		s.log.Warn("unbind was not answered", "err", err)
	} else {
		s.log.Info("unbound")
	}
	s.close(errors.New("unbound"))
}

func (s *session) nextSeq() uint32 {
	for {
		v := s.seq.Add(1) & 0x7FFFFFFF
		if v != 0 {
			return v
		}
	}
}

// errNotSent wraps a failure before any byte of the request was written.
type errNotSent struct{ err error }

func (e errNotSent) Error() string { return e.err.Error() }
func (e errNotSent) Unwrap() error { return e.err }

// request writes a request PDU (its sequence number is set here) and waits
// for the response with the same sequence number, or a generic_nack.
func (s *session) request(ctx context.Context, raw []byte) (smppwire.Frame, error) {
	seq := s.nextSeq()
	smppwire.SetSeq(raw, seq)
	ch := make(chan smppwire.Frame, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return smppwire.Frame{}, errNotSent{ErrNotBound}
	}
	s.pending[seq] = ch
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		delete(s.pending, seq)
		s.mu.Unlock()
	}

	if err := s.write(raw); err != nil {
		forget()
		return smppwire.Frame{}, fmt.Errorf("%w: %w", ErrConnectionLost, err)
	}
	timer := time.NewTimer(s.c.cfg.ResponseTimeout)
	defer timer.Stop()
	select {
	case f := <-ch:
		return f, nil
	case <-timer.C:
		forget()
		return smppwire.Frame{}, ErrResponseTimeout
	case <-ctx.Done():
		forget()
		return smppwire.Frame{}, fmt.Errorf("smppclient: stopped waiting for the response: %w: %w", ctx.Err(), ErrInDoubt)
	case <-s.done:
		select {
		case f := <-ch: // answered just before the connection closed
			return f, nil
		default:
			return smppwire.Frame{}, fmt.Errorf("%w: %w", ErrConnectionLost, s.err())
		}
	}
}

// write sends one PDU; writes are serialized. A failed write ends the session.
func (s *session) write(raw []byte) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.c.cfg.ResponseTimeout))
	if _, err := s.conn.Write(raw); err != nil {
		s.close(fmt.Errorf("writing: %w", err))
		return err
	}
	return nil
}

// close ends the session once, failing every request still waiting.
func (s *session) close(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed, s.closeErr = true, err
	close(s.done)
	_ = s.conn.Close()
}

// ended reports whether the connection has closed.
func (s *session) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *session) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeErr
}

// readLoop reads every PDU the SMSC sends until the connection closes:
// responses go to their waiting request, requests are answered.
func (s *session) readLoop() {
	for {
		f, err := smppwire.ReadFrame(s.r)
		if err != nil {
			if errors.Is(err, smppwire.ErrBadLength) {
				_ = s.write(smppwire.HeaderOnly(smppwire.GenericNack, smppstatus.ESME_RINVCMDLEN, f.Seq))
			}
			s.close(fmt.Errorf("reading: %w", err))
			return
		}
		if f.IsResponse() {
			s.mu.Lock()
			ch := s.pending[f.Seq]
			delete(s.pending, f.Seq)
			s.mu.Unlock()
			if ch == nil {
				s.log.Debug("response to no waiting request, probably after its timeout",
					"command_id", fmt.Sprintf("0x%08X", f.CommandID), "seq", f.Seq, "status", smppstatus.Name(f.Status))
				continue
			}
			ch <- f
			continue
		}
		switch f.CommandID {
		case smppwire.EnquireLink:
			_ = s.write(smppwire.HeaderOnly(smppwire.EnquireLinkResp, 0, f.Seq))
		case smppwire.Unbind:
			_ = s.write(smppwire.HeaderOnly(smppwire.UnbindResp, 0, f.Seq))
			s.close(errPeerUnbound)
			return
		case smppwire.DeliverSM, smppwire.DataSM:
			if s.mode == Transmitter {
				_ = s.write(smppwire.MessageIDResp(f.CommandID|smppwire.ResponseBit, smppstatus.ESME_RINVBNDSTS, f.Seq, ""))
				continue
			}
			s.deliverSem <- struct{}{}
			s.deliveries.add()
			go func() {
				defer func() { <-s.deliverSem; s.deliveries.done() }()
				status := s.c.deliver(s.handlerCtx, f)
				_ = s.write(smppwire.MessageIDResp(f.CommandID|smppwire.ResponseBit, status, f.Seq, ""))
			}()
		case smppwire.AlertNotification:
			// no response is defined; nothing to do
		default:
			_ = s.write(smppwire.HeaderOnly(smppwire.GenericNack, smppstatus.ESME_RINVCMDID, f.Seq))
		}
	}
}

// submit sends a submit_sm within the window and returns the raw message_id.
func (s *session) submit(ctx context.Context, req *pdu.SubmitSM) (string, error) {
	// Counted before the check, so a drain that starts now either sees this
	// submit and waits for it, or this submit sees the drain.
	s.submits.add()
	defer s.submits.done()
	if s.draining.Load() {
		return "", errSessionEnding
	}

	select {
	case s.window <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("smppclient: waiting for room in the window: %w", ctx.Err())
	case <-s.done:
		return "", errSessionEnding
	}
	s.c.metrics.window.Inc()
	defer func() {
		<-s.window
		s.c.metrics.window.Dec()
	}()
	if s.draining.Load() {
		// The drain began while this part waited for room: it is not sent here.
		return "", errSessionEnding
	}

	start := time.Now()
	f, err := s.request(ctx, smppwire.Encode(req, 0))
	if err != nil {
		var ns errNotSent
		if errors.As(err, &ns) {
			return "", errSessionEnding
		}
		s.c.metrics.submits.WithLabelValues("in_doubt").Inc()
		return "", err
	}
	s.c.metrics.latency.Observe(time.Since(start).Seconds())
	status := f.Status
	if f.CommandID == smppwire.GenericNack && status == 0 {
		status = smppstatus.ESME_RSYSERR // a nack without a reason is still a refusal
	}
	s.c.metrics.submits.WithLabelValues(smppstatus.Name(status)).Inc()
	if status != 0 {
		return "", &SubmitError{Status: status, Retryable: smppstatus.Retryable(status)}
	}
	r := smppwire.NewBodyReader(f.Body())
	id := ""
	if r.Len() > 0 {
		id = r.CString(66, "message_id")
	}
	if r.Err() != nil {
		// Accepted, but the ID is unreadable: report the part as accepted
		// without an ID rather than invite a duplicate.
		s.log.Warn("unreadable message_id in submit_sm_resp", "err", r.Err(), "seq", f.Seq)
		id = ""
	}
	if id == "" {
		s.log.Warn("submit_sm_resp without message_id; no receipt can be matched to this part", "seq", f.Seq)
	}
	return id, nil
}

// tracker counts work in progress and lets a drain wait for none.
type tracker struct {
	mu   sync.Mutex
	n    int
	zero chan struct{}
}

func (t *tracker) add() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == 0 {
		t.zero = make(chan struct{})
	}
	t.n++
}

func (t *tracker) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 {
		close(t.zero)
	}
}

func (t *tracker) wait(ctx context.Context) error {
	t.mu.Lock()
	if t.n == 0 {
		t.mu.Unlock()
		return nil
	}
	zero := t.zero
	t.mu.Unlock()
	select {
	case <-zero:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
