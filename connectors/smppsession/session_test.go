package smppsession_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smppsession"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
	"github.com/smsgw/smsgw/connectors/smppwire/smppwiretest"
)

// run starts a session over conn for the length of the test.
func run(t *testing.T, conn net.Conn, cfg smppsession.Config, h smppsession.Handler) (*smppsession.Session, <-chan error) {
	t.Helper()
	s := smppsession.New(conn, cfg, h)
	ended := make(chan error, 1)
	go func() { ended <- s.Run(context.Background()) }()
	t.Cleanup(func() {
		s.Close()
		select {
		case <-s.Done():
		case <-time.After(smppwiretest.Wait):
			t.Error("Run did not return after Close")
		}
	})
	return s, ended
}

// pair returns a session and a peer at the other end of its connection.
func pair(t *testing.T, cfg smppsession.Config, h smppsession.Handler) (*smppsession.Session, *smppwiretest.Peer, <-chan error) {
	t.Helper()
	a, b := net.Pipe()
	s, ended := run(t, a, cfg, h)
	// Closed first when the test ends, so that the session's last writes fail at once.
	return s, smppwiretest.NewPeer(t, b), ended
}

// bind makes the session bound, as a server that answered a bind would be.
func bind(t *testing.T, p *smppwiretest.Peer) {
	t.Helper()
	seq := p.Send(smppwire.HeaderOnly(smppwire.BindTransceiver, 0, 0))
	if f := p.Read(); f.CommandID != smppwire.BindTransceiverResp || f.Seq != seq {
		t.Fatalf("bind answered with %+v", f.Header)
	}
}

