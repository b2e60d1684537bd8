package workflows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/segment"
)

// The inbound tests run the workflows in Temporal's test environment
// (virtual time) with the real inbound activities over in-memory stores and
// channels that record what they deliver.

const inboundConfig = `
customers:
  - id: shop
    apiKeys: ["plain:k"]
    webhook: {url: "https://hooks.example.com/hook", secret: s}
    notify: {channels: [webhook, email], email: [ops@shop.example]}
    numbers: [{number: "+61400000001"}, {number: "12345", keyword: PIZZA}]
  - id: bank
    apiKeys: ["plain:k2"]
    webhook: {url: "https://hooks.example.com/bank"}
    numbers: [{number: "12345"}]
smtp: {address: "127.0.0.1:1", from: "smsgw@example.com"}
connectors:
  - {id: sim, address: "127.0.0.1:2776"}
routes:
  - {name: all, prefixes: ["+"], connectors: [sim]}
`

type inboundMem struct {
	mu      sync.Mutex
	records map[string]smsgw.InboundRecord
	events  map[string]smsgw.Event
}

func (m *inboundMem) PutInbound(_ context.Context, r smsgw.InboundRecord) (smsgw.InboundRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.records[r.ID]; ok {
		return old, false, nil
	}
	m.records[r.ID] = r
	return r, true, nil
}

func (m *inboundMem) SetInboundStatus(_ context.Context, id, status string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.records[id]
	r.Status, r.UpdatedAt = status, at
	m.records[id] = r
	return nil
}

func (m *inboundMem) AppendEvents(_ context.Context, evs ...smsgw.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range evs {
		if _, dup := m.events[e.ID]; !dup {
			m.events[e.ID] = e
		}
	}
	return nil
}

// recordingChannel keeps what it delivers; fail decides each attempt's error.
type recordingChannel struct {
	mu       sync.Mutex
	got      []smsgw.Delivery
	attempts int
	fail     func(attempt int) error
}

func (c *recordingChannel) Deliver(_ context.Context, d smsgw.Delivery) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempts++
	if c.fail != nil {
		if err := c.fail(c.attempts); err != nil {
			return err
		}
	}
	c.got = append(c.got, d)
	return nil
}

type inboundHarness struct {
	env     *testsuite.TestWorkflowEnvironment
	mem     *inboundMem
	webhook *recordingChannel
	email   *recordingChannel
}

func newInboundHarness(t *testing.T) *inboundHarness {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	cfg, err := config.Parse([]byte(inboundConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	live := config.Static(cfg)
	h := &inboundHarness{
		env:     env,
		mem:     &inboundMem{records: map[string]smsgw.InboundRecord{}, events: map[string]smsgw.Event{}},
		webhook: &recordingChannel{},
		email:   &recordingChannel{},
	}
	logger := slog.New(slog.DiscardHandler)
	in, err := activities.NewInbound(live, h.mem, h.mem, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	env.RegisterActivity(&activities.Activities{
		Config: live, Events: h.mem, Logger: logger, Now: time.Now,
		Channels: map[string]activities.Channel{smsgw.ChannelWebhook: h.webhook, smsgw.ChannelEmail: h.email},
	})
	RegisterInbound(env, in)
	return h
}

func (h *inboundHarness) partAt(d time.Duration, seq int, text string) {
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalInboundPart, InboundPart{Seq: seq, Text: text, Encoding: "GSM7", ReceivedAt: h.env.Now()})
	}, d)
}

