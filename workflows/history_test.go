package workflows

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/routing"
)

// The happy path of a one-part message costs 18 history events and three
// workflow tasks when its receipt comes 500 ms after the send: the
// throughput of the whole gateway rests on that count, so a change that
// adds to it fails here. Run on a real Temporal dev server, with the
// message's own activities over in-memory stores.
func TestHappyPathHistoryShape(t *testing.T) {
	addr := testenv.TemporalAddress(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: addr, Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	cfg, err := config.Parse([]byte(testConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	live := config.Static(cfg)
	acts := &activities.Activities{
		Config: live, Routes: routing.NewCache(live), Events: &memEvents{events: map[string]smsgw.Event{}},
		Reports: &memReports{rows: map[string]smsgw.MessageRecord{}}, Encoder: oneGSMPart{},
		Channels: map[string]activities.Channel{smsgw.ChannelWebhook: &memNotifier{}}, Logger: slog.New(slog.DiscardHandler), Now: time.Now,
	}
	w := worker.New(c, TaskQueue, worker.Options{})
	w.RegisterWorkflow(MessageWorkflow)
	w.RegisterActivity(acts)
	send := worker.New(c, SendTaskQueue("sim"), worker.Options{})
	activities.RegisterSend(send, func(ctx context.Context, in activities.SendInput) (activities.SendResult, error) {
		id := "up-" + in.MessageID
		time.AfterFunc(500*time.Millisecond, func() {
			_ = c.SignalWorkflow(context.Background(), in.MessageID, "", SignalReceipt,
				ReceiptSignal{Receipt: smsgw.Receipt{ConnectorID: in.ConnectorID, UpstreamID: id, Stat: "DELIVRD"}, Segment: 1})
		})
		return activities.SendResult{UpstreamIDs: []string{id}, SentAt: time.Now()}, nil
	})
	for _, wk := range []worker.Worker{w, send} {
		if err := wk.Start(); err != nil {
			t.Fatal(err)
		}
		defer wk.Stop()
	}

	m := smsgw.Message{ID: "history-shape", CustomerID: "acme", EntryPoint: smsgw.EntryREST, From: "ACME", To: "+61412345678",
		Text: "hello", Validity: time.Hour, AcceptedAt: time.Now().UTC()}
	plan, err := activities.Planner{Config: live, Routes: routing.NewCache(live), Encoder: oneGSMPart{}}.Plan(m)
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: m.ID, TaskQueue: TaskQueue, TypedSearchAttributes: StartAttributes(m)},
		MessageWorkflow, MessageInput{Message: m, Plan: &plan})
	if err != nil {
		t.Fatal(err)
	}
	var res MessageResult
	if err := run.Get(ctx, &res); err != nil || res.Status != smsgw.StatusDelivered {
		t.Fatalf("message ended %+v, %v", res, err)
	}
	events, tasks := 0, 0
	it := c.GetWorkflowHistory(ctx, m.ID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		events++
		if e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			tasks++
		}
	}
	if events != 18 || tasks != 3 {
		t.Fatalf("the happy path took %d history events and %d workflow tasks, want 18 and 3", events, tasks)
	}
}

// flakyChannel refuses its first deliveries (as an endpoint answering 500
// would), then takes them, counting each one it takes.
type flakyChannel struct {
	mu        sync.Mutex
	failFirst int
	tries     int
	delivered []smsgw.Notification
}

func (f *flakyChannel) Deliver(_ context.Context, d smsgw.Delivery) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries++
	if f.tries <= f.failFirst {
		return errors.New("endpoint answered 500")
	}
	f.delivered = append(f.delivered, *d.Notification)
	return nil
}