// unbindAnswered unbinds s at once, the peer answering the unbind.
func unbindAnswered(t *testing.T, s *smppsession.Session, p *smppwiretest.Peer) {
	t.Helper()
	unbound := make(chan error, 1)
	go func() { unbound <- s.Unbind(t.Context()) }()
	f := p.Read()
	if f.CommandID != smppwire.Unbind {
		t.Fatalf("got %+v, want unbind", f.Header)
	}
	p.Write(smppwire.HeaderOnly(smppwire.UnbindResp, 0, f.Seq))
	if err := <-unbound; err != nil {
		t.Fatalf("Unbind: %v", err)
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
	ctx := t.Context()
	first, err := s.Start(ctx, smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Start(ctx, smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	a, b := p.Read(), p.Read()
	if a.Seq != 1 || b.Seq != 2 {
		t.Fatalf("sequence numbers %d, %d; want 1, 2", a.Seq, b.Seq)
	}
	p.Write(smppwire.MessageIDResp(smppwire.SubmitSMResp, 0, b.Seq, "two"))
	p.Write(smppwire.MessageIDResp(smppwire.SubmitSMResp, smppstatus.ESME_RTHROTTLED, a.Seq, ""))
	p.Write(smppwire.MessageIDResp(smppwire.SubmitSMResp, 0, 99, "nobody asked")) // ignored
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
	ctx := t.Context()
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
	f := p.Read()
	p.Read()
	select {
	case err := <-third:
		t.Fatalf("third request answered before there was room: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	p.Write(smppwire.MessageIDResp(smppwire.SubmitSMResp, 0, f.Seq, "1"))
	g := p.Read() // the third, now that there is room
	p.Write(smppwire.MessageIDResp(smppwire.SubmitSMResp, 0, g.Seq, "3"))
	if err := <-third; err != nil {
		t.Fatal(err)
	}
	if s.Outstanding() != 1 || inUse.Load() != 1 {
		t.Errorf("outstanding %d, window hook %d; want 1", s.Outstanding(), inUse.Load())
	}
}

func TestResponseTimeoutFreesTheWindow(t *testing.T) {
	s, _, _ := pair(t, smppsession.Config{Window: 1, ResponseTimeout: 100 * time.Millisecond}, nil)
	start := time.Now()
	if _, err := s.Call(t.Context(), smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0)); !errors.Is(err, smppsession.ErrTimeout) {
		t.Fatalf("Call: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("timed out after %s", d)
	}
	if s.Outstanding() != 0 {
		t.Fatal("a timed-out request kept its room in the window")
	}
	// A request given up by its caller leaves the window too.
	ctx, cancel := context.WithCancel(t.Context())
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
	pending, err := s.Start(t.Context(), smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	p.Read()
	p.Close()
	if _, err := pending.Wait(t.Context()); !errors.Is(err, smppsession.ErrConnectionLost) {
		t.Fatalf("Wait: %v, want ErrConnectionLost", err)
	}
	if err := <-ended; !errors.Is(err, io.EOF) {
		t.Errorf("Run: %v, want the EOF that ended it", err)
	}
	if _, err := s.Start(t.Context(), smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0)); !errors.Is(err, smppsession.ErrClosed) {
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
	seq := p.Send(smppwire.HeaderOnly(smppwire.EnquireLink, 0, 0))
	if f := p.Read(); f.CommandID != smppwire.EnquireLinkResp || f.Status != 0 || f.Seq != seq {
		t.Errorf("enquire_link answered with %+v", f.Header)
	}
	seq = p.Send(smppwire.HeaderOnly(0x00001234, 0, 0))
	if f := p.Read(); f.CommandID != smppwire.GenericNack || f.Status != smppstatus.ESME_RINVCMDID || f.Seq != seq {
		t.Errorf("unknown command answered with %+v", f.Header)
	}
	// Without a Handler, a request SMPP defines is refused too.
	seq = p.Send(smppwire.HeaderOnly(smppwire.QuerySM, 0, 0))
	if f := p.Read(); f.CommandID != smppwire.GenericNack || f.Status != smppstatus.ESME_RINVCMDID || f.Seq != seq {
		t.Errorf("query_sm answered with %+v", f.Header)
	}
	seq = p.Send(smppwire.HeaderOnly(smppwire.Unbind, 0, 0))
	if f := p.Read(); f.CommandID != smppwire.UnbindResp || f.Seq != seq {
		t.Errorf("unbind answered with %+v", f.Header)
	}
	p.ExpectClosed()
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
		p.Write(raw)
		if f := p.Read(); f.CommandID != smppwire.GenericNack || f.Status != smppstatus.ESME_RINVCMDLEN || f.Seq != 7 {
			t.Errorf("length %d answered with %+v", length, f.Header)
		}
		p.ExpectClosed()
		if err := <-ended; !errors.Is(err, smppwire.ErrBadLength) {
			t.Errorf("length %d: Run: %v", length, err)
		}
	}
}

// Before the bind only small PDUs are read: a long command_length is
// refused before anything is allocated for it. After the bind the session
// reads PDUs of any valid length, and a PDU that arrived together with the
// bind (read ahead into the small buffer) is not lost.
func TestMaxPDUBeforeBind(t *testing.T) {
	cfg := smppsession.Config{MaxPDUBeforeBind: 64}
	_, p, ended := pair(t, cfg, nil)
	big := smppwire.MessageIDResp(smppwire.EnquireLink, 0, 3, string(make([]byte, 100)))
	p.Write(big)
	if f := p.Read(); f.CommandID != smppwire.GenericNack || f.Status != smppstatus.ESME_RINVCMDLEN || f.Seq != 3 {
		t.Fatalf("a %d-octet PDU before the bind answered with %+v", len(big), f.Header)
	}
	p.ExpectClosed()
	if err := <-ended; !errors.Is(err, smppwire.ErrBadLength) {
		t.Fatalf("Run: %v", err)
	}

	var s *smppsession.Session
	var got atomic.Int32
	a, b := net.Pipe()
	s, _ = run(t, a, cfg, binder(&s, func(req smppwire.Frame) []byte {
		got.Store(int32(len(req.Raw)))
		return smppwire.MessageIDResp(smppwire.SubmitSMResp, 0, req.Seq, "ok")
	}))
	p = smppwiretest.NewPeer(t, b)
	large := smppwire.MessageIDResp(smppwire.SubmitSM, 0, 2, string(make([]byte, 40<<10)))
	// The bind and the large PDU in one write: the small reader holds the
	// large one's first octets when the session binds. (A pipe's write
	// waits for the reader, and the session answers the bind meanwhile.)
	go func() { _, _ = b.Write(append(smppwire.HeaderOnly(smppwire.BindTransceiver, 0, 1), large...)) }()
	if f := p.Read(); f.CommandID != smppwire.BindTransceiverResp || f.Seq != 1 {
		t.Fatalf("bind answered with %+v", f.Header)
	}
	if f := p.Read(); f.CommandID != smppwire.SubmitSMResp || f.Seq != 2 || int(got.Load()) != len(large) {
		t.Fatalf("a %d-octet PDU after the bind: answered %+v, handler saw %d octets", len(large), f.Header, got.Load())
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
	bind(t, p)
	if !s.Bound() {
		t.Fatal("not bound after answering a bind with ESME_ROK")
	}
	theirs := p.Send(smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0))
	ours, err := s.Start(t.Context(), smppwire.HeaderOnly(smppwire.DeliverSM, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	deliver := p.Read()

	unbound := make(chan error, 1)
	go func() { unbound <- s.Unbind(t.Context()) }()
	time.Sleep(50 * time.Millisecond)
	if _, err := s.Start(t.Context(), smppwire.HeaderOnly(smppwire.DeliverSM, 0, 0)); !errors.Is(err, smppsession.ErrClosed) {
		t.Errorf("Start while unbinding: %v, want ErrClosed", err)
	}
	// Still owed: the answer to the submit_sm, and the deliver_sm_resp.
	close(release)
	if f := p.Read(); f.CommandID != smppwire.SubmitSMResp || f.Seq != theirs {
		t.Fatalf("got %+v before the unbind, want the submit_sm_resp", f.Header)
	}
	p.Write(smppwire.MessageIDResp(smppwire.DeliverSMResp, 0, deliver.Seq, ""))
	if f, err := ours.Wait(t.Context()); err != nil || f.CommandID != smppwire.DeliverSMResp {
		t.Fatalf("deliver_sm: %+v %v", f.Header, err)
	}
	f := p.Read()
	if f.CommandID != smppwire.Unbind {
		t.Fatalf("got %+v, want unbind", f.Header)
	}
	p.Write(smppwire.HeaderOnly(smppwire.UnbindResp, 0, f.Seq))
	if err := <-unbound; err != nil {
		t.Fatalf("Unbind: %v", err)
	}
	p.ExpectClosed()
	if err := <-ended; err != nil {
		t.Errorf("Run after our unbind: %v", err)
	}
}

func TestRunUnbindsWhenItsContextEnds(t *testing.T) {
	a, b := net.Pipe()
	var s *smppsession.Session
	s = smppsession.New(a, smppsession.Config{}, binder(&s, func(smppwire.Frame) []byte { return nil }))
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() { ended <- s.Run(ctx) }()
	p := smppwiretest.NewPeer(t, b)
	bind(t, p)
	cancel()
	f := p.Read()
	if f.CommandID != smppwire.Unbind {
		t.Fatalf("got %+v, want unbind", f.Header)
	}
	p.Write(smppwire.HeaderOnly(smppwire.UnbindResp, 0, f.Seq))
	p.ExpectClosed()
	if err := <-ended; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestUnbindOfAnUnboundSessionJustCloses(t *testing.T) {
	s, p, _ := pair(t, smppsession.Config{}, nil)
	if err := s.Unbind(t.Context()); err != nil {
		t.Fatal(err)
	}
	p.ExpectClosed()
	if err := s.Unbind(t.Context()); !errors.Is(err, smppsession.ErrClosed) {
		t.Errorf("second Unbind: %v, want ErrClosed", err)
	}
}

// A request that takes no answer (alert_notification) is not waited for.
func TestAlertNotificationIsNotAwaited(t *testing.T) {
	var s *smppsession.Session
	s, p, _ := pair(t, smppsession.Config{}, binder(&s, func(smppwire.Frame) []byte { return nil }))
	bind(t, p)
	p.Send(smppwire.HeaderOnly(smppwire.AlertNotification, 0, 0))
	unbindAnswered(t, s, p)
}

func TestCloseWritesWhatIsQueued(t *testing.T) {
	var s *smppsession.Session
	s, p, ended := pair(t, smppsession.Config{}, binder(&s, func(req smppwire.Frame) []byte {
		_ = s.Respond(smppwire.HeaderOnly(req.CommandID|smppwire.ResponseBit, smppstatus.ESME_RBINDFAIL, req.Seq))
		s.Close()
		return nil
	}))
	seq := p.Send(smppwire.HeaderOnly(smppwire.BindTransmitter, 0, 0))
	p.Send(smppwire.HeaderOnly(smppwire.EnquireLink, 0, 0)) // never read: the session closed first
	if f := p.Read(); f.CommandID != smppwire.BindTransmitterResp || f.Status != smppstatus.ESME_RBINDFAIL || f.Seq != seq {
		t.Fatalf("got %+v", f.Header)
	}
	p.ExpectClosed()
	if err := <-ended; err != nil {
		t.Errorf("Run after Close: %v", err)
	}
}

func TestEnquireLinkOnSilence(t *testing.T) {
	cfg := smppsession.Config{EnquireLink: 100 * time.Millisecond, ResponseTimeout: 50 * time.Millisecond, MissedEnquireLinks: 2}

	// A peer that answers enquire_link keeps the session however quiet it is.
	var s *smppsession.Session
	s, alive, _ := pair(t, cfg, binder(&s, func(smppwire.Frame) []byte { return nil }))
	bind(t, alive)
	deadline := time.Now().Add(500 * time.Millisecond)
	probes := 0
	for time.Now().Before(deadline) {
		f := alive.Read()
		if f.CommandID != smppwire.EnquireLink {
			t.Fatalf("got %+v, want enquire_link", f.Header)
		}
		probes++
		alive.Write(smppwire.HeaderOnly(smppwire.EnquireLinkResp, 0, f.Seq))
	}
	if probes < 3 || probes > 6 {
		t.Errorf("%d enquire_link in 500ms at one per 100ms of silence", probes)
	}

	// One that answers nothing gets two, then unbind, then the connection ends.
	var s2 *smppsession.Session
	s2, silent, ended := pair(t, cfg, binder(&s2, func(smppwire.Frame) []byte { return nil }))
	bind(t, silent)
	cmds := silent.ReadAll()
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
	p.ExpectQuiet(200 * time.Millisecond)
}

// The client side: bound by the peer's answer to our bind.
func TestBoundByTheAnswerToOurBind(t *testing.T) {
	s, p, _ := pair(t, smppsession.Config{}, nil)
	done := make(chan error, 1)
	go func() {
		f, err := s.Call(t.Context(), smppwire.HeaderOnly(smppwire.BindReceiver, 0, 0))
		if err == nil && f.Status != 0 {
			err = errors.New(smppstatus.Name(f.Status))
		}
		done <- err
	}()
	f := p.Read()
	p.Write(smppwire.MessageIDResp(smppwire.BindReceiverResp, 0, f.Seq, "smsc"))
	if err := <-done; err != nil || !s.Bound() {
		t.Fatalf("bind: %v, bound %v", err, s.Bound())
	}
}

func TestSequenceNumbersArePerSession(t *testing.T) {
	for range 2 {
		s, p, _ := pair(t, smppsession.Config{}, nil)
		if _, err := s.Start(t.Context(), smppwire.HeaderOnly(smppwire.EnquireLink, 0, 0)); err != nil {
			t.Fatal(err)
		}
		if f := p.Read(); f.Seq != 1 {
			t.Errorf("a new session's first request has sequence number %d", f.Seq)
		}
	}
}

func TestGenericNackAnswersARequest(t *testing.T) {
	s, p, _ := pair(t, smppsession.Config{}, nil)
	pending, err := s.Start(t.Context(), smppwire.HeaderOnly(smppwire.QuerySM, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	p.Write(smppwire.HeaderOnly(smppwire.GenericNack, smppstatus.ESME_RINVCMDID, p.Read().Seq))
	if f, err := pending.Wait(t.Context()); err != nil || f.CommandID != smppwire.GenericNack || f.Status != smppstatus.ESME_RINVCMDID {
		t.Fatalf("Wait: %+v %v", f.Header, err)
	}
}

// A peer that repeats a sequence number gets each request answered, and
// the drain counts both.
func TestRepeatedSequenceNumbers(t *testing.T) {
	var s *smppsession.Session
	s, p, _ := pair(t, smppsession.Config{}, binder(&s, func(req smppwire.Frame) []byte {
		return smppwire.MessageIDResp(smppwire.SubmitSMResp, 0, req.Seq, "")
	}))
	bind(t, p)
	twice := smppwire.HeaderOnly(smppwire.SubmitSM, 0, 42)
	p.Write(twice)
	p.Write(twice)
	for range 2 {
		if f := p.Read(); f.CommandID != smppwire.SubmitSMResp || f.Seq != 42 {
			t.Fatalf("got %+v", f.Header)
		}
	}
	unbindAnswered(t, s, p)
}
