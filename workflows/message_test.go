package workflows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/mock"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/routing"
)

// These tests run the workflow in Temporal's test environment (virtual time)
// with the real Activities over in-memory stores; the send activity is
// replaced per test to play the upstream SMSC.

type memEvents struct {
	mu     sync.Mutex
	events map[string]smsgw.Event
}

func (m *memEvents) AppendEvents(_ context.Context, evs ...smsgw.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range evs {
		if _, dup := m.events[e.ID]; !dup {
			m.events[e.ID] = e
		}
	}
	return nil
}

type memReports struct {
	mu       sync.Mutex
	rows     map[string]smsgw.MessageRecord
	held     map[string]smsgw.HeldMessage // the operators' list of held messages
	writes   int
	failures int // the next this many writes fail, as if the database were down
}

func (m *memReports) MarkHeld(_ context.Context, h smsgw.HeldMessage) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.held == nil {
		m.held = map[string]smsgw.HeldMessage{}
	}
	m.held[h.ID] = h
	return nil
}

func (m *memReports) ClearHeld(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.held, id)
	return nil
}

// heldNow is the message's entry in the held list, if it has one.
func (m *memReports) heldNow(id string) (smsgw.HeldMessage, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.held[id]
	return h, ok
}

func (m *memReports) UpsertMessage(_ context.Context, r smsgw.MessageRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failures > 0 {
		m.failures--
		return errors.New("reporting database unreachable")
	}
	m.writes++
	if old, ok := m.rows[r.ID]; ok && old.Status.Rank() > r.Status.Rank() {
		return nil
	}
	m.rows[r.ID] = r
	return nil
}

type memNotifier struct {
	mu      sync.Mutex
	sent    []smsgw.Notification
	sequels []bool // Delivery.Sequel of each
}

func (m *memNotifier) Deliver(_ context.Context, d smsgw.Delivery) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, *d.Notification)
	m.sequels = append(m.sequels, d.Sequel)
	return nil
}

type oneGSMPart struct{}

func (oneGSMPart) Encode(text, _, _, _ string) (string, []smsgw.Part, error) {
	return "GSM7", []smsgw.Part{{Seq: 1, ShortMessage: []byte(text)}}, nil
}

type harness struct {
	env      *testsuite.TestWorkflowEnvironment
	events   *memEvents
	reports  *memReports
	notifier *memNotifier
	channels map[string]activities.Channel
	msg      smsgw.Message
	live     *config.Live
	plan     *activities.PrepareResult // handed to the workflow, as the Submitter does
	charge   *smsgw.Charge             // handed to the workflow, as the Submitter does
	ledger   *memLedger
	admitted *smsgw.Admission // what the admission rules decided, as the Submitter hands it
	resends  *prometheus.CounterVec
	here     *fakeHere // the connectors "bound in this process", for SendHere
	sendHere bool      // MessageInput.SendHere, as the Submitter hands it
}

const testConfig = `
customers:
  - {id: acme, apiKeys: ["plain:k"], webhook: {url: "https://hooks.example.com/hook", secret: s}}
connectors:
  - {id: sim, address: "127.0.0.1:2776"}
routes:
  - {name: all, prefixes: ["+"], connectors: [sim]}
`

func newHarness(t *testing.T, send func(context.Context, activities.SendInput) (activities.SendResult, error)) *harness {
	return newHarnessWith(t, testConfig, send)
}

func newHarnessWith(t *testing.T, yaml string, send func(context.Context, activities.SendInput) (activities.SendResult, error)) *harness {
	t.Helper()
	return newHarnessEncoding(t, yaml, oneGSMPart{}, send)
}

func newHarnessEncoding(t *testing.T, yaml string, enc activities.Encoder, send func(context.Context, activities.SendInput) (activities.SendResult, error)) *harness {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		env:      env,
		events:   &memEvents{events: map[string]smsgw.Event{}},
		reports:  &memReports{rows: map[string]smsgw.MessageRecord{}},
		notifier: &memNotifier{},
		msg: smsgw.Message{
			ID: "m1", CustomerID: "acme", EntryPoint: smsgw.EntryREST,
			From: "ACME", To: "+61412345678", Text: "hello", Validity: time.Hour,
			AcceptedAt: env.Now(),
		},
	}
	h.live = config.Static(cfg)
	h.channels = map[string]activities.Channel{smsgw.ChannelWebhook: h.notifier}
	h.resends = activities.NewResendsCounter(prometheus.NewRegistry())
	h.ledger = newMemLedger()
	h.here = &fakeHere{}
	env.RegisterActivity(&activities.Activities{
		Config: config.Static(cfg), Routes: routing.NewCache(config.Static(cfg)), Events: h.events, Reports: h.reports, Encoder: enc,
		Resends: h.resends, Channels: h.channels, Ledger: h.ledger, Holds: h.reports, Here: h.here, Logger: slog.New(slog.DiscardHandler), Now: time.Now,
	})
	activities.RegisterSend(env, send)
	return h
}

