package smppsession_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smppsession"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// wait bounds every wait in these tests.
const wait = 10 * time.Second

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func logger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// run starts a session over conn for the length of the test.
func run(t *testing.T, conn net.Conn, cfg smppsession.Config, h smppsession.Handler) (*smppsession.Session, <-chan error) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = logger(t)
	}
	s := smppsession.New(conn, cfg, h)
	ended := make(chan error, 1)
	go func() { ended <- s.Run(context.Background()) }()
	t.Cleanup(func() {
		s.Close()
		select {
		case <-s.Done():
		case <-time.After(wait):
			t.Error("Run did not return after Close")
		}
	})
	return s, ended
}

// peer is the other end of a session, speaking PDUs one by one.
type peer struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	seq  uint32
}

// pair returns a session and the peer at the other end of its connection.
func pair(t *testing.T, cfg smppsession.Config, h smppsession.Handler) (*smppsession.Session, *peer, <-chan error) {
	t.Helper()
	a, b := net.Pipe()
	s, ended := run(t, a, cfg, h)
	t.Cleanup(func() { b.Close() }) // first, so that the session's last writes fail at once
	return s, &peer{t: t, conn: b, r: bufio.NewReader(b)}, ended
}

// send writes a PDU with the peer's next sequence number and returns it.
func (p *peer) send(raw []byte) uint32 {
	p.t.Helper()
	p.seq++
	smppwire.SetSeq(raw, p.seq)
	p.write(raw)
	return p.seq
}

func (p *peer) write(raw []byte) {
	p.t.Helper()
	_ = p.conn.SetWriteDeadline(time.Now().Add(wait))
	if _, err := p.conn.Write(raw); err != nil {
		p.t.Fatalf("peer writing: %v", err)
	}
}

func (p *peer) read() smppwire.Frame {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(wait))
	f, err := smppwire.ReadFrame(p.r)
	if err != nil {
		p.t.Fatalf("peer reading: %v", err)
	}
	return f
}

// expectClosed checks that the session closes the connection without sending more.
func (p *peer) expectClosed() {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(wait))
	if f, err := smppwire.ReadFrame(p.r); !errors.Is(err, io.EOF) {
		p.t.Fatalf("got %+v, %v; want the connection closed", f.Header, err)
	}
}

// bind makes the session bound, as a server that answered a bind would be.
func (p *peer) bind() {
	p.t.Helper()
	seq := p.send(smppwire.HeaderOnly(smppwire.BindTransceiver, 0, 0))
	if f := p.read(); f.CommandID != smppwire.BindTransceiverResp || f.Seq != seq {
		p.t.Fatalf("bind answered with %+v", f.Header)
	}
}

// binder answers binds with ESME_ROK and everything else with what answer says.
func binder(s **smppsession.Session, answer func(req smppwire.Frame) []byte) smppsession.Handler {
	return smppsession.HandlerFunc(func(ctx context.Context, req smppwire.Frame) {
		switch req.CommandID {
		case smppwire.BindTransceiver:
			_ = (*s).Respond(smppwire.MessageIDResp(smppwire.BindTransceiverResp, 0, req.Seq, "test"))
		default:
			if raw := answer(req); raw != nil {
				_ = (*s).Respond(raw)
			}
		}
	})
}

