// Package smppsession runs one SMPP 3.4 session over a connection, for
// either end of a bind: the gateway's upstream client, its SMPP server, the
// SMSC simulator and the test ESME all use it.
//
// A Session frames PDUs off the stream (smppwire), numbers the requests it
// sends and matches their responses, keeps a window of them outstanding,
// answers enquire_link and unbind itself, sends enquire_link when the peer
// has gone quiet and gives up on a peer that stops answering, unbinds with
// both windows drained, and answers a PDU it cannot frame or a command_id
// SMPP 3.4 does not define with generic_nack. What the other requests mean
// is the user's business: a Handler answers them.
//
//	s := smppsession.New(conn, cfg, handler)
//	go s.Run(ctx)                      // until the connection ends; ctx ending unbinds
//	resp, err := s.Call(ctx, request)  // a request of ours and its response
//
// Writes go through one goroutine that batches them, so a busy session
// costs few system calls; the reader hands requests to the Handler one at a
// time, in order, and waits while it runs, so a slow Handler slows the peer
// down through TCP.
package smppsession

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// Config tunes a session. Zero values take the defaults named.
type Config struct {
	// Window is the most requests of the user's awaiting their response at
	// once; Start waits for room. 0: no limit. The enquire_link and unbind
	// the session sends itself do not count.
	Window int
	// ResponseTimeout is how long a request waits for its response. Default 10s.
	ResponseTimeout time.Duration
	// EnquireLink is how long a bound session may read nothing from the
	// peer before it sends enquire_link; 0 sends none.
	EnquireLink time.Duration
	// MissedEnquireLinks is how many enquire_link in a row may see nothing
	// at all from the peer within ResponseTimeout before the session gives
	// up on it: it sends unbind, without waiting for the answer, and closes.
	// Default 3.
	MissedEnquireLinks int
	// WriteTimeout bounds each write to a peer that stopped reading. Default 10s.
	WriteTimeout time.Duration
	// DrainTimeout bounds how long the unbind that Run starts when its
	// context ends waits for both windows to empty. Default 10s.
	DrainTimeout time.Duration
	// MaxPDUBeforeBind, when set, is the longest PDU the peer may send
	// before the session is bound; a longer one is answered generic_nack
	// and closes the session, before anything is allocated for it. A bind
	// and what may precede it take a few dozen octets.
	MaxPDUBeforeBind int
	// Logger is for what only the session sees; nil discards.
	Logger *slog.Logger

	// Hooks, for metrics and test tools; each may be nil. They run on the
	// session's goroutines and must return quickly.

	// OnReceive sees every PDU read, before it is handled.
	OnReceive func(f smppwire.Frame)
	// OnSend sees every PDU queued for writing.
	OnSend func(raw []byte)
	// OnWindow hears +1 when a request takes room in the window and -1 when
	// it leaves (answered, timed out, given up or lost).
	OnWindow func(delta int)
}