func (h *harness) signalAt(d time.Duration, stat, upstreamID string) {
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalReceipt, ReceiptSignal{Receipt: smsgw.Receipt{ConnectorID: "sim", UpstreamID: upstreamID, Stat: stat}})
	}, d)
}

func (h *harness) run(t *testing.T) MessageResult {
	t.Helper()
	h.env.ExecuteWorkflow(MessageWorkflow, MessageInput{Message: h.msg, Plan: h.plan, Charge: h.charge, Admission: h.admitted, SendHere: h.sendHere})
	if !h.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var res MessageResult
	if err := h.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

func sentOK(ids ...string) func(context.Context, activities.SendInput) (activities.SendResult, error) {
	return func(context.Context, activities.SendInput) (activities.SendResult, error) {
		return activities.SendResult{UpstreamIDs: ids, SentAt: time.Now()}, nil
	}
}

func (h *harness) assertFinal(t *testing.T, res MessageResult, want smsgw.Status) {
	t.Helper()
	if res.Status != want {
		t.Fatalf("status = %s (%s), want %s", res.Status, res.ErrorCode, want)
	}
	if got := h.reports.rows[h.msg.ID].Status; got != want {
		t.Errorf("reporting row status = %s, want %s", got, want)
	}
	if n := len(h.notifier.sent); n == 0 || h.notifier.sent[n-1].Status != want {
		t.Errorf("notifications = %+v, want the last to be %s", h.notifier.sent, want)
	}
	if _, ok := h.events.events[h.msg.ID+":final"]; !ok {
		t.Errorf("no final event recorded")
	}
}

func TestHappyPath(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	h.signalAt(time.Minute, "DELIVRD", "abc")
	res := h.run(t)
	h.assertFinal(t, res, smsgw.StatusDelivered)
	for _, step := range []string{"accepted", "routed", "sent-sim", "receipt-1-DELIVRD", "final", "notified-webhook-DELIVERED-DELIVRD"} {
		if _, ok := h.events.events["m1:"+step]; !ok {
			t.Errorf("event %q missing", step)
		}
	}
	n := h.notifier.sent[0]
	if n.Seq <= h.events.events["m1:final"].Seq {
		t.Errorf("notification seq %d not after final event seq %d", n.Seq, h.events.events["m1:final"].Seq)
	}
}

// A message the Submitter planned is not planned again: its workflow runs
// no Prepare, and records everything (acceptance, route, SENT, receipt,
// final) in one write per store at the end when the receipt comes within
// sentGrace; one that waits longer is recorded as SENT on the way.
func TestPlannedMessageIsRecordedOnceAtTheEnd(t *testing.T) {
	for _, c := range []struct {
		receiptAfter time.Duration
		writes       int
	}{{time.Second, 1}, {time.Minute, 2}} {
		h := newHarness(t, sentOK("abc"))
		plan, err := activities.Planner{Config: h.live, Routes: routing.NewCache(h.live), Encoder: oneGSMPart{}}.Plan(h.msg)
		if err != nil {
			t.Fatal(err)
		}
		h.plan = &plan
		h.signalAt(c.receiptAfter, "DELIVRD", "abc")
		res := h.run(t)
		h.assertFinal(t, res, smsgw.StatusDelivered)
		for _, step := range []string{"accepted", "routed", "sent-sim", "receipt-1-DELIVRD", "final"} {
			if _, ok := h.events.events["m1:"+step]; !ok {
				t.Errorf("receipt after %v: event %q missing", c.receiptAfter, step)
			}
		}
		if h.reports.writes != c.writes {
			t.Errorf("receipt after %v: %d reporting writes, want %d", c.receiptAfter, h.reports.writes, c.writes)
		}
		if row := h.reports.rows["m1"]; row.ConnectorID != "sim" || row.SentAt == nil || row.Segments != 1 || row.Encoding != "GSM7" {
			t.Errorf("receipt after %v: row %+v", c.receiptAfter, row)
		}
	}
}

// A receipt that came back while the send was held for it ends the
// message on the send's result, with no signal: recorded as a signalled
// one is, with one write per store and no timer of its own. A later
// duplicate by signal changes nothing.
func TestReceiptWithTheSend(t *testing.T) {
	for _, c := range []struct {
		stat string
		want smsgw.Status
	}{{"DELIVRD", smsgw.StatusDelivered}, {"UNDELIV", smsgw.StatusUndeliverable}} {
		h := newHarness(t, func(context.Context, activities.SendInput) (activities.SendResult, error) {
			return activities.SendResult{UpstreamIDs: []string{"abc"}, SentAt: time.Now(),
				Receipt: &smsgw.Receipt{ConnectorID: "sim", UpstreamID: "abc", Stat: c.stat}}, nil
		})
		plan, err := activities.Planner{Config: h.live, Routes: routing.NewCache(h.live), Encoder: oneGSMPart{}}.Plan(h.msg)
		if err != nil {
			t.Fatal(err)
		}
		h.plan = &plan
		timers := 0
		h.env.SetOnTimerScheduledListener(func(string, time.Duration) { timers++ })
		res := h.run(t)
		h.assertFinal(t, res, c.want)
		for _, step := range []string{"accepted", "routed", "sent-sim", "receipt-1-" + c.stat, "final"} {
			if _, ok := h.events.events["m1:"+step]; !ok {
				t.Errorf("%s: event %q missing", c.stat, step)
			}
		}
		if h.reports.writes != 1 {
			t.Errorf("%s: %d reporting writes, want 1", c.stat, h.reports.writes)
		}
		// sentGrace's, started with the workflow; none for the validity,
		// which a receipt already there does not wait for.
		if timers != 1 {
			t.Errorf("%s: %d timers, want 1", c.stat, timers)
		}
	}
}

// A receipt with the send of a message that Prepare planned (a scheduled
// one) ends it too, without starting sentGrace.
func TestReceiptWithTheSendOfAScheduledMessage(t *testing.T) {
	h := newHarness(t, func(context.Context, activities.SendInput) (activities.SendResult, error) {
		return activities.SendResult{UpstreamIDs: []string{"abc"}, SentAt: time.Now(),
			Receipt: &smsgw.Receipt{ConnectorID: "sim", UpstreamID: "abc", Stat: "DELIVRD"}}, nil
	})
	h.msg.ScheduleAt = h.env.Now().Add(time.Minute)
	h.signalAt(2*time.Minute, "DELIVRD", "abc") // a duplicate, by signal
	res := h.run(t)
	h.assertFinal(t, res, smsgw.StatusDelivered)
	if n := len(h.notifier.sent); n != 1 {
		t.Errorf("%d notifications, want 1", n)
	}
}

func TestReceiptBeforeSendCompletes(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	h.signalAt(0, "DELIVRD", "abc") // arrives before the send activity has returned
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
}

func TestDuplicateAndIntermediateReceipts(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	h.signalAt(time.Second, "ENROUTE", "abc")
	h.signalAt(2*time.Second, "DELIVRD", "abc")
	h.signalAt(3*time.Second, "DELIVRD", "abc")
	h.signalAt(4*time.Second, "DELIVRD", "other-message")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	if _, ok := h.events.events["m1:receipt-1-ENROUTE"]; !ok {
		t.Error("intermediate receipt not recorded")
	}
}

func TestValidityEndsAsExpired(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	res := h.run(t) // no receipt ever comes; the test clock skips ahead
	h.assertFinal(t, res, smsgw.StatusExpired)
}

func TestUndeliverableReceipt(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	h.signalAt(time.Second, "UNDELIV", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusUndeliverable)
}

func TestPermanentUpstreamErrorRejects(t *testing.T) {
	calls := 0
	h := newHarness(t, func(context.Context, activities.SendInput) (activities.SendResult, error) {
		calls++
		return activities.SendResult{}, temporal.NewNonRetryableApplicationError("invalid destination", activities.ErrTypeSubmitRejected, nil,
			activities.SendFailure{CommandStatus: 0x0B, StatusName: "ESME_RINVDSTADR"})
	})
	res := h.run(t)
	h.assertFinal(t, res, smsgw.StatusRejected)
	if res.ErrorCode != "ESME_RINVDSTADR" || calls != 1 {
		t.Fatalf("error code %q after %d calls, want ESME_RINVDSTADR after 1", res.ErrorCode, calls)
	}
}

func TestRetryableUpstreamErrorIsRetried(t *testing.T) {
	calls := 0
	h := newHarness(t, func(context.Context, activities.SendInput) (activities.SendResult, error) {
		calls++
		if calls < 3 {
			return activities.SendResult{}, temporal.NewApplicationError("throttled", activities.ErrTypeSubmitRetry, activities.SendFailure{CommandStatus: 0x58, StatusName: "ESME_RTHROTTLED"})
		}
		return activities.SendResult{UpstreamIDs: []string{"abc"}, SentAt: time.Now()}, nil
	})
	h.signalAt(10*time.Minute, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	if calls != 3 {
		t.Fatalf("send called %d times, want 3", calls)
	}
}

func TestRetriesExhaustedFail(t *testing.T) {
	h := newHarness(t, func(context.Context, activities.SendInput) (activities.SendResult, error) {
		return activities.SendResult{}, temporal.NewApplicationError("queue full", activities.ErrTypeSubmitRetry)
	})
	res := h.run(t)
	h.assertFinal(t, res, smsgw.StatusFailed)
	if res.ErrorCode != activities.ErrTypeSubmitRetry {
		t.Fatalf("error code = %q", res.ErrorCode)
	}
}

func TestMultipartNeedsEveryPart(t *testing.T) {
	h := newHarness(t, sentOK("p1", "p2"))
	h.signalAt(time.Second, "DELIVRD", "p1")
	h.signalAt(2*time.Second, "DELIVRD", "p2")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)

	h = newHarness(t, sentOK("p1", "p2"))
	h.signalAt(time.Second, "DELIVRD", "p1")
	h.signalAt(2*time.Second, "UNDELIV", "p2")
	h.assertFinal(t, h.run(t), smsgw.StatusUndeliverable)
}

func TestIntermediateStatusesNotifiedInOrder(t *testing.T) {
	h := newHarnessWith(t, strings.Replace(testConfig, "secret: s}", "secret: s}, notify: {statuses: all}", 1), sentOK("abc"))
	h.signalAt(time.Second, "ACCEPTD", "abc")
	h.signalAt(2*time.Second, "ENROUTE", "abc")
	h.signalAt(3*time.Second, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	var got []string
	lastSeq := 0
	for _, n := range h.notifier.sent {
		got = append(got, string(n.Status)+"/"+n.Stat)
		if n.Seq <= lastSeq {
			t.Errorf("seq %d after %d", n.Seq, lastSeq)
		}
		lastSeq = n.Seq
	}
	want := "SENT/,SENT/ACCEPTD,SENT/ENROUTE,DELIVERED/DELIVRD"
	if strings.Join(got, ",") != want {
		t.Fatalf("notifications %v, want %s", got, want)
	}
	// Only the first is not a sequel: a channel may send it ahead of its queue.
	if want := []bool{false, true, true, true}; !slices.Equal(h.notifier.sequels, want) {
		t.Fatalf("sequels %v, want %v", h.notifier.sequels, want)
	}
}

func TestFinalOnlyByDefault(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	h.signalAt(time.Second, "ENROUTE", "abc")
	h.signalAt(2*time.Second, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	if len(h.notifier.sent) != 1 {
		t.Fatalf("notifications %+v, want only the final one", h.notifier.sent)
	}
}

const twoConnectors = `
customers:
  - {id: acme, apiKeys: ["plain:k"], webhook: {url: "https://hooks.example.com/hook", secret: s}}
connectors:
  - {id: a, address: "127.0.0.1:1", rerouteErrors: ["err:034"]}
  - {id: b, address: "127.0.0.1:2"}
routes:
  - {name: all, prefixes: ["+"], connectors: [a, b]}
`

func TestFailoverWhenRetriesRunOut(t *testing.T) {
	calls := map[string]int{}
	h := newHarnessWith(t, twoConnectors, func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
		calls[in.ConnectorID]++
		if in.ConnectorID == "a" {
			return activities.SendResult{}, temporal.NewApplicationError("system error", activities.ErrTypeSubmitRetry)
		}
		return activities.SendResult{UpstreamIDs: []string{"b1"}, SentAt: time.Now()}, nil
	})
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalReceipt, ReceiptSignal{Receipt: smsgw.Receipt{ConnectorID: "b", UpstreamID: "b1", Stat: "DELIVRD"}})
	}, 30*time.Minute)
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	if calls["a"] != sendMaxAttempts || calls["b"] != 1 {
		t.Fatalf("calls %v, want %d on a then 1 on b", calls, sendMaxAttempts)
	}
	if _, ok := h.events.events["m1:rerouted-a"]; !ok {
		t.Fatal("no rerouted event")
	}
	if h.reports.rows["m1"].ConnectorID != "b" {
		t.Fatalf("row connector %q, want b", h.reports.rows["m1"].ConnectorID)
	}
}

