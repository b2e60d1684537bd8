package smppserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

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

var (
	errClosed  = errors.New("session closed")
	errTimeout = errors.New("no response in time")
)

// session is one ESME connection. One goroutine reads it, one writes it,
// and one watches the clock (enquire_link, bind timeout, drain).
// Submissions run on goroutines of their own, at most Window at a time.
type session struct {
	srv     *Server
	conn    net.Conn
	remote  string
	started time.Time
	logp    atomic.Pointer[slog.Logger]

	out        chan []byte // PDUs to write; nil asks the writer to flush and close
	writerDone chan struct{}
	closed     chan struct{}
	closeOnce  sync.Once

	seq      atomic.Uint32
	lastRead atomic.Int64 // unix nanoseconds of the last PDU read

	submitSlots  chan struct{} // one per outstanding submission
	deliverSlots chan struct{} // one per deliver_sm awaiting its response
	submits      sync.WaitGroup

	mu       sync.Mutex
	kind     bindKind
	acc      account
	limiter  *rate.Limiter
	pending  map[uint32]*request // our requests awaiting their response, by sequence number
	draining bool
}

// request is a PDU we sent that awaits a response. done is called exactly
// once: with the response's command_status, or an error.
type request struct {
	done  func(status uint32, err error)
	timer *time.Timer
}

func newSession(srv *Server, conn net.Conn) *session {
	sess := &session{
		srv: srv, conn: conn, remote: conn.RemoteAddr().String(), started: srv.cfg.Now(),
		out:          make(chan []byte, 256),
		writerDone:   make(chan struct{}),
		closed:       make(chan struct{}),
		submitSlots:  make(chan struct{}, srv.cfg.Window),
		deliverSlots: make(chan struct{}, srv.cfg.DeliverWindow),
		pending:      map[uint32]*request{},
	}
	sess.logp.Store(srv.log.With("remote", sess.remote))
	sess.lastRead.Store(time.Now().UnixNano())
	return sess
}

func (sess *session) log() *slog.Logger { return sess.logp.Load() }

// binding returns who the session is bound as.
func (sess *session) binding() (customerID string, kind bindKind) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.acc.customerID, sess.kind
}

// run serves the connection until it ends.
func (sess *session) run(ctx context.Context) {
	go sess.writeLoop()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		sess.watch(ctx.Done())
	}()
	sess.readLoop()
	sess.flushAndClose()
	<-watched
	// Submissions still running answer into a closed session; wait for
	// them so the server's drain covers them.
	waited := make(chan struct{})
	go func() { sess.submits.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(sess.srv.cfg.SubmitTimeout + time.Second):
	}
	sess.failPending(errClosed)
}

// readLoop reads and handles PDUs until the connection ends.
func (sess *session) readLoop() {
	r := bufio.NewReaderSize(sess.conn, 32<<10)
	for {
		f, err := smppwire.ReadFrame(r)
		if err != nil {
			switch {
			case errors.Is(err, smppwire.ErrBadLength):
				// The stream cannot be split into PDUs any more.
				sess.log().Warn("closing a session that sent an invalid command_length", "err", err)
				_ = sess.send(smppwire.HeaderOnly(smppwire.GenericNack, smppstatus.ESME_RINVCMDLEN, f.Seq))
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), sess.isClosed():
			default:
				sess.log().Info("session read failed", "err", err)
			}
			return
		}
		sess.lastRead.Store(time.Now().UnixNano())
		sess.srv.metrics.countPDU("in", f.Raw)
		if !sess.handle(f) {
			return
		}
	}
}

// handle answers one PDU and reports whether to keep reading.
func (sess *session) handle(f smppwire.Frame) bool {
	if f.IsResponse() {
		sess.complete(f)
		return true
	}
	switch f.CommandID {
	case smppwire.BindTransmitter, smppwire.BindReceiver, smppwire.BindTransceiver:
		return sess.bind(f)
	case smppwire.EnquireLink:
		return sess.send(smppwire.HeaderOnly(smppwire.EnquireLinkResp, 0, f.Seq)) == nil
	case smppwire.Unbind:
		_ = sess.send(smppwire.HeaderOnly(smppwire.UnbindResp, 0, f.Seq))
		sess.log().Info("the ESME unbound")
		return false
	case smppwire.SubmitSM, smppwire.DataSM:
		return sess.submit(f)
	case smppwire.QuerySM, smppwire.CancelSM, smppwire.ReplaceSM:
		return sess.lookup(f)
	case smppwire.SubmitMulti:
		if _, kind := sess.binding(); !kind.canSubmit() {
			return sess.send(smppwire.HeaderOnly(smppwire.SubmitMultiResp, smppstatus.ESME_RINVBNDSTS, f.Seq)) == nil
		}
		return sess.send(smppwire.HeaderOnly(smppwire.SubmitMultiResp, smppstatus.ESME_RINVCMDID, f.Seq)) == nil
	default:
		// Unknown, or a PDU only an SMSC sends (deliver_sm, outbind,
		// alert_notification): SMPP 3.4 §3.3 says generic_nack.
		return sess.send(smppwire.HeaderOnly(smppwire.GenericNack, smppstatus.ESME_RINVCMDID, f.Seq)) == nil
	}
}