func (c *Config) setDefaults() {
	if c.ResponseTimeout <= 0 {
		c.ResponseTimeout = 10 * time.Second
	}
	if c.MissedEnquireLinks <= 0 {
		c.MissedEnquireLinks = 3
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Handler answers the requests the peer sends, other than enquire_link and
// unbind (which the session answers) and command_ids SMPP 3.4 does not
// define (generic_nack).
type Handler interface {
	// HandleRequest is called on the session's reader for each request, one
	// at a time, in the order they arrive. It answers the request with
	// Session.Respond, at once or later from another goroutine, exactly once
	// (alert_notification and outbind take no answer). ctx ends when the
	// session closes; work that must outlive the connection uses
	// context.WithoutCancel.
	HandleRequest(ctx context.Context, req smppwire.Frame)
}

// HandlerFunc is a function that is a Handler.
type HandlerFunc func(ctx context.Context, req smppwire.Frame)

// HandleRequest calls f.
func (f HandlerFunc) HandleRequest(ctx context.Context, req smppwire.Frame) { f(ctx, req) }

var (
	// ErrClosed means the session was closed or unbinding: nothing was sent.
	ErrClosed = errors.New("smppsession: the session is closed or unbinding")
	// ErrTimeout means no response came within Config.ResponseTimeout.
	ErrTimeout = errors.New("smppsession: no response within the response timeout")
	// ErrConnectionLost means the session ended after the request was sent
	// and before its response.
	ErrConnectionLost = errors.New("smppsession: the session ended before the response")
	// ErrPeerUnbound ends a session the peer unbound.
	ErrPeerUnbound = errors.New("smppsession: the peer unbound")
	// ErrPeerSilent ends a session whose peer stopped answering enquire_link.
	ErrPeerSilent = errors.New("smppsession: the peer stopped answering enquire_link")
)

// Session is one SMPP session. Create it with New and keep Run going; the
// other methods may be called from any goroutine.
type Session struct {
	conn    net.Conn
	cfg     Config
	handler Handler
	log     *slog.Logger

	out      chan []byte   // PDUs queued for the writer
	stopping chan struct{} // closed when unbinding begins or the session closes: no new requests of the user's
	closing  chan struct{} // closed by Close: the writer flushes what is queued and closes the connection
	done     chan struct{} // closed when Run has returned
	stopOnce sync.Once
	runOnce  sync.Once
	cancel   context.CancelFunc // ends the handlers' context
	closeMu  sync.Mutex         // orders Close with the creation of the handlers' context

	window      chan struct{} // one token per request of the user's awaiting its response; nil without a limit
	outstanding atomic.Int32  // requests of the user's awaiting their response
	seq         atomic.Uint32 // the last sequence number used
	lastRead    atomic.Int64  // unix nanoseconds of the last PDU read
	bound       atomic.Bool

	mu       sync.Mutex
	pending  map[uint32]*Pending // our requests awaiting their response, by sequence number
	theirs   map[uint32]int      // the peer's requests awaiting our answer, by sequence number
	inFlight int                 // len(pending) plus the sum of theirs
	idle     chan struct{}       // closed whenever inFlight drops to 0
	draining bool                // unbinding: no new requests of the user's
	closed   bool                // Run has failed what was pending: no new requests at all
	ended    bool                // why the session ends is known
	err      error               // that reason; nil when ended by Close or Unbind
}

// New returns a session over conn that answers the peer's requests with h
// (nil answers them all with generic_nack). Nothing is read or written
// until Run.
func New(conn net.Conn, cfg Config, h Handler) *Session {
	cfg.setDefaults()
	s := &Session{
		conn:     conn,
		cfg:      cfg,
		log:      cfg.Logger,
		out:      make(chan []byte, 256),
		stopping: make(chan struct{}),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
		pending:  make(map[uint32]*Pending),
		theirs:   make(map[uint32]int),
	}
	if h == nil {
		h = HandlerFunc(s.refuse)
	}
	s.handler = h
	if cfg.Window > 0 {
		s.window = make(chan struct{}, cfg.Window)
	}
	s.lastRead.Store(time.Now().UnixNano())
	return s
}

// Run serves the session until it ends: the peer unbinds or leaves, breaks
// the framing or stops answering, or Close or Unbind ends it. When ctx ends
// first, Run unbinds (see Unbind), waiting up to Config.DrainTimeout for the
// windows. Run returns why the session ended: nil after Close or Unbind,
// ErrPeerUnbound, ErrPeerSilent, an error wrapping smppwire.ErrBadLength,
// or the read or write error that ended it. Call it once.
func (s *Session) Run(ctx context.Context) error {
	ran := false
	s.runOnce.Do(func() { ran = true })
	if !ran {
		return errors.New("smppsession: Run called twice")
	}
	defer close(s.done)

	s.closeMu.Lock()
	handlerCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	if s.isClosing() {
		cancel()
	}
	s.closeMu.Unlock()

	writer := make(chan struct{})
	go func() {
		defer close(writer)
		s.writeLoop()
	}()
	var bg sync.WaitGroup
	bg.Go(s.keepAlive)
	unbound := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(unbound)
		dctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
		defer cancel()
		switch err := s.Unbind(dctx); {
		case errors.Is(err, ErrClosed): // ended before ctx did
		case err != nil:
			s.log.Warn("unbind was not answered", "err", err)
		case s.Bound():
			s.log.Info("unbound")
		}
	})

	defer func() { // also when a Handler panics
		s.Close()
		<-writer // the connection is closed
		s.failPending()
		if !stop() {
			<-unbound
		}
		bg.Wait()
	}()
	s.end(s.readLoop(handlerCtx))
	return s.Err()
}

// Done is closed when Run has returned.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session ended (see Run), nil while it runs.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Bound reports whether a bind succeeded on the session: the peer answered
// ours with ESME_ROK, or we answered theirs so.
func (s *Session) Bound() bool { return s.bound.Load() }

// Outstanding returns how many requests of the user's await their response.
func (s *Session) Outstanding() int { return int(s.outstanding.Load()) }

