package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/routing"
	"github.com/smsgw/smsgw/segment"
	"github.com/smsgw/smsgw/workflows"
)

// inFlight is how many workflows run at once: 64, or SMSGW_BENCH_IN_FLIGHT.
var inFlight = envInt("SMSGW_BENCH_IN_FLIGHT", 64)

// pollers is how many workflow and activity task pollers each worker
// keeps: smsgw's -pollers default, or SMSGW_BENCH_POLLERS (make bench-e2e
// gives the bare workflow's worker the number it gives smsgw).
var pollers = envInt("SMSGW_BENCH_POLLERS", 16)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// floorWorkflow has the shape of a message's happy path and nothing else: a
// local activity, an activity, a signal awaited with a timer (left to fire
// on its own), a local activity: 15 history events and 2 workflow tasks when
// the signal comes before the activity's result is handled, 18 and 3 when
// it comes later.
func floorWorkflow(ctx workflow.Context, id string) error {
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	if err := workflow.ExecuteLocalActivity(lctx, noop, id).Get(ctx, nil); err != nil {
		return err
	}
	if err := workflow.ExecuteActivity(actx, "FloorSend", id).Get(ctx, nil); err != nil {
		return err
	}
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(workflow.GetSignalChannel(ctx, "receipt"), func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
	sel.AddFuture(workflow.NewTimer(ctx, time.Hour), func(workflow.Future) {})
	sel.Select(ctx)
	return workflow.ExecuteLocalActivity(lctx, floorDone, id).Get(ctx, nil)
}

func noop(context.Context, string) error { return nil }

// floorDone is the bare workflow's last step: it tells the benchmark that
// the workflow is done, as a message's final notification tells its
// customer.
func floorDone(_ context.Context, id string) error {
	ended.done(id)
	return nil
}

// ended is how the benchmarks learn that a workflow reached its last step:
// in the worker's process, from the step itself, as a customer learns it
// from the final notification, not by polling the workflow's history (a
// cost on the server that the gateway's customers do not make).
var ended = &endings{waiting: map[string]chan struct{}{}}

type endings struct {
	mu      sync.Mutex
	waiting map[string]chan struct{}
}

// expect returns what closes once workflow id reaches its last step.
func (e *endings) expect(id string) <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.channel(id)
}

// channel is workflow id's channel. e.mu is held.
func (e *endings) channel(id string) chan struct{} {
	ch := e.waiting[id]
	if ch == nil {
		ch = make(chan struct{})
		e.waiting[id] = ch
	}
	return ch
}

// done marks workflow id at its last step; a step run again is ignored.
func (e *endings) done(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := e.channel(id)
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// signalLater plays the SMSC: the receipt arrives delay after the send.
type signalLater struct {
	c       client.Client
	signal  string
	payload func(id string) any
	delay   time.Duration
}

// receiptDelays are the SMSCs the benchmarks play: a fast one, whose
// receipt comes before the workflow handles the send's result, and the
// SMSC simulator of `make dev`, whose receipts come 500 ms later.
var receiptDelays = []time.Duration{5 * time.Millisecond, 500 * time.Millisecond}

func (s signalLater) after(id string) {
	go func() {
		time.Sleep(s.delay)
		_ = s.c.SignalWorkflow(context.Background(), id, "", s.signal, s.payload(id))
	}()
}

// startServer connects to the Temporal server in SMSGW_BENCH_TEMPORAL
// (host:port; `make bench-e2e` gives the one it runs as `make dev` does),
// or else starts an in-memory dev server. Requests go uncompressed, as
// smsgw's go in `make dev` (-temporal-compression none): the server is on
// the same machine.
func startServer(b *testing.B) client.Client {
	addr := os.Getenv("SMSGW_BENCH_TEMPORAL")
	if addr == "" {
		addr = testenv.TemporalAddress(b)
	}
	c, err := client.Dial(client.Options{HostPort: addr, Logger: quiet{},
		ConnectionOptions: client.ConnectionOptions{GrpcCompression: &client.GrpcCompressionNone{}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c
}

// newWorker polls as smsgw's message worker does (-pollers), so the bare
// workflow's tasks meet waiting pollers as often as a message's.
func newWorker(c client.Client, queue string) worker.Worker {
	return worker.New(c, queue, worker.Options{
		MaxConcurrentWorkflowTaskPollers: pollers,
		MaxConcurrentActivityTaskPollers: pollers,
	})
}

// rounds numbers the calls of run, so that no two rounds in one process
// (-count 2, or b.N growing) name a workflow alike: an ID whose end was
// seen before would not be waited for again.
var rounds atomic.Int64

// run starts b.N workflows with inFlight at a time and waits for each to
// reach its last step (ended).
func run(b *testing.B, c client.Client, queue string, start func(ctx context.Context, id string) (client.WorkflowRun, error)) {
	b.Helper()
	ctx := context.Background()
	prefix := fmt.Sprintf("%s-%d-%d", queue, rounds.Add(1), b.N)
	ids := make(chan int)
	var wg sync.WaitGroup
	var failures int
	var mu sync.Mutex
	b.ResetTimer()
	t0 := time.Now()
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				id := fmt.Sprintf("%s-%d", prefix, i)
				end := ended.expect(id)
				_, err := start(ctx, id)
				if err == nil {
					select {
					case <-end:
					case <-time.After(2 * time.Minute):
						err = fmt.Errorf("workflow %s did not end within 2 minutes", id)
					}
				}
				if err != nil {
					mu.Lock()
					failures++
					mu.Unlock()
				}
			}
		}()
	}
	for i := range b.N {
		ids <- i
	}
	close(ids)
	wg.Wait()
	elapsed := time.Since(t0)
	b.StopTimer()
	if failures > 0 {
		b.Fatalf("%d workflows failed", failures)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "workflows/s")
	events, tasks := historyShape(b, c, prefix+"-0")
	b.ReportMetric(float64(events), "events/msg")
	b.ReportMetric(float64(tasks), "wftasks/msg")
}

func historyShape(b *testing.B, c client.Client, id string) (events, tasks int) {
	it := c.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			b.Fatal(err)
		}
		events++
		if e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			tasks++
		}
	}
	return events, tasks
}