// A re-route error sends the message through the next connector at once,
// encoded as that connector needs it, not as the first one did.
func TestFailoverOnRerouteStatus(t *testing.T) {
	sent := map[string][]string{}
	h := newHarnessEncoding(t, twoConnectors, taggedParts{}, func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
		sent[in.ConnectorID] = append(sent[in.ConnectorID], string(in.Parts[0].ShortMessage))
		if in.ConnectorID == "a" {
			return activities.SendResult{}, temporal.NewNonRetryableApplicationError("ESME_RINVDSTADR", activities.ErrTypeReroute, nil)
		}
		return activities.SendResult{UpstreamIDs: []string{"b1"}, SentAt: time.Now()}, nil
	})
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalReceipt, ReceiptSignal{Receipt: smsgw.Receipt{ConnectorID: "b", UpstreamID: "b1", Stat: "DELIVRD"}})
	}, time.Minute)
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	if !slices.Equal(sent["a"], []string{"a:hello"}) || !slices.Equal(sent["b"], []string{"b:hello"}) {
		t.Fatalf("sent %v, want once through each connector in its own encoding", sent)
	}
	if ev := h.events.events["m1:rerouted-a"]; ev.Data["resend"] != nil {
		t.Errorf("a failover before any part was accepted is no resend: %v", ev.Data)
	}
}

