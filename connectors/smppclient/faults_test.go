package smppclient_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smppclient"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// faultySMSC is a bare SMPP server for faults the simulator does not model:
// it accepts every bind, answers unbind, and passes every other PDU to
// answer, which may say nothing at all.
type faultySMSC struct {
	answer func(conn net.Conn, f smppwire.Frame)

	mu    sync.Mutex
	seen  []uint32 // command IDs received, in order
	binds int
}

func startFaultySMSC(t *testing.T, answer func(conn net.Conn, f smppwire.Frame)) (*faultySMSC, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &faultySMSC{answer: answer}
	var conns sync.WaitGroup
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer conn.Close()
				s.serve(conn)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); conns.Wait() })
	return s, ln.Addr().String()
}

func (s *faultySMSC) serve(conn net.Conn) {
	r := bufio.NewReader(conn)
	for {
		f, err := smppwire.ReadFrame(r)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.seen = append(s.seen, f.CommandID)
		s.mu.Unlock()
		switch f.CommandID {
		case smppwire.BindTransceiver:
			s.mu.Lock()
			s.binds++
			s.mu.Unlock()
			_, _ = conn.Write(smppwire.MessageIDResp(smppwire.BindTransceiverResp, 0, f.Seq, "faulty"))
		case smppwire.Unbind:
			_, _ = conn.Write(smppwire.HeaderOnly(smppwire.UnbindResp, 0, f.Seq))
			return
		case smppwire.UnbindResp:
			return
		default:
			if s.answer != nil {
				s.answer(conn, f)
			}
		}
	}
}

func (s *faultySMSC) count(cmd uint32) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.seen {
		if c == cmd {
			n++
		}
	}
	return n
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestResponseTimeoutIsInDoubt(t *testing.T) {
	_, addr := startFaultySMSC(t, nil) // never answers submit_sm
	c, reg := startClient(t, smppclient.Config{Addr: addr, ResponseTimeout: 200 * time.Millisecond}, newRecorder())
	start := time.Now()
	_, err := c.Submit(ctxT(t), part("61412345678"))
	if !errors.Is(err, smppclient.ErrResponseTimeout) || !errors.Is(err, smppclient.ErrInDoubt) {
		t.Fatalf("Submit: %v, want ErrResponseTimeout", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("Submit gave up after %s, want about 200ms", d)
	}
	if got := metricValue(t, reg, "smsgw_upstream_submits_total", "status", "in_doubt"); got != 1 {
		t.Errorf("submits{in_doubt} = %v", got)
	}
}

func TestConnectionLostIsInDoubt(t *testing.T) {
	_, addr := startFaultySMSC(t, func(conn net.Conn, f smppwire.Frame) {
		if f.CommandID == smppwire.SubmitSM {
			conn.Close()
		}
	})
	c, _ := startClient(t, smppclient.Config{Addr: addr}, newRecorder())
	_, err := c.Submit(ctxT(t), part("61412345678"))
	if !errors.Is(err, smppclient.ErrConnectionLost) || !errors.Is(err, smppclient.ErrInDoubt) {
		t.Fatalf("Submit: %v, want ErrConnectionLost", err)
	}
}

func TestContextEndWhileWaitingIsInDoubt(t *testing.T) {
	_, addr := startFaultySMSC(t, nil)
	c, _ := startClient(t, smppclient.Config{Addr: addr}, newRecorder())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Submit(ctx, part("61412345678"))
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, smppclient.ErrInDoubt) {
		t.Fatalf("Submit: %v, want the deadline and ErrInDoubt", err)
	}
}