func (h *inboundHarness) reassemble(t *testing.T, total int) ReassemblyResult {
	t.Helper()
	h.env.ExecuteWorkflow(ReassemblyWorkflow, ReassemblyInput{
		ConnectorID: "sim", From: "+61412345678", To: "+61400000001", Ref: 77, Total: total,
		Timeout: ReassemblyTimeout, DedupWindow: InboundDedupWindow,
	})
	if !h.env.IsWorkflowCompleted() {
		t.Fatal("reassembly did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatalf("reassembly: %v", err)
	}
	var res ReassemblyResult
	if err := h.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

func (h *inboundHarness) texts(c *recordingChannel) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, d := range c.got {
		s := d.Inbound.Text
		if d.Inbound.Partial {
			s += " (partial)"
		}
		out = append(out, s)
	}
	return out
}

func TestReassemblyInAnyOrderIgnoresDuplicates(t *testing.T) {
	h := newInboundHarness(t)
	h.partAt(0, 2, "lo, wo")
	h.partAt(10*time.Second, 3, "rld!")
	h.partAt(20*time.Second, 2, "lo, wo") // the SMSC delivered it again
	h.partAt(30*time.Second, 1, "Hel")
	h.partAt(time.Minute, 3, "rld!") // again, after the message is complete
	res := h.reassemble(t, 3)

	if len(res.Messages) != 1 || res.Partial != 0 || res.Duplicates != 2 {
		t.Fatalf("result %+v, want one whole message and two duplicates", res)
	}
	if got := h.texts(h.webhook); fmt.Sprint(got) != "[Hello, world!]" {
		t.Fatalf("webhook got %q", got)
	}
	if got := h.texts(h.email); fmt.Sprint(got) != "[Hello, world!]" {
		t.Fatalf("email got %q", got)
	}
	rec := h.mem.records[res.Messages[0]]
	if rec.CustomerID != "shop" || rec.Status != smsgw.InboundDelivered || rec.Parts != 3 || rec.Connector != "sim" {
		t.Fatalf("stored %+v", rec)
	}
	if d := h.webhook.got[0].Inbound; d.Connector != "" || d.ID != res.Messages[0] || d.From != "+61412345678" {
		t.Errorf("delivered %+v: want the message ID and sender, and no connector", d)
	}
}

func TestReassemblyTimeoutDeliversPartial(t *testing.T) {
	h := newInboundHarness(t)
	start := h.env.Now()
	h.partAt(0, 1, "first ")
	h.partAt(5*time.Second, 3, " third")
	var deliveredAt time.Time
	h.env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, args []any) {
		if info.ActivityType.Name == "Notify" && deliveredAt.IsZero() {
			deliveredAt = h.env.Now()
		}
	})
	res := h.reassemble(t, 3)
	if len(res.Messages) != 1 || res.Partial != 1 {
		t.Fatalf("result %+v, want one partial message", res)
	}
	want := "first " + segment.MissingPartMarker + " third (partial)"
	if got := h.texts(h.webhook); len(got) != 1 || got[0] != want {
		t.Fatalf("webhook got %q, want %q", got, want)
	}
	if wait := deliveredAt.Sub(start); wait < ReassemblyTimeout || wait > ReassemblyTimeout+time.Minute {
		t.Errorf("partial message delivered after %s, want after the %s timeout", wait, ReassemblyTimeout)
	}
	if !h.mem.records[res.Messages[0]].Partial {
		t.Error("stored message not marked partial")
	}
}

func TestReassemblyNextMessageWithSameReference(t *testing.T) {
	h := newInboundHarness(t)
	h.partAt(0, 1, "one-")
	h.partAt(time.Second, 2, "a")
	h.partAt(30*time.Second, 2, "b") // another message reusing the reference
	h.partAt(31*time.Second, 1, "two-")
	res := h.reassemble(t, 2)
	if len(res.Messages) != 2 || res.Messages[0] == res.Messages[1] {
		t.Fatalf("result %+v, want two messages with distinct IDs", res)
	}
	if got := h.texts(h.webhook); fmt.Sprint(got) != "[one-a two-b]" {
		t.Fatalf("webhook got %q", got)
	}
}