func TestFailoverOnRerouteReceiptKeepsID(t *testing.T) {
	h := newHarnessWith(t, twoConnectors, func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
		return activities.SendResult{UpstreamIDs: []string{in.ConnectorID + "1"}, SentAt: time.Now()}, nil
	})
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalReceipt, ReceiptSignal{Receipt: smsgw.Receipt{ConnectorID: "a", UpstreamID: "a1", Stat: "UNDELIV", Err: "034"}})
	}, time.Minute)
	h.env.RegisterDelayedCallback(func() {
		// A late duplicate from the first connector must not end the message.
		h.env.SignalWorkflow(SignalReceipt, ReceiptSignal{Receipt: smsgw.Receipt{ConnectorID: "a", UpstreamID: "a1", Stat: "UNDELIV", Err: "034"}, Segment: 1})
		h.env.SignalWorkflow(SignalReceipt, ReceiptSignal{Receipt: smsgw.Receipt{ConnectorID: "b", UpstreamID: "b1", Stat: "DELIVRD"}, Segment: 1})
	}, 2*time.Minute)
	res := h.run(t)
	h.assertFinal(t, res, smsgw.StatusDelivered)
	if h.reports.rows["m1"].UpstreamID != "b1" {
		t.Fatalf("row %+v", h.reports.rows["m1"])
	}
	// Every part went out through a: the send through b is a resend.
	if ev := h.events.events["m1:rerouted-a"]; ev.Data["resend"] != true || ev.Data["partsReached"] != 1 {
		t.Errorf("rerouted event %v, want a recorded resend", ev.Data)
	}
	if got := testutil.ToFloat64(h.resends.WithLabelValues("a", "receipt_error")); got != 1 {
		t.Errorf("resends counted %v, want 1", got)
	}
}