// BenchmarkFloor is the bare workflow of a message's shape.
func BenchmarkFloor(b *testing.B) {
	for _, delay := range receiptDelays {
		b.Run("receipt="+delay.String(), func(b *testing.B) { benchFloor(b, delay) })
	}
}

func benchFloor(b *testing.B, delay time.Duration) {
	c := startServer(b)
	queue := "floor-" + delay.String()
	sig := signalLater{c: c, signal: "receipt", payload: func(string) any { return nil }, delay: delay}
	w := newWorker(c, queue)
	w.RegisterWorkflow(floorWorkflow)
	w.RegisterActivityWithOptions(noop, activity.RegisterOptions{Name: "noop"})
	w.RegisterActivityWithOptions(floorDone, activity.RegisterOptions{Name: "floorDone"})
	w.RegisterActivityWithOptions(func(ctx context.Context, id string) error {
		sig.after(activity.GetInfo(ctx).WorkflowExecution.ID)
		return nil
	}, activity.RegisterOptions{Name: "FloorSend"})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	run(b, c, queue, func(ctx context.Context, id string) (client.WorkflowRun, error) {
		// Started eagerly, as smsgw starts a message in a process that runs
		// the message worker: the first workflow task comes back with the
		// start instead of through a poll.
		return c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue, EnableEagerStart: true}, floorWorkflow, id)
	})
}

// BenchmarkMessageWorkflow is the gateway's MessageWorkflow with its real
// activities over in-memory stores and a webhook channel that takes every
// notification; the send activity answers at once and the receipt is
// signalled after each of receiptDelays.
func BenchmarkMessageWorkflow(b *testing.B) {
	for _, delay := range receiptDelays {
		b.Run("receipt="+delay.String(), func(b *testing.B) { benchMessageWorkflow(b, delay) })
	}
}

func benchMessageWorkflow(b *testing.B, delay time.Duration) {
	c := startServer(b)
	cfg, err := config.Parse([]byte(`
customers: [{id: bench, apiKeys: ["plain:k"], webhook: {url: "https://hooks.example.com/hook", secret: s}}]
connectors: [{id: sim, address: "127.0.0.1:1"}]
routes: [{name: all, prefixes: ["+"], connectors: [sim]}]
`), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	live := config.Static(cfg)
	sig := signalLater{c: c, signal: workflows.SignalReceipt, delay: delay, payload: func(id string) any {
		return workflows.ReceiptSignal{Receipt: smsgw.Receipt{ConnectorID: "sim", UpstreamID: "u-" + id, Stat: "DELIVRD"}, Segment: 1}
	}}
	queue := workflows.TaskQueue + "-" + delay.String()
	w := newWorker(c, queue)
	w.RegisterWorkflow(workflows.MessageWorkflow)
	w.RegisterActivity(&activities.Activities{
		Config: live, Routes: routing.NewCache(live), Events: discard{}, Reports: discard{},
		Encoder: activities.TextEncoder{Refs: segment.NewMemoryAllocator(0)}, Channels: map[string]activities.Channel{smsgw.ChannelWebhook: discard{}},
		Logger: slog.New(slog.DiscardHandler), Now: time.Now,
	})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	send := newWorker(c, workflows.SendTaskQueue("sim"))
	send.RegisterActivityWithOptions(func(ctx context.Context, in activities.SendInput) (activities.SendResult, error) {
		sig.after(in.MessageID)
		return activities.SendResult{UpstreamIDs: []string{"u-" + in.MessageID}, SentAt: time.Now()}, nil
	}, activity.RegisterOptions{Name: activities.SendName})
	if err := send.Start(); err != nil {
		b.Fatal(err)
	}
	defer send.Stop()
	// The Submitter plans each message and hands the plan to its workflow.
	planner := activities.Planner{Config: live, Routes: routing.NewCache(live), Encoder: activities.TextEncoder{Refs: segment.NewMemoryAllocator(0)}}
	run(b, c, queue, func(ctx context.Context, id string) (client.WorkflowRun, error) {
		m := smsgw.Message{ID: id, CustomerID: "bench", EntryPoint: smsgw.EntryREST, From: "BENCH", To: "+61412345678",
			Text: "benchmark", Validity: time.Hour, AcceptedAt: time.Now()}
		plan, err := planner.Plan(m)
		if err != nil {
			return nil, err
		}
		return c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: id, TaskQueue: queue, TypedSearchAttributes: workflows.StartAttributes(m), EnableEagerStart: true,
		}, workflows.MessageWorkflow, workflows.MessageInput{Message: m, Plan: &plan})
	})
}

type discard struct{}

func (discard) AppendEvents(context.Context, ...smsgw.Event) error       { return nil }
func (discard) UpsertMessage(context.Context, smsgw.MessageRecord) error { return nil }
func (discard) Deliver(_ context.Context, d smsgw.Delivery) error {
	if d.Notification != nil && d.Notification.Status.Final() {
		ended.done(d.Notification.MessageID) // the customer's final notification
	}
	return nil
}

// quiet drops the SDK's logs.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