func TestInboundUnroutedIsKept(t *testing.T) {
	h := newInboundHarness(t)
	msg := smsgw.InboundMessage{ID: "mo-x", From: "+61412345678", To: "+19995550000", Text: "anyone?", Encoding: "GSM7", Parts: 1, ReceivedAt: h.env.Now()}
	h.env.ExecuteWorkflow(InboundWorkflow, InboundInput{Message: msg, DedupWindow: InboundDedupWindow})
	var res InboundResult
	if err := h.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Status != smsgw.InboundUnrouted || res.CustomerID != "" {
		t.Fatalf("result %+v, want unrouted", res)
	}
	if r := h.mem.records["mo-x"]; r.Status != smsgw.InboundUnrouted || r.Text != "anyone?" {
		t.Fatalf("stored %+v", r)
	}
	if len(h.webhook.got)+len(h.email.got) != 0 {
		t.Fatal("an unrouted message was delivered")
	}
	if _, ok := h.mem.events["mo-x:inbound-received"]; !ok {
		t.Error("no inbound_received event")
	}
}

func TestInboundChannelThatRefusesIsKeptForRedelivery(t *testing.T) {
	h := newInboundHarness(t)
	h.email.fail = func(int) error { return fmt.Errorf("550 no such mailbox: %w", smsgw.ErrRefused) }
	msg := smsgw.InboundMessage{ID: "mo-p", From: "+61412345678", To: "12345", Text: "pizza please", Encoding: "GSM7", Parts: 1, ReceivedAt: h.env.Now()}
	h.env.ExecuteWorkflow(InboundWorkflow, InboundInput{Message: msg})
	var res InboundResult
	if err := h.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.CustomerID != "shop" || res.Status != smsgw.InboundFailed {
		t.Fatalf("result %+v, want shop (keyword PIZZA) with a failed channel", res)
	}
	if len(h.webhook.got) != 1 || h.webhook.got[0].Inbound.Keyword != "PIZZA" {
		t.Fatalf("webhook got %+v", h.webhook.got)
	}
	ev, ok := h.mem.events["mo-p:notify-failed-email-inbound"]
	if !ok || !strings.Contains(fmt.Sprint(ev.Data["reason"]), "550") {
		t.Fatalf("notify_failed event %+v", ev)
	}
	if r := h.mem.records["mo-p"]; r.Status != smsgw.InboundFailed {
		t.Errorf("stored status %q, want failed", r.Status)
	}
}

func TestRedeliverRetriesUntilDelivered(t *testing.T) {
	h := newInboundHarness(t)
	h.webhook.fail = func(attempt int) error {
		if attempt < 3 {
			return errors.New("webhook answered 503")
		}
		return nil
	}
	d := smsgw.Delivery{Channel: smsgw.ChannelWebhook, CustomerID: "shop",
		Notification: &smsgw.Notification{MessageID: "m1", Status: smsgw.StatusDelivered, Seq: 4}}
	h.env.ExecuteWorkflow(RedeliverWorkflow, RedeliverInput{Delivery: d, RetryFor: time.Hour})
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if h.webhook.attempts != 3 || len(h.webhook.got) != 1 {
		t.Fatalf("%d attempts, %d delivered; want 3 and 1", h.webhook.attempts, len(h.webhook.got))
	}
	if _, ok := h.mem.events["m1:notified-webhook-DELIVERED"]; !ok {
		t.Error("the redelivery was not recorded as notified")
	}
}

func TestRedeliverGivesUpOnRefusal(t *testing.T) {
	h := newInboundHarness(t)
	h.webhook.fail = func(int) error { return fmt.Errorf("410 Gone: %w", smsgw.ErrRefused) }
	d := smsgw.Delivery{Channel: smsgw.ChannelWebhook, CustomerID: "shop",
		Notification: &smsgw.Notification{MessageID: "m1", Status: smsgw.StatusDelivered}}
	h.env.ExecuteWorkflow(RedeliverWorkflow, RedeliverInput{Delivery: d, RetryFor: time.Hour})
	if err := h.env.GetWorkflowError(); err == nil || h.webhook.attempts != 1 {
		t.Fatalf("err %v after %d attempts; want a failure after one", err, h.webhook.attempts)
	}
}
