package upstream

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
)

// completions records the held sends a Matcher completes, failing while
// fail is set.
type completions struct {
	mu    sync.Mutex
	fail  bool
	done  []activities.SendResult
	token [][]byte
	ch    chan struct{}
}

func newCompletions() *completions { return &completions{ch: make(chan struct{}, 100)} }

func (c *completions) CompleteActivity(_ context.Context, token []byte, result any, err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		return errors.New("temporal unreachable")
	}
	if err != nil {
		return errors.New("a held send is completed with a result, never an error")
	}
	c.done = append(c.done, result.(activities.SendResult))
	c.token = append(c.token, token)
	c.ch <- struct{}{}
	return nil
}

func (c *completions) wait(t *testing.T) activities.SendResult {
	t.Helper()
	select {
	case <-c.ch:
	case <-time.After(5 * time.Second):
		t.Fatal("the held send was not completed")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done[len(c.done)-1]
}

func (c *completions) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.done)
}

// heldMatcher is a Matcher over the store that holds sends, completing
// them through c, with one correlation made for message m1 as upstream ID u1.
func heldMatcher(t *testing.T, c *completions) (*Matcher, *signals, *prometheus.Registry) {
	t.Helper()
	sig, reg := newSignals(), prometheus.NewRegistry()
	m := NewMatcher(openStore(t), sig, testLogger(t), reg)
	m.HoldSends(c)
	if err := m.Correlate(ctxT(t), smsgw.Correlation{ConnectorID: "up", UpstreamID: "u1", MessageID: "m1", Segment: 1, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Settle)
	return m, sig, reg
}

var sentU1 = activities.SendResult{UpstreamIDs: []string{"u1"}, Attempt: 1}

// A final receipt for a held send completes it with the receipt, and is
// not signalled; the send is completed once.
func TestHeldSendCompletesWithItsReceipt(t *testing.T) {
	c := newCompletions()
	m, sig, reg := heldMatcher(t, c)
	if !m.holdSend("up", "u1", []byte("token-1"), sentU1, time.Minute) {
		t.Fatal("send not held")
	}
	r := smsgw.Receipt{ConnectorID: "up", UpstreamID: "u1", Stat: "DELIVRD", ReceivedAt: time.Now()}
	if err := m.HandleReceipt(ctxT(t), r); err != nil {
		t.Fatal(err)
	}
	got := c.wait(t)
	if got.Receipt == nil || got.Receipt.Stat != "DELIVRD" || got.UpstreamIDs[0] != "u1" || string(c.token[0]) != "token-1" {
		t.Fatalf("completed with %+v (token %q), want u1 with its DELIVRD receipt", got, c.token[0])
	}
	if n := sig.count(); n != 0 {
		t.Errorf("%d signals, want none", n)
	}
	if v := counterValue(t, reg, "smsgw_receipts_total", "with_send"); v != 1 {
		t.Errorf("with_send = %v, want 1", v)
	}
	// The SMSC sends it again: a duplicate, acknowledged without a signal.
	if err := m.HandleReceipt(ctxT(t), r); err != nil {
		t.Fatal(err)
	}
	if n, k := sig.count(), c.count(); n != 0 || k != 1 {
		t.Errorf("after a duplicate: %d signals and %d completions, want 0 and 1", n, k)
	}
}

// A held send whose receipt does not come completes without one when its
// wait ends; the receipt that comes later is signalled.
func TestHeldSendCompletesWithoutReceiptAfterItsWait(t *testing.T) {
	c := newCompletions()
	m, sig, _ := heldMatcher(t, c)
	if !m.holdSend("up", "u1", []byte("token-1"), sentU1, 50*time.Millisecond) {
		t.Fatal("send not held")
	}
	if got := c.wait(t); got.Receipt != nil {
		t.Fatalf("completed with receipt %+v, want none", got.Receipt)
	}
	if err := m.HandleReceipt(ctxT(t), smsgw.Receipt{ConnectorID: "up", UpstreamID: "u1", Stat: "DELIVRD", ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if ids, _ := sig.waitN(t, 1); ids[0] != "m1" {
		t.Errorf("signalled %v, want m1", ids)
	}
	if n := c.count(); n != 1 {
		t.Errorf("%d completions, want 1", n)
	}
}

// A receipt that is not final (ENROUTE) leaves the send held and is
// signalled; a final one taken before the send could be held keeps it
// from being held for nothing.
func TestHeldSendIgnoresIntermediateAndEarlierReceipts(t *testing.T) {
	c := newCompletions()
	m, sig, _ := heldMatcher(t, c)
	if !m.holdSend("up", "u1", []byte("token-1"), sentU1, time.Minute) {
		t.Fatal("send not held")
	}
	if err := m.HandleReceipt(ctxT(t), smsgw.Receipt{ConnectorID: "up", UpstreamID: "u1", Stat: "ENROUTE", ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, got := sig.waitN(t, 1); got[0].Receipt.Stat != "ENROUTE" || c.count() != 0 {
		t.Fatalf("signalled %+v with %d completions, want ENROUTE and none", got[0].Receipt, c.count())
	}

	if err := m.Correlate(ctxT(t), smsgw.Correlation{ConnectorID: "up", UpstreamID: "u2", MessageID: "m2", Segment: 1, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := m.HandleReceipt(ctxT(t), smsgw.Receipt{ConnectorID: "up", UpstreamID: "u2", Stat: "DELIVRD", ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if m.holdSend("up", "u2", []byte("token-2"), activities.SendResult{UpstreamIDs: []string{"u2"}}, time.Minute) {
		t.Error("a send whose final receipt was taken already is held")
	}
}

// When Temporal does not take the held send's completion, the receipt is
// signalled instead, so that nothing is acknowledged upstream that
// Temporal does not hold.
func TestHeldSendNotCompletedFallsBackToTheSignal(t *testing.T) {
	c := newCompletions()
	c.fail = true
	m, sig, _ := heldMatcher(t, c)
	if !m.holdSend("up", "u1", []byte("token-1"), sentU1, time.Minute) {
		t.Fatal("send not held")
	}
	if err := m.HandleReceipt(ctxT(t), smsgw.Receipt{ConnectorID: "up", UpstreamID: "u1", Stat: "UNDELIV", ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if ids, got := sig.waitN(t, 1); ids[0] != "m1" || got[0].Receipt.Stat != "UNDELIV" {
		t.Fatalf("signalled %v %+v, want m1's UNDELIV", ids, got)
	}
}

// A stopping process completes the sends it holds, without receipts, and
// holds none after.
func TestReleaseHeldCompletesEverySend(t *testing.T) {
	c := newCompletions()
	m, _, reg := heldMatcher(t, c)
	for _, id := range []string{"u1", "u2", "u3"} {
		if !m.holdSend("up", id, []byte("t-"+id), activities.SendResult{UpstreamIDs: []string{id}}, time.Minute) {
			t.Fatalf("send %s not held", id)
		}
	}
	if v := gaugeValue(t, reg, "smsgw_upstream_sends_held"); v != 3 {
		t.Errorf("held gauge = %v, want 3", v)
	}
	m.ReleaseHeld()
	if n := c.count(); n != 3 {
		t.Fatalf("%d completions, want 3", n)
	}
	for _, r := range c.done {
		if r.Receipt != nil {
			t.Errorf("released with receipt %+v", r.Receipt)
		}
	}
	if v := gaugeValue(t, reg, "smsgw_upstream_sends_held"); v != 0 {
		t.Errorf("held gauge = %v, want 0", v)
	}
	if m.holdSend("up", "u4", []byte("t-u4"), activities.SendResult{UpstreamIDs: []string{"u4"}}, time.Minute) {
		t.Error("a send was held after ReleaseHeld")
	}
}

// Without a Completer (HoldSends not called) nothing is held.
func TestNoCompleterHoldsNothing(t *testing.T) {
	m := NewMatcher(openStore(t), newSignals(), testLogger(t), prometheus.NewRegistry())
	if m.holdSend("up", "u1", []byte("token-1"), sentU1, time.Minute) {
		t.Error("held without a Completer")
	}
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}