// Close ends the session: what is queued is written (within
// Config.WriteTimeout), then the connection closes and every request still
// waiting fails. It does not unbind; see Unbind.
func (s *Session) Close() {
	s.end(nil)
	s.stop()
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if !s.isClosing() {
		close(s.closing)
		if s.cancel != nil {
			s.cancel()
		}
	}
}

// end records why the session ends; the first reason wins.
func (s *Session) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.ended, s.err = true, err
	}
}

// stop takes no more requests of the user's and ends the keep-alive. It
// reports whether this call did so, rather than an earlier one.
func (s *Session) stop() bool {
	first := false
	s.stopOnce.Do(func() {
		first = true
		s.mu.Lock()
		s.draining = true
		s.mu.Unlock()
		close(s.stopping)
	})
	return first
}

func (s *Session) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// Unbind ends the session gracefully: it takes no new requests of the
// user's, waits until every request of ours has its response and every
// request of the peer's its answer (or ctx ends), sends unbind, waits for
// unbind_resp up to Config.ResponseTimeout and closes. A session that never
// bound is closed at once. It returns ErrClosed when the session is already
// unbinding or closed.
func (s *Session) Unbind(ctx context.Context) error {
	if !s.stop() {
		return ErrClosed
	}
	defer s.Close()
	if !s.Bound() {
		return nil
	}
	if err := s.waitIdle(ctx); err != nil {
		s.log.Warn("unbinding with requests still outstanding", "err", err)
	}
	p, err := s.request(smppwire.HeaderOnly(smppwire.Unbind, 0, 0), false)
	if err != nil {
		return fmt.Errorf("smppsession: unbind: %w", err)
	}
	f, err := p.Wait(context.Background()) // ResponseTimeout bounds it
	switch {
	case err != nil:
		return fmt.Errorf("smppsession: unbind: %w", err)
	case f.CommandID != smppwire.UnbindResp || f.Status != smppstatus.ESME_ROK:
		return fmt.Errorf("smppsession: unbind answered with %s %s", smppwire.CommandName(f.CommandID), smppstatus.Name(f.Status))
	}
	return nil
}

// waitIdle waits until no request is in flight either way.
func (s *Session) waitIdle(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.inFlight == 0 {
			s.mu.Unlock()
			return nil
		}
		idle := s.idle
		s.mu.Unlock()
		select {
		case <-idle:
		case <-s.closing:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d requests: %w", s.inFlightNow(), ctx.Err())
		}
	}
}

func (s *Session) inFlightNow() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight
}

// addInFlight counts a request taken on (+1) or finished (-1); s.mu is held.
func (s *Session) addInFlight(n int) {
	if s.inFlight == 0 && n > 0 {
		s.idle = make(chan struct{})
	}
	s.inFlight += n
	if s.inFlight == 0 && n < 0 {
		close(s.idle)
	}
}

// Buffer sizes: a session that has not bound reads and writes a few small
// PDUs, so it costs little until the peer has proved who it is.
const (
	unboundBufSize = 512
	boundBufSize   = 32 << 10
)

// readLoop reads and dispatches PDUs until the connection ends or the
// session closes, and returns why it stopped.
func (s *Session) readLoop(ctx context.Context) error {
	r := bufio.NewReaderSize(s.conn, unboundBufSize)
	grown := false
	for {
		if !grown && s.Bound() {
			r, grown = growReader(r, s.conn), true
		}
		maxLen := uint32(smppwire.MaxPDULen)
		if s.cfg.MaxPDUBeforeBind > 0 && !grown {
			maxLen = uint32(s.cfg.MaxPDUBeforeBind)
		}
		f, err := smppwire.ReadFrameMax(r, maxLen)
		if err != nil {
			if errors.Is(err, smppwire.ErrBadLength) {
				// The stream cannot be split into PDUs any more.
				_ = s.send(smppwire.HeaderOnly(smppwire.GenericNack, smppstatus.ESME_RINVCMDLEN, f.Seq))
			}
			return fmt.Errorf("reading: %w", err)
		}
		if s.isClosing() {
			return nil
		}
		s.lastRead.Store(time.Now().UnixNano())
		if s.cfg.OnReceive != nil {
			s.cfg.OnReceive(f)
		}
		switch {
		case f.IsResponse():
			s.receiveResponse(f)
		case f.CommandID == smppwire.EnquireLink:
			_ = s.send(smppwire.HeaderOnly(smppwire.EnquireLinkResp, smppstatus.ESME_ROK, f.Seq))
		case f.CommandID == smppwire.Unbind:
			_ = s.send(smppwire.HeaderOnly(smppwire.UnbindResp, smppstatus.ESME_ROK, f.Seq))
			return ErrPeerUnbound
		case !smppwire.KnownCommand(f.CommandID):
			// SMPP 3.4 §3.3: an unknown command_id gets generic_nack.
			_ = s.send(smppwire.HeaderOnly(smppwire.GenericNack, smppstatus.ESME_RINVCMDID, f.Seq))
		default:
			s.expectAnswer(f)
			s.handler.HandleRequest(ctx, f)
		}
	}
}

