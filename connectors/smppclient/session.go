package smppclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/linxGnu/gosmpp/pdu"

	"github.com/smsgw/smsgw/connectors/smppsession"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// maxConcurrentDeliveries bounds the receipts and MO handled at once on one
// bind. When all are busy the reader stops reading, and TCP slows the SMSC down.
const maxConcurrentDeliveries = 32

// errSessionEnding means a session was unbinding or lost before a submit_sm
// was written to it: nothing was sent, so another session may take the part.
var errSessionEnding = fmt.Errorf("%w: the session is ending", ErrNotBound)

// session is one bound connection. The SMPP session engine runs it, with
// its own sequence numbers and window; the session submits and hands what
// the SMSC delivers to the client. It ends when the connection does, and
// Run makes a new one.
type session struct {
	c    *Client
	mode string // Transceiver, Transmitter or Receiver
	log  *slog.Logger
	smpp *smppsession.Session

	draining   atomic.Bool
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

// bind dials the SMSC and binds in the given mode with gosmpp's
// BindRequest. The session runs until ctx ends, and then unbinds.
func (c *Client) bind(ctx context.Context, mode string, log *slog.Logger) (*session, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	s := &session{
		c:          c,
		mode:       mode,
		log:        log,
		deliverSem: make(chan struct{}, maxConcurrentDeliveries),
		handlerCtx: context.WithoutCancel(ctx),
	}
	s.smpp = smppsession.New(conn, smppsession.Config{
		Window:             c.cfg.WindowSize,
		ResponseTimeout:    c.cfg.ResponseTimeout,
		EnquireLink:        c.cfg.EnquireLink,
		MissedEnquireLinks: 1,
		WriteTimeout:       c.cfg.ResponseTimeout,
		// Each submit_sm in the window ends by its own response timeout at
		// the latest, and each receipt or MO by the handler's.
		DrainTimeout: c.cfg.ResponseTimeout + c.cfg.HandlerTimeout,
		Logger:       log,
		OnWindow:     func(delta int) { c.metrics.window.Add(float64(delta)) },
	}, s)
	go func() { _ = s.smpp.Run(ctx) }()

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
	// The engine's response timeout bounds the wait for the answer.
	resp, err := s.smpp.Call(ctx, smppwire.Encode(req, 0))
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case err != nil:
		err = fmt.Errorf("%s bind: %w", mode, err)
	case resp.Status != smppstatus.ESME_ROK:
		err = &BindError{Status: resp.Status}
	case resp.CommandID == smppwire.GenericNack:
		err = &BindError{Status: smppstatus.ESME_RSYSERR}
	}
	if err != nil {
		s.smpp.Close()
		<-s.smpp.Done()
		return nil, err
	}
	return s, nil
}

// serve waits for the session to end: the connection fails, the SMSC
// unbinds, or ctx ends (then the engine drains and unbinds).
func (s *session) serve(ctx context.Context) error {
	select {
	case <-s.smpp.Done():
	case <-ctx.Done():
		// The engine takes no new submit_sm now; Bound stops counting it.
		s.draining.Store(true)
		s.c.refreshBound()
		<-s.smpp.Done()
	}
	return s.smpp.Err()
}

// ended reports whether the connection has closed.
func (s *session) ended() bool {
	select {
	case <-s.smpp.Done():
		return true
	default:
		return false
	}
}

// HandleRequest takes what the SMSC sends besides enquire_link and unbind
// (the engine answers those): receipts and MO are handled on goroutines of
// their own, at most maxConcurrentDeliveries at a time.
func (s *session) HandleRequest(ctx context.Context, f smppwire.Frame) {
	switch f.CommandID {
	case smppwire.DeliverSM, smppwire.DataSM:
		if s.mode == Transmitter {
			_ = s.smpp.Respond(smppwire.MessageIDResp(f.CommandID|smppwire.ResponseBit, smppstatus.ESME_RINVBNDSTS, f.Seq, ""))
			return
		}
		select {
		case s.deliverSem <- struct{}{}:
		case <-ctx.Done():
			return // the session closed: no answer can reach the SMSC
		}
		go func() {
			defer func() { <-s.deliverSem }()
			status, mo := s.c.deliver(s.handlerCtx, f)
			err := s.smpp.Respond(smppwire.MessageIDResp(f.CommandID|smppwire.ResponseBit, status, f.Seq, ""))
			if w, ok := s.c.handler.(MOAnswerWatcher); ok && mo != nil && err == nil {
				w.MOAnswered(s.handlerCtx, *mo)
			}
		}()
	case smppwire.AlertNotification:
		// no response is defined; nothing to do
	default:
		_ = s.smpp.Respond(smppwire.HeaderOnly(smppwire.GenericNack, smppstatus.ESME_RINVCMDID, f.Seq))
	}
}

// submit sends a submit_sm within the window and returns the raw message_id.
func (s *session) submit(ctx context.Context, req *pdu.SubmitSM) (string, error) {
	if s.draining.Load() {
		return "", errSessionEnding
	}
	sent, err := s.smpp.Start(ctx, smppwire.Encode(req, 0))
	switch {
	case errors.Is(err, smppsession.ErrClosed):
		// The drain began, or the connection ended, before it was sent.
		return "", errSessionEnding
	case err != nil:
		return "", fmt.Errorf("smppclient: %w", err)
	}
	start := time.Now()
	f, err := sent.Wait(ctx)
	if err != nil {
		s.c.metrics.submits.WithLabelValues("in_doubt").Inc()
		switch {
		case errors.Is(err, smppsession.ErrTimeout):
			return "", ErrResponseTimeout
		case errors.Is(err, smppsession.ErrConnectionLost):
			return "", fmt.Errorf("%w: %w", ErrConnectionLost, err)
		}
		return "", fmt.Errorf("smppclient: %w: %w", err, ErrInDoubt) // ctx ended first
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