func TestCallsMatchResponsesOutOfOrder(t *testing.T) {
	s, p, _ := pair(t, smppsession.Config{}, nil)
	ctx := ctxT(t)
	first, err := s.Start(ctx, smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Start(ctx, smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	a, b := p.read(), p.read()
	if a.Seq != 1 || b.Seq != 2 {
		t.Fatalf("sequence numbers %d, %d; want 1, 2", a.Seq, b.Seq)
	}
	p.write(smppwire.MessageIDResp(smppwire.SubmitSMResp, 0, b.Seq, "two"))
	p.write(smppwire.MessageIDResp(smppwire.SubmitSMResp, smppstatus.ESME_RTHROTTLED, a.Seq, ""))
	p.write(smppwire.MessageIDResp(smppwire.SubmitSMResp, 0, 99, "nobody asked")) // ignored
	if f, err := second.Wait(ctx); err != nil || string(f.Body()) != "two\x00" {
		t.Errorf("second: %+v %q %v", f.Header, f.Body(), err)
	}
	if f, err := first.Wait(ctx); err != nil || f.Status != smppstatus.ESME_RTHROTTLED {
		t.Errorf("first: %+v %v", f.Header, err)
	}
	if s.Outstanding() != 0 {
		t.Errorf("%d outstanding after both responses", s.Outstanding())
	}
}

func TestWindow(t *testing.T) {
	var inUse atomic.Int32
	s, p, _ := pair(t, smppsession.Config{Window: 2, OnWindow: func(d int) { inUse.Add(int32(d)) }}, nil)
	ctx := ctxT(t)
	for range 2 {
		if _, err := s.Start(ctx, smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if s.Outstanding() != 2 || inUse.Load() != 2 {
		t.Fatalf("outstanding %d, window hook %d; want 2", s.Outstanding(), inUse.Load())
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.Start(short, smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third Start with a full window: %v, want the context's deadline", err)
	}
	third := make(chan error, 1)
	go func() { _, err := s.Call(ctx, smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0)); third <- err }()
	f := p.read()
	p.read()
	select {
	case err := <-third:
		t.Fatalf("third request answered before there was room: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	p.write(smppwire.MessageIDResp(smppwire.SubmitSMResp, 0, f.Seq, "1"))
	g := p.read() // the third, now that there is room
	p.write(smppwire.MessageIDResp(smppwire.SubmitSMResp, 0, g.Seq, "3"))
	if err := <-third; err != nil {
		t.Fatal(err)
	}
	if s.Outstanding() != 1 || inUse.Load() != 1 {
		t.Errorf("outstanding %d, window hook %d; want 1", s.Outstanding(), inUse.Load())
	}
}

func TestResponseTimeoutFreesTheWindow(t *testing.T) {
	s, p, _ := pair(t, smppsession.Config{Window: 1, ResponseTimeout: 100 * time.Millisecond}, nil)
	go func() { _, _ = io.Copy(io.Discard, p.conn) }()
	start := time.Now()
	if _, err := s.Call(ctxT(t), smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0)); !errors.Is(err, smppsession.ErrTimeout) {
		t.Fatalf("Call: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("timed out after %s", d)
	}
	if s.Outstanding() != 0 {
		t.Fatal("a timed-out request kept its room in the window")
	}
	// A request given up by its caller leaves the window too.
	ctx, cancel := context.WithCancel(ctxT(t))
	pending, err := s.Start(ctx, smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := pending.Wait(ctx); !errors.Is(err, context.Canceled) || s.Outstanding() != 0 {
		t.Fatalf("Wait: %v with %d outstanding", err, s.Outstanding())
	}
}

func TestConnectionLost(t *testing.T) {
	s, p, ended := pair(t, smppsession.Config{}, nil)
	pending, err := s.Start(ctxT(t), smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	p.read()
	p.conn.Close()
	if _, err := pending.Wait(ctxT(t)); !errors.Is(err, smppsession.ErrConnectionLost) {
		t.Fatalf("Wait: %v, want ErrConnectionLost", err)
	}
	if err := <-ended; !errors.Is(err, io.EOF) {
		t.Errorf("Run: %v, want the EOF that ended it", err)
	}
	if _, err := s.Start(ctxT(t), smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0)); !errors.Is(err, smppsession.ErrClosed) {
		t.Errorf("Start after the end: %v, want ErrClosed", err)
	}
	if err := s.Respond(smppwire.HeaderOnly(smppwire.DeliverSMResp, 0, 1)); !errors.Is(err, smppsession.ErrClosed) {
		t.Errorf("Respond after the end: %v, want ErrClosed", err)
	}
}

func TestTheSessionAnswersEnquireLinkUnknownCommandsAndUnbind(t *testing.T) {
	var seen []uint32
	var mu sync.Mutex
	s, p, ended := pair(t, smppsession.Config{OnReceive: func(f smppwire.Frame) {
		mu.Lock()
		seen = append(seen, f.CommandID)
		mu.Unlock()
	}}, nil)
	seq := p.send(smppwire.HeaderOnly(smppwire.EnquireLink, 0, 0))
	if f := p.read(); f.CommandID != smppwire.EnquireLinkResp || f.Status != 0 || f.Seq != seq {
		t.Errorf("enquire_link answered with %+v", f.Header)
	}
	seq = p.send(smppwire.HeaderOnly(0x00001234, 0, 0))
	if f := p.read(); f.CommandID != smppwire.GenericNack || f.Status != smppstatus.ESME_RINVCMDID || f.Seq != seq {
		t.Errorf("unknown command answered with %+v", f.Header)
	}
	// Without a Handler, a request SMPP defines is refused too.
	seq = p.send(smppwire.HeaderOnly(smppwire.QuerySM, 0, 0))
	if f := p.read(); f.CommandID != smppwire.GenericNack || f.Status != smppstatus.ESME_RINVCMDID || f.Seq != seq {
		t.Errorf("query_sm answered with %+v", f.Header)
	}
	seq = p.send(smppwire.HeaderOnly(smppwire.Unbind, 0, 0))
	if f := p.read(); f.CommandID != smppwire.UnbindResp || f.Seq != seq {
		t.Errorf("unbind answered with %+v", f.Header)
	}
	p.expectClosed()
	if err := <-ended; !errors.Is(err, smppsession.ErrPeerUnbound) || !errors.Is(s.Err(), smppsession.ErrPeerUnbound) {
		t.Errorf("Run: %v, want ErrPeerUnbound", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 4 || seen[3] != smppwire.Unbind {
		t.Errorf("OnReceive saw %x", seen)
	}
}

func TestBadCommandLengthClosesAfterGenericNack(t *testing.T) {
	for _, length := range []uint32{0, 15, smppwire.MaxPDULen + 1} {
		_, p, ended := pair(t, smppsession.Config{}, nil)
		raw := smppwire.HeaderOnly(smppwire.EnquireLink, 0, 7)
		binary.BigEndian.PutUint32(raw, length)
		p.write(raw)
		if f := p.read(); f.CommandID != smppwire.GenericNack || f.Status != smppstatus.ESME_RINVCMDLEN || f.Seq != 7 {
			t.Errorf("length %d answered with %+v", length, f.Header)
		}
		p.expectClosed()
		if err := <-ended; !errors.Is(err, smppwire.ErrBadLength) {
			t.Errorf("length %d: Run: %v", length, err)
		}
	}
}

// A Handler answers from another goroutine, and Unbind waits for the
// answers owed and the responses awaited before it unbinds.
func TestUnbindDrainsBothWindows(t *testing.T) {
	release := make(chan struct{})
	var s *smppsession.Session
	s, p, ended := pair(t, smppsession.Config{}, binder(&s, func(req smppwire.Frame) []byte {
		go func() {
			<-release
			_ = s.Respond(smppwire.MessageIDResp(smppwire.SubmitSMResp, 0, req.Seq, "late"))
		}()
		return nil
	}))
	p.bind()
	if !s.Bound() {
		t.Fatal("not bound after answering a bind with ESME_ROK")
	}
	theirs := p.send(smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0))
	ours, err := s.Start(ctxT(t), smppwire.HeaderOnly(smppwire.DeliverSM, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	deliver := p.read()

	unbound := make(chan error, 1)
	go func() { unbound <- s.Unbind(ctxT(t)) }()
	time.Sleep(50 * time.Millisecond)
	if _, err := s.Start(ctxT(t), smppwire.HeaderOnly(smppwire.DeliverSM, 0, 0)); !errors.Is(err, smppsession.ErrClosed) {
		t.Errorf("Start while unbinding: %v, want ErrClosed", err)
	}
	// Still owed: the answer to the submit_sm, and the deliver_sm_resp.
	close(release)
	if f := p.read(); f.CommandID != smppwire.SubmitSMResp || f.Seq != theirs {
		t.Fatalf("got %+v before the unbind, want the submit_sm_resp", f.Header)
	}
	p.write(smppwire.MessageIDResp(smppwire.DeliverSMResp, 0, deliver.Seq, ""))
	if f, err := ours.Wait(ctxT(t)); err != nil || f.CommandID != smppwire.DeliverSMResp {
		t.Fatalf("deliver_sm: %+v %v", f.Header, err)
	}
	f := p.read()
	if f.CommandID != smppwire.Unbind {
		t.Fatalf("got %+v, want unbind", f.Header)
	}
	p.write(smppwire.HeaderOnly(smppwire.UnbindResp, 0, f.Seq))
	if err := <-unbound; err != nil {
		t.Fatalf("Unbind: %v", err)
	}
	p.expectClosed()
	if err := <-ended; err != nil {
		t.Errorf("Run after our unbind: %v", err)
	}
}

func TestRunUnbindsWhenItsContextEnds(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	var s *smppsession.Session
	s = smppsession.New(a, smppsession.Config{Logger: logger(t)}, binder(&s, func(smppwire.Frame) []byte { return nil }))
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() { ended <- s.Run(ctx) }()
	p := &peer{t: t, conn: b, r: bufio.NewReader(b)}
	p.bind()
	cancel()
	f := p.read()
	if f.CommandID != smppwire.Unbind {
		t.Fatalf("got %+v, want unbind", f.Header)
	}
	p.write(smppwire.HeaderOnly(smppwire.UnbindResp, 0, f.Seq))
	p.expectClosed()
	if err := <-ended; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestUnbindOfAnUnboundSessionJustCloses(t *testing.T) {
	s, p, _ := pair(t, smppsession.Config{}, nil)
	if err := s.Unbind(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	p.expectClosed()
	if err := s.Unbind(ctxT(t)); !errors.Is(err, smppsession.ErrClosed) {
		t.Errorf("second Unbind: %v, want ErrClosed", err)
	}
}

// A request that takes no answer (alert_notification) is not waited for.
func TestAlertNotificationIsNotAwaited(t *testing.T) {
	var s *smppsession.Session
	s, p, _ := pair(t, smppsession.Config{}, binder(&s, func(smppwire.Frame) []byte { return nil }))
	p.bind()
	p.send(smppwire.HeaderOnly(smppwire.AlertNotification, 0, 0))
	unbound := make(chan error, 1)
	go func() { unbound <- s.Unbind(ctxT(t)) }()
	f := p.read()
	if f.CommandID != smppwire.Unbind {
		t.Fatalf("got %+v, want unbind", f.Header)
	}
	p.write(smppwire.HeaderOnly(smppwire.UnbindResp, 0, f.Seq))
	if err := <-unbound; err != nil {
		t.Fatal(err)
	}
}

func TestCloseWritesWhatIsQueued(t *testing.T) {
	var s *smppsession.Session
	s, p, ended := pair(t, smppsession.Config{}, binder(&s, func(req smppwire.Frame) []byte {
		_ = s.Respond(smppwire.HeaderOnly(req.CommandID|smppwire.ResponseBit, smppstatus.ESME_RBINDFAIL, req.Seq))
		s.Close()
		return nil
	}))
	seq := p.send(smppwire.HeaderOnly(smppwire.BindTransmitter, 0, 0))
	p.send(smppwire.HeaderOnly(smppwire.EnquireLink, 0, 0)) // never read: the session closed first
	if f := p.read(); f.CommandID != smppwire.BindTransmitterResp || f.Status != smppstatus.ESME_RBINDFAIL || f.Seq != seq {
		t.Fatalf("got %+v", f.Header)
	}
	p.expectClosed()
	if err := <-ended; err != nil {
		t.Errorf("Run after Close: %v", err)
	}
}

func TestEnquireLinkOnSilence(t *testing.T) {
	cfg := smppsession.Config{EnquireLink: 100 * time.Millisecond, ResponseTimeout: 50 * time.Millisecond, MissedEnquireLinks: 2}

	// A peer that answers enquire_link keeps the session however quiet it is.
	var s *smppsession.Session
	s, alive, _ := pair(t, cfg, binder(&s, func(smppwire.Frame) []byte { return nil }))
	alive.bind()
	deadline := time.Now().Add(500 * time.Millisecond)
	probes := 0
	for time.Now().Before(deadline) {
		f := alive.read()
		if f.CommandID != smppwire.EnquireLink {
			t.Fatalf("got %+v, want enquire_link", f.Header)
		}
		probes++
		alive.write(smppwire.HeaderOnly(smppwire.EnquireLinkResp, 0, f.Seq))
	}
	if probes < 3 || probes > 6 {
		t.Errorf("%d enquire_link in 500ms at one per 100ms of silence", probes)
	}

	// One that answers nothing gets two, then unbind, then the connection ends.
	var s2 *smppsession.Session
	s2, silent, ended := pair(t, cfg, binder(&s2, func(smppwire.Frame) []byte { return nil }))
	silent.bind()
	var cmds []uint32
	for {
		_ = silent.conn.SetReadDeadline(time.Now().Add(wait))
		f, err := smppwire.ReadFrame(silent.r)
		if err != nil {
			break
		}
		cmds = append(cmds, f.CommandID)
	}
	if len(cmds) != 3 || cmds[0] != smppwire.EnquireLink || cmds[1] != smppwire.EnquireLink || cmds[2] != smppwire.Unbind {
		t.Errorf("the silent peer got %x, want two enquire_link and unbind", cmds)
	}
	if err := <-ended; !errors.Is(err, smppsession.ErrPeerSilent) {
		t.Errorf("Run: %v, want ErrPeerSilent", err)
	}
}

// An unbound session sends no enquire_link.
func TestNoEnquireLinkBeforeTheBind(t *testing.T) {
	_, p, _ := pair(t, smppsession.Config{EnquireLink: 20 * time.Millisecond, ResponseTimeout: 20 * time.Millisecond}, nil)
	_ = p.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if f, err := smppwire.ReadFrame(p.r); err == nil {
		t.Fatalf("an unbound session sent %+v", f.Header)
	}
}

// The client side: bound by the peer's answer to our bind.
func TestBoundByTheAnswerToOurBind(t *testing.T) {
	s, p, _ := pair(t, smppsession.Config{}, nil)
	done := make(chan error, 1)
	go func() {
		f, err := s.Call(ctxT(t), smppwire.HeaderOnly(smppwire.BindReceiver, 0, 0))
		if err == nil && f.Status != 0 {
			err = errors.New(smppstatus.Name(f.Status))
		}
		done <- err
	}()
	f := p.read()
	p.write(smppwire.MessageIDResp(smppwire.BindReceiverResp, 0, f.Seq, "smsc"))
	if err := <-done; err != nil || !s.Bound() {
		t.Fatalf("bind: %v, bound %v", err, s.Bound())
	}
}

func TestSequenceNumbersArePerSession(t *testing.T) {
	for range 2 {
		s, p, _ := pair(t, smppsession.Config{}, nil)
		if _, err := s.Start(ctxT(t), smppwire.HeaderOnly(smppwire.EnquireLink, 0, 0)); err != nil {
			t.Fatal(err)
		}
		if f := p.read(); f.Seq != 1 {
			t.Errorf("a new session's first request has sequence number %d", f.Seq)
		}
	}
}