// growReader replaces the small reader of an unbound session with one
// sized for traffic, keeping what the small one had read ahead.
func growReader(r *bufio.Reader, conn net.Conn) *bufio.Reader {
	ahead, _ := r.Peek(r.Buffered())
	return bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), conn), boundBufSize)
}

// refuse is the Handler of a session given none: it answers every request
// with generic_nack.
func (s *Session) refuse(_ context.Context, f smppwire.Frame) {
	if smppwire.ExpectsResponse(f.CommandID) {
		_ = s.Respond(smppwire.HeaderOnly(smppwire.GenericNack, smppstatus.ESME_RINVCMDID, f.Seq))
	}
}

// expectAnswer notes a request of the peer's that awaits our answer.
func (s *Session) expectAnswer(f smppwire.Frame) {
	if !smppwire.ExpectsResponse(f.CommandID) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.theirs[f.Seq]++
	s.addInFlight(1)
}

// Respond sends the answer to a request of the peer's: a complete response
// PDU, or generic_nack, with the request's sequence number. It fails with
// ErrClosed once the session is closing.
func (s *Session) Respond(raw []byte) error {
	h, ok := smppwire.HeaderOf(raw)
	if ok && isBindResp(h.CommandID) && h.Status == smppstatus.ESME_ROK {
		s.bound.Store(true)
	}
	err := s.send(raw)
	if ok {
		// Counted as answered only once queued: an Unbind waiting for the
		// session to be idle then queues its unbind behind this answer,
		// never ahead of it.
		s.answered(h.Seq)
	}
	return err
}

// answered notes that a request of the peer's has its answer.
func (s *Session) answered(seq uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.theirs[seq]
	if !ok {
		return
	}
	if n > 1 {
		s.theirs[seq] = n - 1
	} else {
		delete(s.theirs, seq)
	}
	s.addInFlight(-1)
}

func isBindResp(cmd uint32) bool {
	switch cmd {
	case smppwire.BindTransmitterResp, smppwire.BindReceiverResp, smppwire.BindTransceiverResp:
		return true
	}
	return false
}

// send queues a PDU for the writer.
func (s *Session) send(raw []byte) error {
	if s.isClosing() {
		return ErrClosed
	}
	select {
	case s.out <- raw:
		if s.cfg.OnSend != nil {
			s.cfg.OnSend(raw)
		}
		return nil
	case <-s.closing:
		return ErrClosed
	}
}

// writeLoop writes queued PDUs, flushing whenever the queue runs dry. When
// the session closes it writes what is still queued and closes the
// connection; a failed write closes it at once.
//
// The write buffer is made when there is something to write, small until
// the session is bound; between batches it is empty, so it is replaced then.
func (s *Session) writeLoop() {
	defer s.conn.Close()
	var w *bufio.Writer
	for {
		select {
		case raw := <-s.out:
			if err := s.writeBatch(&w, raw); err != nil {
				s.end(fmt.Errorf("writing: %w", err))
				s.Close()
				return
			}
		case <-s.closing:
			_ = s.writeBatch(&w, nil)
			return
		}
	}
}

// writeBatch writes first (when not nil) and whatever else is queued, then flushes.
func (s *Session) writeBatch(wp **bufio.Writer, first []byte) error {
	if first == nil && len(s.out) == 0 {
		return nil
	}
	size := unboundBufSize
	if s.Bound() {
		size = boundBufSize
	}
	if *wp == nil || (*wp).Size() < size {
		*wp = bufio.NewWriterSize(s.conn, size)
	}
	w := *wp
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if first != nil {
		if _, err := w.Write(first); err != nil {
			return err
		}
	}
	for {
		select {
		case raw := <-s.out:
			if _, err := w.Write(raw); err != nil {
				return err
			}
		default:
			return w.Flush()
		}
	}
}
