package smppserver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/smsgw/smsgw/connectors/smppsession"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// bindKind is what a session is bound as.
type bindKind uint8

const (
	unbound bindKind = iota
	transmitter
	receiver
	transceiver
)

func kindOf(cmd uint32) bindKind {
	switch cmd {
	case smppwire.BindTransmitter:
		return transmitter
	case smppwire.BindReceiver:
		return receiver
	case smppwire.BindTransceiver:
		return transceiver
	}
	return unbound
}

func (k bindKind) String() string {
	return [...]string{"unbound", "transmitter", "receiver", "transceiver"}[k]
}

func (k bindKind) canSubmit() bool  { return k == transmitter || k == transceiver }
func (k bindKind) canReceive() bool { return k == receiver || k == transceiver }

// writeTimeout bounds one write to an ESME that stopped reading.
const writeTimeout = 10 * time.Second

// session is one ESME connection. The SMPP session engine runs the
// connection (framing, sequence numbers, enquire_link, unbind, the drain);
// the session answers what the ESME asks of the server (HandleRequest).
// Submissions run on goroutines of their own, at most Window at a time.
type session struct {
	srv    *Server
	smpp   *smppsession.Session
	remote net.Addr
	source sourceKey
	logp   atomic.Pointer[slog.Logger]
	// id tells this connection from every other, on any replica: with a
	// submit_sm's sequence number it names that submission (see
	// smsgw.Message.SubmissionRef).
	id string
	// heard is set by the first PDU from the ESME; until then the
	// connection has a read deadline and is the first to go when the caps
	// on unbound connections are reached.
	heard atomic.Bool
	// waiting is the session's place among the connections waiting to
	// bind, while it has one (admission.mu guards it).
	waiting *waiting

	submitSlots  chan struct{} // one per outstanding submission
	deliverSlots chan struct{} // one per deliver_sm awaiting its response
	submits      sync.WaitGroup

	mu       sync.Mutex
	kind     bindKind
	acc      account
	limiter  *rate.Limiter
	draining bool
}

func newSession(srv *Server, conn net.Conn) *session {
	cfg := srv.cfg
	sess := &session{
		srv: srv, remote: conn.RemoteAddr(), source: sourceOf(conn.RemoteAddr()), id: rand.Text(),
		submitSlots:  make(chan struct{}, cfg.Window),
		deliverSlots: make(chan struct{}, cfg.DeliverWindow),
	}
	sess.logp.Store(srv.log.With("remote", sess.remote.String()))
	sess.smpp = smppsession.New(conn, smppsession.Config{
		ResponseTimeout:    cfg.ResponseTimeout,
		EnquireLink:        cfg.EnquireLink,
		MissedEnquireLinks: cfg.MissedEnquireLinks,
		WriteTimeout:       writeTimeout,
		DrainTimeout:       cfg.DrainTimeout,
		MaxPDUBeforeBind:   maxPDUBeforeBind,
		Logger:             sess.log(),
		OnReceive: func(f smppwire.Frame) {
			if !sess.heard.Load() {
				sess.heard.Store(true)
				_ = conn.SetReadDeadline(time.Time{}) // the first PDU is in
			}
			srv.metrics.countPDU("in", f.Raw)
		},
		OnSend: func(raw []byte) { srv.metrics.countPDU("out", raw) },
	}, sess)
	return sess
}

// maxPDUBeforeBind is the longest PDU an ESME may send before it binds: a
// bind with every field at its longest takes under 100 octets.
const maxPDUBeforeBind = 256

func (sess *session) log() *slog.Logger { return sess.logp.Load() }

// binding returns who the session is bound as.
func (sess *session) binding() (customerID string, kind bindKind) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.acc.customerID, sess.kind
}

// run serves the connection until it ends. When ctx ends the session
// drains: submissions arriving now are refused, the outstanding ones and
// the deliver_sm awaiting their answer finish (within DrainTimeout), then
// the engine unbinds and closes.
func (sess *session) run(ctx context.Context) {
	notBound := time.AfterFunc(sess.srv.cfg.BindTimeout, sess.closeIfUnbound)
	defer notBound.Stop()
	stop := context.AfterFunc(ctx, sess.startDraining)
	defer stop()
	sess.logEnd(sess.smpp.Run(ctx))
	// Submissions still running answer into a closed session; wait for
	// them so the server's drain covers them.
	waited := make(chan struct{})
	go func() { sess.submits.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(sess.srv.cfg.SubmitTimeout + time.Second):
	}
}

// logEnd says why a session ended, when it is worth saying.
func (sess *session) logEnd(err error) {
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, smppsession.ErrPeerUnbound):
		sess.log().Info("the ESME unbound")
	case errors.Is(err, smppwire.ErrBadLength):
		// The stream could not be split into PDUs any more.
		sess.log().Warn("closed a session that sent an invalid command_length", "err", err)
	case errors.Is(err, smppsession.ErrPeerSilent):
		sess.log().Warn("closed a session silent for too long", "err", err)
	case !sess.heard.Load() && errors.Is(err, os.ErrDeadlineExceeded):
		// Counted, not logged one by one: a flood of idle connections
		// would flood the log too.
		sess.srv.metrics.shed.WithLabelValues("first_pdu_timeout").Inc()
		sess.log().Debug("closed a connection that sent no PDU in time", "after", sess.srv.cfg.FirstPDUTimeout)
	default:
		sess.log().Info("session ended", "err", err)
	}
}

// closeIfUnbound closes a connection that has not bound in time.
func (sess *session) closeIfUnbound() {
	if _, kind := sess.binding(); kind == unbound {
		sess.log().Info("closing a connection that did not bind", "after", sess.srv.cfg.BindTimeout)
		sess.smpp.Close()
	}
}