// taggedParts encodes a text as one part per connector, tagged with the
// connector it was encoded for, so a test sees which encoding went where.
type taggedParts struct{}

func (taggedParts) Encode(text, _, connectorID, _ string) (string, []smsgw.Part, error) {
	return "GSM7", []smsgw.Part{{Seq: 1, ShortMessage: []byte(connectorID + ":" + text)}}, nil
}

// A connector that accepted part of a message and then ran out of retries
// keeps it by default: the rest is sent there, nothing through the next
// connector, so no part reaches the handset twice.
func TestPartialFailoverStaysOnTheConnector(t *testing.T) {
	calls := map[string]int{}
	h := newHarnessWith(t, twoConnectors, func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
		calls[in.ConnectorID]++
		if in.ConnectorID == "a" && calls["a"] <= sendMaxAttempts+2 {
			return activities.SendResult{}, temporal.NewApplicationError("system error", activities.ErrTypeSubmitRetry,
				activities.SendFailure{StatusName: "ESME_RSYSERR", PartsAccepted: 1})
		}
		return activities.SendResult{UpstreamIDs: []string{in.ConnectorID + "1", in.ConnectorID + "2"}, SentAt: time.Now()}, nil
	})
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalReceipt, ReceiptSignal{Receipt: smsgw.Receipt{ConnectorID: "a", UpstreamID: "a1", Stat: "DELIVRD"}})
		h.env.SignalWorkflow(SignalReceipt, ReceiptSignal{Receipt: smsgw.Receipt{ConnectorID: "a", UpstreamID: "a2", Stat: "DELIVRD"}})
	}, 40*time.Minute)
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	if calls["b"] != 0 || calls["a"] != sendMaxAttempts+3 {
		t.Fatalf("calls %v, want every one on a", calls)
	}
	kept := false
	for _, e := range h.events.events {
		kept = kept || (e.Type == smsgw.EventSendError && e.Data["kept"] == true && e.Data["connector"] == "a")
	}
	if !kept {
		t.Error("no event says the message was kept on a")
	}
	if _, ok := h.events.events["m1:rerouted-a"]; ok {
		t.Error("rerouted although kept")
	}
}