// bind answers a bind request.
func (sess *session) bind(f smppwire.Frame) bool {
	kind := kindOf(f.CommandID)
	respCmd := f.CommandID | smppwire.ResponseBit
	refuse := func(status uint32, reason string, systemID string) bool {
		sess.srv.metrics.bindAttempts.WithLabelValues("refused").Inc()
		sess.log().Info("bind refused", "system_id", systemID, "type", kind.String(), "reason", reason, "status", smppstatus.Name(status))
		// SMPP 3.4 §4.1: no body with a non-zero command_status.
		return sess.send(smppwire.HeaderOnly(respCmd, status, f.Seq)) == nil
	}
	if _, cur := sess.binding(); cur != unbound {
		return refuse(smppstatus.ESME_RALYBND, "already bound as "+cur.String(), "")
	}
	req, err := decodeBind(f.Body())
	if err != nil {
		return refuse(smppstatus.ESME_RBINDFAIL, "unreadable bind: "+err.Error(), req.SystemID)
	}
	acc, reason, ok := sess.srv.authenticate(req, sess.conn.RemoteAddr())
	if !ok {
		return refuse(smppstatus.ESME_RBINDFAIL, reason, req.SystemID)
	}
	if reason, ok := sess.srv.reserveBind(sess, acc, kind); !ok {
		return refuse(smppstatus.ESME_RBINDFAIL, reason, req.SystemID)
	}
	limiter := sess.srv.limiter(acc.customerID, acc.tps)
	sess.mu.Lock()
	sess.kind, sess.acc, sess.limiter = kind, acc, limiter
	sess.mu.Unlock()
	sess.logp.Store(sess.log().With("customer", acc.customerID, "system_id", acc.systemID, "type", kind.String()))
	if err := sess.send(bindResp(f.CommandID, f.Seq, sess.srv.cfg.SystemID)); err != nil {
		return false
	}
	sess.srv.metrics.bindAttempts.WithLabelValues("ok").Inc()
	sess.log().Info("bound", "interface_version", fmt.Sprintf("0x%02X", req.InterfaceVersion))
	if kind.canReceive() {
		sess.srv.startDelivering(acc.customerID)
	}
	return true
}

// send queues a PDU for the writer.
func (sess *session) send(raw []byte) error {
	select {
	case sess.out <- raw:
		sess.srv.metrics.countPDU("out", raw)
		return nil
	case <-sess.closed:
		return errClosed
	}
}

// writeLoop writes queued PDUs, flushing whenever the queue runs dry.
func (sess *session) writeLoop() {
	defer close(sess.writerDone)
	w := bufio.NewWriterSize(sess.conn, 32<<10)
	for {
		var raw []byte
		select {
		case raw = <-sess.out:
		case <-sess.closed:
			return
		}
		_ = sess.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		last := false
	batch:
		for {
			if raw == nil {
				last = true
				break
			}
			if _, err := w.Write(raw); err != nil {
				sess.close()
				return
			}
			select {
			case raw = <-sess.out:
			default:
				break batch
			}
		}
		if err := w.Flush(); err != nil || last {
			sess.close()
			return
		}
	}
}

// flushAndClose writes what is queued, then closes the connection.
func (sess *session) flushAndClose() {
	select {
	case sess.out <- nil:
	case <-sess.closed:
	}
	select {
	case <-sess.writerDone:
	case <-time.After(writeTimeout):
	}
	sess.close()
}

// close ends the connection at once.
func (sess *session) close() {
	sess.closeOnce.Do(func() {
		close(sess.closed)
		_ = sess.conn.Close()
	})
}

func (sess *session) isClosed() bool {
	select {
	case <-sess.closed:
		return true
	default:
		return false
	}
}

