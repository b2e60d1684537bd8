package smppsession

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smppwire"
)

// A request whose send fails because the session closed after the request
// was registered (Close came between the check for unbinding and the
// send) leaves the window once. It used to leave it twice, once when the
// failed send completed it and again in Start: with a full window the
// second wait for a token blocked Start for good (TestDropMidWindow in
// smppclient hung so in a CI run), and with room left it took another
// request's token.
func TestFailedSendLeavesTheWindowOnce(t *testing.T) {
	for _, others := range []int{0, 1} {
		t.Run(fmt.Sprintf("others=%d", others), func(t *testing.T) { failSendInWindow(t, others) })
	}
}

// failSendInWindow fails a request's send in a window of others+1, with
// others tokens held for requests already in flight.
func failSendInWindow(t *testing.T, others int) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var inWindow int
	s := New(a, Config{Window: others + 1, OnWindow: func(d int) { inWindow += d }}, nil)
	for range others {
		s.window <- struct{}{}
	}
	// Stand in for a Close that lands between request's check and its
	// send: the session closing, not yet unbinding (Close itself marks it
	// unbinding first).
	close(s.closing)

	started := make(chan error, 1)
	go func() {
		_, err := s.Start(context.Background(), smppwire.HeaderOnly(smppwire.EnquireLink, 0, 0))
		started <- err
	}()
	select {
	case err := <-started:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Start: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return after its send failed: it waits to give back room it gave back already")
	}
	if n := len(s.window); n != others {
		t.Errorf("%d tokens left in the window, want the %d of the requests in flight", n, others)
	}
	if n := s.outstanding.Load(); n != 0 {
		t.Errorf("outstanding = %d, want 0", n)
	}
	if inWindow != 0 {
		t.Errorf("OnWindow heard a sum of %d, want 0", inWindow)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) != 0 {
		t.Errorf("%d requests still pending, want 0", len(s.pending))
	}
}