// With partialFailover: resend the message goes whole to the next
// connector, and the resend is recorded and counted.
func TestPartialFailoverResendIsRecorded(t *testing.T) {
	calls := map[string]int{}
	cfg := strings.Replace(twoConnectors, `rerouteErrors: ["err:034"]}`, `rerouteErrors: ["err:034"], partialFailover: resend}`, 1)
	h := newHarnessWith(t, cfg, func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
		calls[in.ConnectorID]++
		if in.ConnectorID == "a" {
			return activities.SendResult{}, temporal.NewApplicationError("in doubt", activities.ErrTypeSubmitRetry,
				activities.SendFailure{StatusName: "in_doubt", PartInDoubt: true})
		}
		return activities.SendResult{UpstreamIDs: []string{"b1"}, SentAt: time.Now()}, nil
	})
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalReceipt, ReceiptSignal{Receipt: smsgw.Receipt{ConnectorID: "b", UpstreamID: "b1", Stat: "DELIVRD"}})
	}, 30*time.Minute)
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	if calls["a"] != sendMaxAttempts || calls["b"] != 1 {
		t.Fatalf("calls %v", calls)
	}
	ev := h.events.events["m1:rerouted-a"]
	if ev.Data["resend"] != true || ev.Data["partsReached"] != 1 {
		t.Errorf("rerouted event %v, want a resend of 1 part", ev.Data)
	}
	if got := testutil.ToFloat64(h.resends.WithLabelValues("a", "retries_exhausted")); got != 1 {
		t.Errorf("resends counted %v, want 1", got)
	}
}

func TestUndeliverableWithoutRerouteCodeStays(t *testing.T) {
	h := newHarnessWith(t, twoConnectors, func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
		return activities.SendResult{UpstreamIDs: []string{in.ConnectorID + "1"}, SentAt: time.Now()}, nil
	})
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalReceipt, ReceiptSignal{Receipt: smsgw.Receipt{ConnectorID: "a", UpstreamID: "a1", Stat: "UNDELIV", Err: "001"}})
	}, time.Minute)
	h.assertFinal(t, h.run(t), smsgw.StatusUndeliverable)
}

func TestScheduledMessageWaitsUntilItsTime(t *testing.T) {
	var sentAt time.Time
	var h *harness
	h = newHarness(t, func(context.Context, activities.SendInput) (activities.SendResult, error) {
		sentAt = h.env.Now()
		return activities.SendResult{UpstreamIDs: []string{"abc"}, SentAt: time.Now()}, nil
	})
	h.msg.Validity = 3 * time.Hour
	h.msg.ScheduleAt = h.msg.AcceptedAt.Add(time.Hour)
	h.signalAt(90*time.Minute, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	if sentAt.Before(h.msg.ScheduleAt) {
		t.Fatalf("sent at %s, before its schedule %s", sentAt, h.msg.ScheduleAt)
	}
	if h.reports.rows["m1"].Status != smsgw.StatusDelivered {
		t.Fatal("row not final")
	}
}

func TestSMPPReceiptsOnFailureOnly(t *testing.T) {
	for _, c := range []struct {
		stat string
		want int
	}{{"DELIVRD", 0}, {"UNDELIV", 1}} {
		h := newHarness(t, sentOK("abc"))
		smpp := &memNotifier{}
		h.msg.EntryPoint, h.msg.ReceiptRequested, h.msg.ReceiptOnFailureOnly = smsgw.EntrySMPP, true, true
		h.channels[smsgw.ChannelSMPP] = smpp
		h.signalAt(time.Second, c.stat, "abc")
		h.run(t)
		if len(smpp.sent) != c.want {
			t.Errorf("%s: %d SMPP receipts, want %d", c.stat, len(smpp.sent), c.want)
		}
	}
}

func TestStoreOutageDelaysButDoesNotFail(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	h.reports.failures = 14 // several minutes of retries with backoff, past any single attempt's timeout
	h.signalAt(30*time.Minute, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
}

// updateResult records how an update ended.
type updateResult struct{ rejected, completed error }

func (u *updateResult) Accept()                   {}
func (u *updateResult) Reject(err error)          { u.rejected = err }
func (u *updateResult) Complete(_ any, err error) { u.completed = err }

func TestScheduledMessageReplacedThenCancelRefusedOnceSent(t *testing.T) {
	var sentText string
	var h *harness
	h = newHarness(t, func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
		sentText = string(in.Parts[0].ShortMessage)
		return activities.SendResult{UpstreamIDs: []string{"abc"}, SentAt: time.Now()}, nil
	})
	h.msg.Validity = 3 * time.Hour
	h.msg.ScheduleAt = h.msg.AcceptedAt.Add(time.Hour)
	replaced, lateCancel := &updateResult{}, &updateResult{}
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(UpdateReplace, "r1", replaced, ReplaceRequest{Text: "new words"})
	}, 10*time.Minute)
	h.env.RegisterDelayedCallback(func() { h.env.UpdateWorkflow(UpdateCancel, "c1", lateCancel) }, 70*time.Minute)
	h.signalAt(80*time.Minute, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	if replaced.rejected != nil || replaced.completed != nil || sentText != "new words" {
		t.Fatalf("replace: %v %v; sent %q", replaced.rejected, replaced.completed, sentText)
	}
	if lateCancel.rejected == nil {
		t.Fatal("a cancel after the message was sent must be refused")
	}
}