func TestWindowLimitsOutstandingSubmits(t *testing.T) {
	smsc, addr := startFaultySMSC(t, nil)
	c, reg := startClient(t, smppclient.Config{Addr: addr, WindowSize: 2, ResponseTimeout: 700 * time.Millisecond}, newRecorder())
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := c.Submit(ctxT(t), part("61412345678"))
			errs <- err
		}()
	}
	waitUntil(t, "two submit_sm", func() bool { return smsc.count(smppwire.SubmitSM) == 2 })
	if got := metricValue(t, reg, "smsgw_connector_window_in_use", "", ""); got != 2 {
		t.Errorf("window in use = %v, want 2", got)
	}
	time.Sleep(300 * time.Millisecond)
	if n := smsc.count(smppwire.SubmitSM); n != 2 {
		t.Fatalf("%d submit_sm outstanding with a window of 2", n)
	}
	// The first two time out and free the window for the third.
	waitUntil(t, "the third submit_sm", func() bool { return smsc.count(smppwire.SubmitSM) == 3 })
	for range 3 {
		if err := <-errs; !errors.Is(err, smppclient.ErrResponseTimeout) {
			t.Errorf("Submit: %v, want ErrResponseTimeout", err)
		}
	}
	if got := metricValue(t, reg, "smsgw_connector_window_in_use", "", ""); got != 0 {
		t.Errorf("window in use = %v after all responses, want 0", got)
	}
}

func TestGenericNackRefusesSubmit(t *testing.T) {
	_, addr := startFaultySMSC(t, func(conn net.Conn, f smppwire.Frame) {
		if f.CommandID == smppwire.SubmitSM {
			_, _ = conn.Write(smppwire.HeaderOnly(smppwire.GenericNack, smppstatus.ESME_RINVCMDID, f.Seq))
		}
	})
	c, _ := startClient(t, smppclient.Config{Addr: addr}, newRecorder())
	_, err := c.Submit(ctxT(t), part("61412345678"))
	var se *smppclient.SubmitError
	if !errors.As(err, &se) || se.Status != smppstatus.ESME_RINVCMDID || se.Retryable {
		t.Fatalf("Submit: %v, want a permanent SubmitError", err)
	}
}

func TestSubmitRespWithoutMessageID(t *testing.T) {
	_, addr := startFaultySMSC(t, func(conn net.Conn, f smppwire.Frame) {
		if f.CommandID == smppwire.SubmitSM {
			_, _ = conn.Write(smppwire.HeaderOnly(smppwire.SubmitSMResp, 0, f.Seq))
		}
	})
	c, _ := startClient(t, smppclient.Config{Addr: addr}, newRecorder())
	id, err := c.Submit(ctxT(t), part("61412345678"))
	if err != nil || id != "" {
		t.Fatalf("Submit = %q, %v; want an accepted part without ID", id, err)
	}
}

func TestShutdownUnbinds(t *testing.T) {
	smsc, addr := startFaultySMSC(t, nil)
	c, err := smppclient.New(smppclient.Config{ID: "sim", Addr: addr, SystemID: "smsgw"}, newRecorder(), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	if err := c.WaitBound(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Run did not return")
	}
	if n := smsc.count(smppwire.Unbind); n != 1 {
		t.Errorf("the SMSC saw %d unbind, want 1", n)
	}
	if c.Bound() {
		t.Error("still bound after Run returned")
	}
}

func TestUnansweredEnquireLinkRebinds(t *testing.T) {
	smsc, addr := startFaultySMSC(t, nil) // never answers enquire_link
	startClient(t, smppclient.Config{Addr: addr, EnquireLink: 50 * time.Millisecond, ResponseTimeout: 100 * time.Millisecond}, newRecorder())
	waitUntil(t, "a second bind", func() bool {
		smsc.mu.Lock()
		defer smsc.mu.Unlock()
		return smsc.binds >= 2
	})
}

func TestSMSCUnbindRebinds(t *testing.T) {
	var once sync.Once
	smsc, addr := startFaultySMSC(t, func(conn net.Conn, f smppwire.Frame) {
		if f.CommandID == smppwire.EnquireLink {
			_, _ = conn.Write(smppwire.HeaderOnly(smppwire.EnquireLinkResp, 0, f.Seq))
			once.Do(func() { _, _ = conn.Write(smppwire.HeaderOnly(smppwire.Unbind, 0, 77)) })
		}
	})
	startClient(t, smppclient.Config{Addr: addr, EnquireLink: 50 * time.Millisecond}, newRecorder())
	waitUntil(t, "the unbind_resp and a second bind", func() bool {
		smsc.mu.Lock()
		defer smsc.mu.Unlock()
		return smsc.binds >= 2
	})
	if n := smsc.count(smppwire.UnbindResp); n != 1 {
		t.Errorf("the SMSC saw %d unbind_resp, want 1", n)
	}
}