// startDraining makes the session take no new work.
func (sess *session) startDraining() {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.draining = true
}

// isDraining reports whether the session takes no new work.
func (sess *session) isDraining() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.draining
}

// ended reports whether the connection has closed.
func (sess *session) ended() bool {
	select {
	case <-sess.smpp.Done():
		return true
	default:
		return false
	}
}

// respond sends the answer to a request of the ESME's.
func (sess *session) respond(raw []byte) { _ = sess.smpp.Respond(raw) }

// HandleRequest answers one request of the ESME's (enquire_link, unbind
// and unknown commands are the engine's).
func (sess *session) HandleRequest(ctx context.Context, f smppwire.Frame) {
	switch f.CommandID {
	case smppwire.BindTransmitter, smppwire.BindReceiver, smppwire.BindTransceiver:
		sess.bind(ctx, f)
	case smppwire.SubmitSM, smppwire.DataSM:
		sess.submit(f)
	case smppwire.QuerySM, smppwire.CancelSM, smppwire.ReplaceSM:
		sess.lookup(f)
	case smppwire.SubmitMulti:
		status := smppstatus.ESME_RINVCMDID
		if _, kind := sess.binding(); !kind.canSubmit() {
			status = smppstatus.ESME_RINVBNDSTS
		}
		sess.respond(smppwire.HeaderOnly(smppwire.SubmitMultiResp, status, f.Seq))
	default:
		// A PDU only an SMSC sends (deliver_sm, outbind,
		// alert_notification): SMPP 3.4 §3.3 says generic_nack.
		sess.respond(smppwire.HeaderOnly(smppwire.GenericNack, smppstatus.ESME_RINVCMDID, f.Seq))
	}
}

// bind answers a bind request. A refused bind is answered, and then the
// connection closes (except when it was refused because the session is
// bound already). Before the password is checked, a bind from a source or
// for a system_id that failed often lately waits, and one from a source
// that failed too often is refused unchecked (BindFailures).
func (sess *session) bind(ctx context.Context, f smppwire.Frame) {
	kind := kindOf(f.CommandID)
	respCmd := f.CommandID | smppwire.ResponseBit
	srv := sess.srv
	refuse := func(result, reason, systemID string, attrs ...any) {
		srv.metrics.bindAttempts.WithLabelValues(result).Inc()
		sess.log().Info("bind refused", append([]any{"system_id", systemID, "type", kind.String(), "reason", reason}, attrs...)...)
		// SMPP 3.4 §4.1: no body with a non-zero command_status.
		sess.respond(smppwire.HeaderOnly(respCmd, smppstatus.ESME_RBINDFAIL, f.Seq))
		sess.smpp.Close() // what is queued, the answer, is written first
	}
	if _, cur := sess.binding(); cur != unbound {
		srv.metrics.bindAttempts.WithLabelValues("refused").Inc()
		sess.log().Info("bind refused", "type", kind.String(), "reason", "already bound as "+cur.String())
		sess.respond(smppwire.HeaderOnly(respCmd, smppstatus.ESME_RALYBND, f.Seq))
		return
	}
	req, err := decodeBind(f.Body())
	if err == nil {
		lockedUntil, wait, bySource := srv.guard.hold(sess.source, req.SystemID)
		if !lockedUntil.IsZero() {
			refuse("locked_out", "too many failed binds from this source", req.SystemID, "locked_until", lockedUntil)
			return
		}
		if wait > 0 && !sess.holdBack(ctx, wait, bySource) {
			return
		}
	}
	var acc account
	reason, ok := "unreadable bind", false
	if err != nil {
		reason += ": " + err.Error()
	} else {
		acc, reason, ok = srv.authenticate(req, sess.remote)
	}
	if !ok {
		failures, lockedOut := srv.guard.failed(sess.source, req.SystemID)
		refuse("refused", reason, req.SystemID, "source_failures", failures)
		if lockedOut {
			srv.metrics.lockouts.Inc()
			sess.log().Warn("locking out a source after repeated failed binds",
				"source", string(sess.source), "failures", failures, "for", srv.cfg.BindFailures.Lockout)
		}
		return
	}
	srv.guard.succeeded(req.SystemID)
	if reason, ok := srv.reserveBind(sess, acc, kind); !ok {
		refuse("refused", reason, req.SystemID)
		return
	}
	srv.admission.leave(sess)
	limiter := srv.limiter(acc.customerID, acc.tps)
	sess.mu.Lock()
	sess.kind, sess.acc, sess.limiter = kind, acc, limiter
	sess.mu.Unlock()
	sess.logp.Store(sess.log().With("customer", acc.customerID, "system_id", acc.systemID, "type", kind.String()))
	if err := sess.smpp.Respond(bindResp(f.CommandID, f.Seq, srv.cfg.SystemID)); err != nil {
		return
	}
	srv.metrics.bindAttempts.WithLabelValues("ok").Inc()
	sess.log().Info("bound", "interface_version", fmt.Sprintf("0x%02X", req.InterfaceVersion))
	if kind.canReceive() {
		srv.startDelivering(acc.customerID)
	}
}

// holdBack makes a bind wait before its password is checked; it reports
// false when the session ended meanwhile.
func (sess *session) holdBack(ctx context.Context, wait time.Duration, bySource bool) bool {
	by := "system_id"
	if bySource {
		by = "source"
	}
	sess.srv.metrics.bindDelayed.WithLabelValues(by).Inc()
	select {
	case <-time.After(wait):
	case <-ctx.Done():
	}
	return ctx.Err() == nil
}