// A replacement that would schedule the message past the end of its
// validity is refused for what it asks; the message goes out as it was.
func TestReplaceBeyondValidityIsRefused(t *testing.T) {
	var sentText string
	h := newHarness(t, func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
		sentText = string(in.Parts[0].ShortMessage)
		return activities.SendResult{UpstreamIDs: []string{"abc"}, SentAt: time.Now()}, nil
	})
	h.msg.Validity = 3 * time.Hour
	h.msg.ScheduleAt = h.msg.AcceptedAt.Add(time.Hour)
	late := &updateResult{}
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(UpdateReplace, "r1", late, ReplaceRequest{Text: "too late", ScheduleAt: h.msg.AcceptedAt.Add(3 * time.Hour)})
	}, 10*time.Minute)
	h.signalAt(80*time.Minute, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	var appErr *temporal.ApplicationError
	if !errors.As(late.rejected, &appErr) || appErr.Type() != ErrInvalidChange {
		t.Fatalf("replace past validity: rejected with %v, want %s", late.rejected, ErrInvalidChange)
	}
	if sentText == "too late" {
		t.Fatal("the refused text was sent")
	}
}

// A replacement with a schedule and no text moves the message and keeps
// its text.
func TestReplaceScheduleAloneKeepsTheText(t *testing.T) {
	var sentText string
	var sentAt time.Time
	var h *harness
	h = newHarness(t, func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
		sentText, sentAt = string(in.Parts[0].ShortMessage), h.env.Now()
		return activities.SendResult{UpstreamIDs: []string{"abc"}, SentAt: time.Now()}, nil
	})
	h.msg.Validity = 3 * time.Hour
	h.msg.ScheduleAt = h.msg.AcceptedAt.Add(time.Hour)
	later := h.msg.AcceptedAt.Add(2 * time.Hour)
	moved := &updateResult{}
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(UpdateReplace, "r1", moved, ReplaceRequest{ScheduleAt: later})
	}, 10*time.Minute)
	h.signalAt(150*time.Minute, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	if moved.rejected != nil || moved.completed != nil {
		t.Fatalf("replace: %v %v", moved.rejected, moved.completed)
	}
	if sentText != "hello" || sentAt.Before(later) {
		t.Fatalf("sent %q at %s; want the original text at %s or later", sentText, sentAt, later)
	}
}