// A final status whose first delivery failed is delivered once when an
// event reaches the workflow while the delivery is retried (found by the
// soak: the sentGrace timer fired during a webhook outage, the workflow
// task that would have completed the workflow was refused, and the
// delivery made inside it ran again). A message notified on one channel
// (its first try with the final record) and one notified on two (an SMPP
// submission that asked for receipts) take different paths.
func TestFinalNotificationRetriedDuringAnEventIsDeliveredOnce(t *testing.T) {
	addr := testenv.TemporalAddress(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: addr, Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg, err := config.Parse([]byte(testConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	live := config.Static(cfg)
	hooks := map[string]*flakyChannel{}
	var hooksMu sync.Mutex
	hookOf := func(d smsgw.Delivery) *flakyChannel {
		hooksMu.Lock()
		defer hooksMu.Unlock()
		if hooks[d.Notification.MessageID] == nil {
			hooks[d.Notification.MessageID] = &flakyChannel{failFirst: 3}
		}
		return hooks[d.Notification.MessageID]
	}
	acts := &activities.Activities{
		Config: live, Routes: routing.NewCache(live), Events: &memEvents{events: map[string]smsgw.Event{}},
		Reports: &memReports{rows: map[string]smsgw.MessageRecord{}}, Encoder: oneGSMPart{},
		Channels: map[string]activities.Channel{
			smsgw.ChannelWebhook: channelFunc(func(ctx context.Context, d smsgw.Delivery) error { return hookOf(d).Deliver(ctx, d) }),
			smsgw.ChannelSMPP:    &memNotifier{},
		},
		Logger: slog.New(slog.DiscardHandler), Now: time.Now,
	}
	w := worker.New(c, TaskQueue, worker.Options{})
	w.RegisterWorkflow(MessageWorkflow)
	w.RegisterActivity(acts)
	send := worker.New(c, SendTaskQueue("sim"), worker.Options{})
	receipt := func(id string) ReceiptSignal {
		return ReceiptSignal{Receipt: smsgw.Receipt{ConnectorID: "sim", UpstreamID: "up-" + id, Stat: "DELIVRD"}, Segment: 1}
	}
	activities.RegisterSend(send, func(ctx context.Context, in activities.SendInput) (activities.SendResult, error) {
		time.AfterFunc(100*time.Millisecond, func() {
			_ = c.SignalWorkflow(context.Background(), in.MessageID, "", SignalReceipt, receipt(in.MessageID))
		})
		// The carrier repeats the receipt while the customer's endpoint is down.
		time.AfterFunc(2500*time.Millisecond, func() {
			_ = c.SignalWorkflow(context.Background(), in.MessageID, "", SignalReceipt, receipt(in.MessageID))
		})
		return activities.SendResult{UpstreamIDs: []string{"up-" + in.MessageID}, SentAt: time.Now()}, nil
	})
	for _, wk := range []worker.Worker{w, send} {
		if err := wk.Start(); err != nil {
			t.Fatal(err)
		}
		defer wk.Stop()
	}
	for _, entry := range []smsgw.EntryPoint{smsgw.EntryREST, smsgw.EntrySMPP} {
		m := smsgw.Message{ID: "notify-once-" + string(entry), CustomerID: "acme", EntryPoint: entry, From: "ACME", To: "+61412345678",
			Text: "hello", Validity: time.Hour, AcceptedAt: time.Now().UTC(), ReceiptRequested: entry == smsgw.EntrySMPP}
		plan, err := activities.Planner{Config: live, Routes: routing.NewCache(live), Encoder: oneGSMPart{}}.Plan(m)
		if err != nil {
			t.Fatal(err)
		}
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: m.ID, TaskQueue: TaskQueue, TypedSearchAttributes: StartAttributes(m)},
			MessageWorkflow, MessageInput{Message: m, Plan: &plan})
		if err != nil {
			t.Fatal(err)
		}
		var res MessageResult
		if err := run.Get(ctx, &res); err != nil || res.Status != smsgw.StatusDelivered {
			t.Fatalf("%s: message ended %+v, %v", entry, res, err)
		}
		hook := hooks[m.ID]
		hook.mu.Lock()
		if len(hook.delivered) != 1 || len(plan.Notify.Channels) != map[smsgw.EntryPoint]int{smsgw.EntryREST: 1, smsgw.EntrySMPP: 2}[entry] {
			t.Errorf("%s (channels %v): the final status reached the webhook %d times after %d tries, want once",
				entry, plan.Notify.Channels, len(hook.delivered), hook.tries)
		}
		hook.mu.Unlock()
	}
}

// channelFunc is a Channel made of a function.
type channelFunc func(context.Context, smsgw.Delivery) error

func (f channelFunc) Deliver(ctx context.Context, d smsgw.Delivery) error { return f(ctx, d) }