func (sess *session) nextSeq() uint32 {
	for {
		if seq := sess.seq.Add(1) & 0x7FFFFFFF; seq != 0 {
			return seq
		}
	}
}

// call sends a request and arranges for done to hear its outcome.
func (sess *session) call(raw []byte, timeout time.Duration, done func(status uint32, err error)) {
	seq := sess.nextSeq()
	smppwire.SetSeq(raw, seq)
	r := &request{done: done}
	sess.mu.Lock()
	if sess.pending == nil {
		sess.mu.Unlock()
		done(0, errClosed)
		return
	}
	sess.pending[seq] = r
	r.timer = time.AfterFunc(timeout, func() {
		if sess.take(seq) == r {
			done(0, errTimeout)
		}
	})
	sess.mu.Unlock()
	if err := sess.send(raw); err != nil && sess.take(seq) == r {
		r.timer.Stop()
		done(0, err)
	}
}

// take removes and returns the request awaiting seq.
func (sess *session) take(seq uint32) *request {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	r := sess.pending[seq]
	delete(sess.pending, seq)
	return r
}

// complete hands a response to the request it answers.
func (sess *session) complete(f smppwire.Frame) {
	r := sess.take(f.Seq)
	if r == nil {
		sess.log().Debug("response to no request of ours", "command_id", fmt.Sprintf("0x%08X", f.CommandID), "seq", f.Seq)
		return
	}
	r.timer.Stop()
	r.done(f.Status, nil)
}

// failPending ends every request still awaiting a response.
func (sess *session) failPending(err error) {
	sess.mu.Lock()
	pending := sess.pending
	sess.pending = nil
	sess.mu.Unlock()
	for _, r := range pending {
		r.timer.Stop()
		r.done(0, err)
	}
}

// watch keeps the session alive with enquire_link, closes it when the ESME
// has been silent too long or never bound, and drains it when stop closes.
func (sess *session) watch(stop <-chan struct{}) {
	cfg := sess.srv.cfg
	tick := time.NewTicker(max(min(cfg.EnquireLink, cfg.BindTimeout)/4, 5*time.Millisecond))
	defer tick.Stop()
	var probes int
	var probedSince int64
	for {
		select {
		case <-sess.closed:
			return
		case <-stop:
			sess.drain()
			return
		case <-tick.C:
		}
		if _, kind := sess.binding(); kind == unbound {
			if cfg.Now().Sub(sess.started) > cfg.BindTimeout {
				sess.log().Info("closing a connection that did not bind", "after", cfg.BindTimeout)
				sess.close()
				return
			}
			continue
		}
		last := sess.lastRead.Load()
		if last != probedSince {
			probes, probedSince = 0, last
		}
		idle := time.Since(time.Unix(0, last))
		if idle < time.Duration(probes+1)*cfg.EnquireLink {
			continue
		}
		if probes >= cfg.MissedEnquireLinks {
			sess.log().Warn("closing a session silent for too long", "idle", idle.Round(time.Millisecond), "enquire_links_unanswered", probes)
			sess.call(smppwire.HeaderOnly(smppwire.Unbind, 0, 0), cfg.ResponseTimeout, func(uint32, error) {})
			sess.flushAndClose()
			return
		}
		probes++
		sess.call(smppwire.HeaderOnly(smppwire.EnquireLink, 0, 0), cfg.ResponseTimeout, func(uint32, error) {})
	}
}

// drain stops taking work, lets outstanding submissions and deliveries
// finish, then unbinds and closes the session.
func (sess *session) drain() {
	sess.mu.Lock()
	sess.draining = true
	kind := sess.kind
	sess.mu.Unlock()
	if kind == unbound {
		sess.close()
		return
	}
	cfg := sess.srv.cfg
	deadline := time.Now().Add(cfg.DrainTimeout)
	for (len(sess.submitSlots) > 0 || len(sess.deliverSlots) > 0) && time.Now().Before(deadline) && !sess.isClosed() {
		time.Sleep(10 * time.Millisecond)
	}
	answered := make(chan struct{})
	sess.call(smppwire.HeaderOnly(smppwire.Unbind, 0, 0), cfg.ResponseTimeout, func(uint32, error) { close(answered) })
	select {
	case <-answered:
	case <-sess.closed:
	}
	sess.log().Info("session drained and unbound")
	sess.flushAndClose()
}

// isDraining reports whether the session takes no new work.
func (sess *session) isDraining() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.draining
}