// The customer's reference goes into the reporting row and every
// notification.
func TestClientRefInRowAndNotifications(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	h.msg.ClientRef = "order 7"
	h.signalAt(time.Minute, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	if got := h.reports.rows["m1"].ClientRef; got != "order 7" {
		t.Errorf("row clientRef = %q, want %q", got, "order 7")
	}
	h.notifier.mu.Lock()
	defer h.notifier.mu.Unlock()
	if len(h.notifier.sent) == 0 {
		t.Fatal("no notification")
	}
	for _, n := range h.notifier.sent {
		if n.ClientRef != "order 7" {
			t.Errorf("notification %s has clientRef %q, want %q", n.Status, n.ClientRef, "order 7")
		}
	}
}

func TestScheduledMessageCancelled(t *testing.T) {
	sent := false
	h := newHarness(t, func(context.Context, activities.SendInput) (activities.SendResult, error) {
		sent = true
		return activities.SendResult{UpstreamIDs: []string{"abc"}}, nil
	})
	h.msg.Validity = 3 * time.Hour
	h.msg.ScheduleAt = h.msg.AcceptedAt.Add(time.Hour)
	h.env.RegisterDelayedCallback(func() { h.env.UpdateWorkflow(UpdateCancel, "c1", &updateResult{}) }, 10*time.Minute)
	h.assertFinal(t, h.run(t), smsgw.StatusCancelled)
	if sent {
		t.Fatal("a cancelled message was sent")
	}
}

// A planned message whose send waits longer than sentGrace (no connector
// bound yet) is recorded as accepted meanwhile, so it shows in the stores.
func TestPlannedMessageWithASlowSendIsRecordedAsAccepted(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	plan, err := activities.Planner{Config: h.live, Routes: routing.NewCache(h.live), Encoder: oneGSMPart{}}.Plan(h.msg)
	if err != nil {
		t.Fatal(err)
	}
	h.plan = &plan
	h.env.OnActivity(activities.SendName, mock.Anything, mock.Anything).
		Return(activities.SendResult{UpstreamIDs: []string{"abc"}, SentAt: time.Now()}, nil).After(30 * time.Second)
	var during smsgw.MessageRecord
	h.env.RegisterDelayedCallback(func() {
		h.reports.mu.Lock()
		during = h.reports.rows["m1"]
		h.reports.mu.Unlock()
	}, 20*time.Second)
	h.signalAt(31*time.Second, "DELIVRD", "abc")
	res := h.run(t)
	h.assertFinal(t, res, smsgw.StatusDelivered)
	if during.Status != smsgw.StatusAccepted || during.ConnectorID != "sim" {
		t.Errorf("row while the send waited: %+v, want ACCEPTED through sim", during)
	}
	if _, ok := h.events.events["m1:accepted"]; !ok {
		t.Error("acceptance not recorded")
	}
}

// A notification whose first attempt fails is retried in an activity, not
// in the local activity: the server spaces its attempts, and a customer's
// endpoint that is down holds no local activity slot, which every message
// needs, while it waits.
func TestFailedNotificationIsRetriedInAnActivity(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	flaky := &recordingChannel{fail: func(attempt int) error {
		if attempt <= 3 {
			return errors.New("webhook answered 503")
		}
		return nil
	}}
	h.channels[smsgw.ChannelWebhook] = flaky
	var local, regular []string
	h.env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		if name := info.ActivityType.Name; strings.Contains(name, "Notify") {
			local = append(local, name)
		}
	})
	h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		regular = append(regular, info.ActivityType.Name)
	})
	h.signalAt(time.Minute, "DELIVRD", "abc")
	if res := h.run(t); res.Status != smsgw.StatusDelivered {
		t.Fatalf("status %s", res.Status)
	}
	if flaky.attempts != 4 || len(flaky.got) != 1 || flaky.got[0].Notification.Status != smsgw.StatusDelivered {
		t.Fatalf("%d attempts, delivered %+v; want the DELIVERED notification on the fourth", flaky.attempts, flaky.got)
	}
	if !slices.Equal(local, []string{"RecordAndNotify"}) || !slices.Equal(regular, []string{activities.SendName, "Notify", "Notify", "Notify"}) {
		t.Fatalf("local activities %v, activities %v; want the first attempt local and the retries an activity", local, regular)
	}
	if _, ok := h.events.events["m1:final"]; !ok {
		t.Error("the final status was not recorded")
	}
	if _, ok := h.events.events["m1:notified-webhook-DELIVERED-DELIVRD"]; !ok {
		t.Error("the delivery was not recorded")
	}
}

// What a customer is told of a failure is the innermost message as it was
// written, without what Temporal adds when it carries errors across.
func TestRootMessageIsTheInnermostMessageAsWritten(t *testing.T) {
	fc := temporal.GetDefaultFailureConverter()
	for _, err := range []error{
		fmt.Errorf("notify acme over webhook: %w", errors.New("HTTP 503")),
		temporal.NewNonRetryableApplicationError("refused", "WebhookRefused", fmt.Errorf("x: %w", errors.New("HTTP 503"))),
		temporal.NewApplicationError("HTTP 503", "Failure"),
	} {
		carried := fc.FailureToError(fc.ErrorToFailure(err))
		if got := rootMessage(carried); got != "HTTP 503" {
			t.Errorf("rootMessage(%v) = %q, want HTTP 503", carried, got)
		}
	}
}
