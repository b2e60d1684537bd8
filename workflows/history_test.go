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

// onDevServer runs MessageWorkflow and its activities (over in-memory
// stores, with channels) on a real Temporal dev server, with send as the
// connector "sim"'s send activity; it returns the client and the
// configuration the workers run with.
func onDevServer(t *testing.T, channels map[string]activities.Channel, send func(c client.Client) activities.SendFunc) (client.Client, *config.Live) {
	t.Helper()
	addr := testenv.TemporalAddress(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: addr, Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg, err := config.Parse([]byte(testConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	live := config.Static(cfg)
	acts := &activities.Activities{
		Config: live, Routes: routing.NewCache(live), Events: &memEvents{events: map[string]smsgw.Event{}},
		Reports: &memReports{rows: map[string]smsgw.MessageRecord{}}, Encoder: oneGSMPart{},
		Channels: channels, Logger: slog.New(slog.DiscardHandler), Now: time.Now,
	}
	w := worker.New(c, TaskQueue, worker.Options{})
	w.RegisterWorkflow(MessageWorkflow)
	w.RegisterActivity(acts)
	sender := worker.New(c, SendTaskQueue("sim"), worker.Options{})
	activities.RegisterSend(sender, send(c))
	for _, wk := range []worker.Worker{w, sender} {
		if err := wk.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(wk.Stop)
	}
	return c, live
}

// runMessage plans m as the Submitter does, runs its workflow to the end
// and returns how it ended and the plan it had.
func runMessage(t *testing.T, c client.Client, live *config.Live, m smsgw.Message) (MessageResult, activities.PrepareResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("%s: %v", m.ID, err)
	}
	return res, plan
}

// receiptAfter signals a DELIVRD receipt for the message of in after d.
func receiptAfter(c client.Client, in activities.SendInput, d time.Duration) {
	time.AfterFunc(d, func() {
		_ = c.SignalWorkflow(context.Background(), in.MessageID, "", SignalReceipt,
			ReceiptSignal{Receipt: smsgw.Receipt{ConnectorID: in.ConnectorID, UpstreamID: "up-" + in.MessageID, Stat: "DELIVRD"}, Segment: 1})
	})
}

// The happy path of a one-part message costs 18 history events and three
// workflow tasks when its receipt comes 500 ms after the send: the
// throughput of the whole gateway rests on that count, so a change that
// adds to it fails here. Run on a real Temporal dev server, with the
// message's own activities over in-memory stores.
func TestHappyPathHistoryShape(t *testing.T) {
	c, live := onDevServer(t, map[string]activities.Channel{smsgw.ChannelWebhook: &memNotifier{}}, func(c client.Client) activities.SendFunc {
		return func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
			receiptAfter(c, in, 500*time.Millisecond)
			return activities.SendResult{UpstreamIDs: []string{"up-" + in.MessageID}, SentAt: time.Now()}, nil
		}
	})
	m := smsgw.Message{ID: "history-shape", CustomerID: "acme", EntryPoint: smsgw.EntryREST, From: "ACME", To: "+61412345678",
		Text: "hello", Validity: time.Hour, AcceptedAt: time.Now().UTC()}
	if res, _ := runMessage(t, c, live, m); res.Status != smsgw.StatusDelivered {
		t.Fatalf("message ended %+v", res)
	}
	events, tasks := 0, 0
	it := c.GetWorkflowHistory(context.Background(), m.ID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
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
	hooks := map[string]*flakyChannel{}
	var hooksMu sync.Mutex
	hookOf := func(id string) *flakyChannel {
		hooksMu.Lock()
		defer hooksMu.Unlock()
		if hooks[id] == nil {
			hooks[id] = &flakyChannel{failFirst: 3}
		}
		return hooks[id]
	}
	channels := map[string]activities.Channel{
		smsgw.ChannelWebhook: channelFunc(func(ctx context.Context, d smsgw.Delivery) error {
			return hookOf(d.Notification.MessageID).Deliver(ctx, d)
		}),
		smsgw.ChannelSMPP: &memNotifier{},
	}
	c, live := onDevServer(t, channels, func(c client.Client) activities.SendFunc {
		return func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
			receiptAfter(c, in, 100*time.Millisecond)
			// The carrier repeats the receipt while the customer's endpoint is down.
			receiptAfter(c, in, 2500*time.Millisecond)
			return activities.SendResult{UpstreamIDs: []string{"up-" + in.MessageID}, SentAt: time.Now()}, nil
		}
	})
	for _, entry := range []smsgw.EntryPoint{smsgw.EntryREST, smsgw.EntrySMPP} {
		m := smsgw.Message{ID: "notify-once-" + string(entry), CustomerID: "acme", EntryPoint: entry, From: "ACME", To: "+61412345678",
			Text: "hello", Validity: time.Hour, AcceptedAt: time.Now().UTC(), ReceiptRequested: entry == smsgw.EntrySMPP}
		res, plan := runMessage(t, c, live, m)
		if res.Status != smsgw.StatusDelivered {
			t.Fatalf("%s: message ended %+v", entry, res)
		}
		hook := hookOf(m.ID)
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

// slowChannel takes every delivery after a delay, as a slow endpoint does,
// counting each one.
type slowChannel struct {
	delay     time.Duration
	mu        sync.Mutex
	delivered []smsgw.Notification
}

func (s *slowChannel) Deliver(ctx context.Context, d smsgw.Delivery) error {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delivered = append(s.delivered, *d.Notification)
	return nil
}

// A final status that comes just before the sentGrace timer fires is
// delivered once (found by the soak: the timer fired while the workflow
// task that recorded and delivered the final status ran, Temporal refused
// that task, and the next one, on a worker that did not know of the
// delivery, delivered it again). The receipt comes 300 ms before the timer
// and the endpoint takes 1 s to answer.
func TestFinalStatusAsSentGraceEndsIsDeliveredOnce(t *testing.T) {
	hook := &slowChannel{delay: time.Second}
	start := make(chan time.Time, 1)
	c, live := onDevServer(t, map[string]activities.Channel{smsgw.ChannelWebhook: hook}, func(c client.Client) activities.SendFunc {
		return func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
			receiptAfter(c, in, time.Until((<-start).Add(sentGrace-300*time.Millisecond)))
			return activities.SendResult{UpstreamIDs: []string{"up-" + in.MessageID}, SentAt: time.Now()}, nil
		}
	})
	m := smsgw.Message{ID: "final-as-grace-ends", CustomerID: "acme", EntryPoint: smsgw.EntryREST, From: "ACME", To: "+61412345678",
		Text: "hello", Validity: time.Hour, AcceptedAt: time.Now().UTC()}
	start <- time.Now() // the timer starts in the workflow's first task, a few milliseconds later
	if res, _ := runMessage(t, c, live, m); res.Status != smsgw.StatusDelivered {
		t.Fatalf("message ended %+v", res)
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if len(hook.delivered) != 1 {
		t.Errorf("the final status reached the webhook %d times, want once", len(hook.delivered))
	}
}
