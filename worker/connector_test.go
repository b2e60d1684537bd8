package worker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/connectors/smpptest"
	"github.com/smsgw/smsgw/connectors/upstream"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/lifecycle"
	"github.com/smsgw/smsgw/store/mongostore"
	"github.com/smsgw/smsgw/worker"
	"github.com/smsgw/smsgw/workflows"
)

// The connector against a real Temporal dev server, a real event store and
// the SMSC simulator. A small workflow stands in for MessageWorkflow: it
// runs the send activity on the connector's task queue and waits for the
// receipts the connector signals.

const (
	wait           = 20 * time.Second
	testTaskQueue  = "connector-test"
	testWorkflowID = "send-"
)

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// sent is what sendAndAwait returns.
type sent struct {
	Result   activities.SendResult     `json:"result"`
	Receipts []workflows.ReceiptSignal `json:"receipts"`
}

// sendAndAwait sends a message through its connector, retrying what the
// send activity says is retryable, and waits for a receipt per part.
func sendAndAwait(ctx workflow.Context, in activities.SendInput) (sent, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           workflows.SendTaskQueue(in.ConnectorID),
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 50 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 500 * time.Millisecond,
			NonRetryableErrorTypes: []string{activities.ErrTypeInDoubt, activities.ErrTypeSubmitRejected, activities.ErrTypeReroute},
		},
	})
	var out sent
	if err := workflow.ExecuteActivity(ctx, activities.SendName, in).Get(ctx, &out.Result); err != nil {
		return out, err
	}
	ch := workflow.GetSignalChannel(ctx, workflows.SignalReceipt)
	for len(out.Receipts) < len(in.Parts) {
		timedOut := false
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) {
			var r workflows.ReceiptSignal
			c.Receive(ctx, &r)
			out.Receipts = append(out.Receipts, r)
		})
		sel.AddFuture(workflow.NewTimer(ctx, 15*time.Second), func(workflow.Future) { timedOut = true })
		sel.Select(ctx)
		if timedOut {
			return out, errors.New("no receipt")
		}
	}
	return out, nil
}

// here is the set of connectors sendHereAndAwait's local activity sends
// through: the test's, set before it starts the workflow.
var here *worker.HereConnectors

// sendHereAndAwait sends a message from the workflow's process, as
// MessageWorkflow does with SendHere, and waits for a receipt per part when
// it went.
func sendHereAndAwait(ctx workflow.Context, in activities.SendInput) (sentFromHere, error) {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	a := &activities.Activities{Here: here}
	var out sentFromHere
	if err := workflow.ExecuteLocalActivity(ctx, a.SendHere, in).Get(ctx, &out.Result); err != nil || !out.Result.Here {
		return out, err
	}
	ch := workflow.GetSignalChannel(ctx, workflows.SignalReceipt)
	for len(out.Receipts) < len(in.Parts) {
		var r workflows.ReceiptSignal
		if ok, _ := ch.ReceiveWithTimeout(ctx, 15*time.Second, &r); !ok {
			return out, errors.New("no receipt")
		}
		out.Receipts = append(out.Receipts, r)
	}
	return out, nil
}

// sentFromHere is what sendHereAndAwait returns.
type sentFromHere struct {
	Result   activities.SendHereResult `json:"result"`
	Receipts []workflows.ReceiptSignal `json:"receipts"`
}

type env struct {
	temporal client.Client
	store    *mongostore.Store
}

func startEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the Temporal CLI and a MongoDB-wire server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	tc, err := client.DialContext(ctx, client.Options{HostPort: testenv.TemporalAddress(t), Logger: tlog.NewStructuredLogger(testLogger(t))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	store, err := mongostore.Open(ctx, testenv.MongoURI(t), testenv.MongoDatabase(t), mongostore.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	w := sdkworker.New(tc, testTaskQueue, sdkworker.Options{})
	w.RegisterWorkflow(sendAndAwait)
	w.RegisterWorkflow(sendHereAndAwait)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return &env{temporal: tc, store: store}
}

func startSMSC(t *testing.T, cfg smpptest.Config) (*smpptest.SMSC, string) {
	t.Helper()
	cfg.ReceiptDelay, cfg.ReceiptRetryInterval, cfg.ReceiptAttempts = 20*time.Millisecond, 100*time.Millisecond, 200
	cfg.Logger = testLogger(t).With("side", "smsc")
	smsc := smpptest.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- smsc.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return smsc, ln.Addr().String()
}

// runConnector runs a connector until the returned stop is called; stop
// returns Run's error.
func (e *env) runConnector(t *testing.T, co config.Connector, reg *prometheus.Registry) (stop func() error) {
	t.Helper()
	return e.runConnectorHere(t, co, reg, nil)
}

// runConnectorHere runs a connector that adds itself to here.
func (e *env) runConnectorHere(t *testing.T, co config.Connector, reg *prometheus.Registry, here *worker.HereConnectors) (stop func() error) {
	t.Helper()
	matcher := upstream.NewMatcher(e.store, lifecycle.TemporalSignaler{Client: e.temporal}, testLogger(t), reg)
	c := &worker.Connector{Config: co, Temporal: e.temporal, Matcher: matcher, Intents: e.store, Offers: e.store, Logger: testLogger(t), Registry: reg, Here: here}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(wait):
			return errors.New("Run did not return")
		}
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func (e *env) start(t *testing.T, connector, id string, texts ...string) client.WorkflowRun {
	t.Helper()
	return e.startWorkflow(t, sendAndAwait, connector, id, texts...)
}

// startHere starts sendHereAndAwait, which sends from the test's process.
func (e *env) startHere(t *testing.T, connector, id string, text string) client.WorkflowRun {
	t.Helper()
	return e.startWorkflow(t, sendHereAndAwait, connector, id, text)
}

func (e *env) startWorkflow(t *testing.T, workflow any, connector, id string, texts ...string) client.WorkflowRun {
	t.Helper()
	in := activities.SendInput{MessageID: testWorkflowID + id, ConnectorID: connector, From: "ACME", To: "+61412345678", Validity: time.Hour}
	for i, text := range texts {
		in.Parts = append(in.Parts, smsgw.Part{Seq: i + 1, ShortMessage: []byte(text)})
	}
	run, err := e.temporal.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: in.MessageID, TaskQueue: testTaskQueue, WorkflowExecutionTimeout: time.Minute,
	}, workflow, in)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func sentHere(t *testing.T, run client.WorkflowRun) (activities.SendHereResult, []workflows.ReceiptSignal) {
	t.Helper()
	var out sentFromHere
	outcome(t, run, &out)
	return out.Result, out.Receipts
}

func result(t *testing.T, run client.WorkflowRun) sent {
	t.Helper()
	var out sent
	outcome(t, run, &out)
	return out
}

// outcome waits for run's result into out.
func outcome(t *testing.T, run client.WorkflowRun, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := run.Get(ctx, out); err != nil {
		t.Fatalf("workflow %s: %v", run.GetID(), err)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConnector(t *testing.T) {
	e := startEnv(t)

	// Unbound, the connector does not poll: a send waits in Temporal,
	// never started, and runs once the SMSC is back.
	t.Run("polls only while bound", func(t *testing.T) {
		smsc, addr := startSMSC(t, smpptest.Config{})
		reg := prometheus.NewRegistry()
		co := config.Connector{ID: "bound", Address: addr, SystemID: "smsgw", TPS: 50, RebindMin: 50 * time.Millisecond, RebindMax: 200 * time.Millisecond}
		stop := e.runConnector(t, co, reg)
		if got := result(t, e.start(t, co.ID, "first", "hello")); len(got.Receipts) != 1 || got.Receipts[0].Receipt.UpstreamID != got.Result.UpstreamIDs[0] {
			t.Fatalf("first message: %+v", got)
		}

		smsc.Stop()
		waitUntil(t, "the connector to see the SMSC gone", func() bool { return gauge(t, reg, "smsgw_connector_bound_sessions") == 0 })
		time.Sleep(300 * time.Millisecond) // no slot, so no new poll, from now on
		var runs []client.WorkflowRun
		for i := range 3 {
			runs = append(runs, e.start(t, co.ID, fmt.Sprintf("while-down-%d", i), "hello again"))
		}
		time.Sleep(1500 * time.Millisecond)
		// A poll already waiting when the bind dropped may take one send,
		// which fails as not bound; no new poll starts while unbound. A
		// connector that kept polling would retry each send every 50-500ms.
		failed := 0
		for _, run := range runs {
			desc, err := e.temporal.DescribeWorkflowExecution(context.Background(), run.GetID(), "")
			if err != nil {
				t.Fatal(err)
			}
			pending := desc.GetPendingActivities()
			if len(pending) != 1 || pending[0].GetState() != enumspb.PENDING_ACTIVITY_STATE_SCHEDULED {
				t.Fatalf("while unbound the send is %v; want it waiting in the queue", pending)
			}
			failed += int(pending[0].GetAttempt()) - 1
			if f := pending[0].GetLastFailure(); f != nil && f.GetApplicationFailureInfo().GetType() != activities.ErrTypeNotBound {
				t.Errorf("a send failed while unbound with %v", f)
			}
		}
		if failed > 16 { // the polls waiting when the bind dropped (sendPollers: 16 for a window of 10)
			t.Errorf("%d attempts failed while unbound: the connector kept polling", failed)
		}
		if n := len(smsc.Submits()); n != 1 {
			t.Errorf("the SMSC has %d submit_sm, want only the first message's", n)
		}
		if err := smsc.Start(); err != nil {
			t.Fatal(err)
		}
		for _, run := range runs {
			if got := result(t, run); len(got.Receipts) != 1 {
				t.Errorf("after the SMSC came back: %+v", got)
			}
		}
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	// The connector's tps caps the submit_sm it sends, however many
	// messages wait: n submits take at least (n-1)/tps seconds, and no
	// second holds more than tps of them (plus the limiter's burst of one).
	t.Run("holds to its tps", func(t *testing.T) {
		smsc, addr := startSMSC(t, smpptest.Config{})
		reg := prometheus.NewRegistry()
		const tps, n = 5, 8
		co := config.Connector{ID: "limited", Address: addr, SystemID: "smsgw", TPS: tps}
		e.runConnector(t, co, reg)
		var runs []client.WorkflowRun
		for i := range n {
			runs = append(runs, e.start(t, co.ID, fmt.Sprintf("limited-%d", i), fmt.Sprintf("message %d", i)))
		}
		for _, run := range runs {
			if got := result(t, run); len(got.Receipts) != 1 {
				t.Errorf("%s: %+v", run.GetID(), got)
			}
		}
		if got := gauge(t, reg, "smsgw_connector_tps_limit"); got != tps {
			t.Errorf("tps limit gauge = %v, want %d", got, tps)
		}
		var at []time.Time
		for _, s := range smsc.Submits() {
			at = append(at, s.ReceivedAt)
		}
		slices.SortFunc(at, time.Time.Compare)
		if len(at) != n {
			t.Fatalf("the SMSC has %d submit_sm, want %d", len(at), n)
		}
		// 10% slack for the two clocks' scheduling.
		if span, least := at[n-1].Sub(at[0]), time.Duration(float64(n-1)/tps*0.9*float64(time.Second)); span < least {
			t.Errorf("%d submits within %v; at %d per second they take at least %v", n, span, tps, least)
		}
		for i := range at {
			inSecond := 0
			for _, b := range at[i:] {
				if b.Sub(at[i]) < time.Second {
					inSecond++
				}
			}
			if inSecond > tps+1 {
				t.Errorf("%d submits in the second from %s, want at most %d", inSecond, at[i].Format(time.StampMilli), tps+1)
			}
		}
	})

	// Throttled submits are retried with backoff until accepted.
	t.Run("throttling is retried", func(t *testing.T) {
		smsc, addr := startSMSC(t, smpptest.Config{ThrottleEvery: 2})
		co := config.Connector{ID: "throttled", Address: addr, SystemID: "smsgw"}
		e.runConnector(t, co, prometheus.NewRegistry())
		var runs []client.WorkflowRun
		for i := range 4 {
			runs = append(runs, e.start(t, co.ID, fmt.Sprintf("throttled-%d", i), fmt.Sprintf("message %d", i)))
		}
		for _, run := range runs {
			if got := result(t, run); len(got.Receipts) != 1 {
				t.Errorf("%s: %+v", run.GetID(), got)
			}
		}
		accepted, throttled := map[string]int{}, 0
		for _, s := range smsc.Submits() {
			if s.Status == 0 {
				accepted[string(s.ShortMessage)]++
			} else {
				throttled++
			}
		}
		if len(accepted) != 4 || throttled == 0 {
			t.Errorf("accepted %v, throttled %d", accepted, throttled)
		}
		for text, n := range accepted {
			if n != 1 {
				t.Errorf("%q accepted %d times", text, n)
			}
		}
	})

	// A connector bound in the process sends from there, in the
	// workflow's local activity, with no task on its queue; the receipt
	// comes back by signal. Another connector, or this one once stopped,
	// is not here: the send is left to the task queue.
	t.Run("sends from here while bound", func(t *testing.T) {
		smsc, addr := startSMSC(t, smpptest.Config{})
		reg := prometheus.NewRegistry()
		here = worker.NewHereConnectors()
		co := config.Connector{ID: "here", Address: addr, SystemID: "smsgw"}
		stop := e.runConnectorHere(t, co, reg, here)
		waitUntil(t, "the connector to bind", func() bool { return gauge(t, reg, "smsgw_connector_bound_sessions") == 1 })

		res, receipts := sentHere(t, e.startHere(t, co.ID, "here-1", "hello from here"))
		if !res.Here || len(res.Sent.UpstreamIDs) != 1 || len(receipts) != 1 || receipts[0].Receipt.UpstreamID != res.Sent.UpstreamIDs[0] {
			t.Fatalf("sent here: %+v, receipts %+v", res, receipts)
		}
		if n := len(smsc.Submits()); n != 1 {
			t.Errorf("the SMSC has %d submit_sm, want 1", n)
		}
		if res, _ := sentHere(t, e.startHere(t, "elsewhere", "here-2", "hello")); res.Here {
			t.Errorf("a connector not run here sent: %+v", res)
		}
		// One with a tps takes its sends from its queue only, whose rate
		// limit holds every replica to it.
		limitedReg := prometheus.NewRegistry()
		limited := config.Connector{ID: "here-limited", Address: addr, SystemID: "smsgw", TPS: 50}
		e.runConnectorHere(t, limited, limitedReg, here)
		waitUntil(t, "the limited connector to bind", func() bool { return gauge(t, limitedReg, "smsgw_connector_bound_sessions") == 1 })
		if res, _ := sentHere(t, e.startHere(t, limited.ID, "here-4", "hello")); res.Here {
			t.Errorf("a connector with a tps sent from here: %+v", res)
		}
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res, _ := sentHere(t, e.startHere(t, co.ID, "here-3", "hello")); res.Here {
			t.Errorf("a stopped connector sent: %+v", res)
		}
		if n := len(smsc.Submits()); n != 1 {
			t.Errorf("the SMSC has %d submit_sm, want 1", n)
		}
	})

	// Stopping mid-window: the sends in flight finish with their responses,
	// then every session unbinds.
	t.Run("drains on shutdown", func(t *testing.T) {
		smsc, addr := startSMSC(t, smpptest.Config{RespDelay: 700 * time.Millisecond})
		reg := prometheus.NewRegistry()
		co := config.Connector{ID: "draining", Address: addr, SystemID: "smsgw", Binds: 2, WindowSize: 5}
		stop := e.runConnector(t, co, reg)
		var runs []client.WorkflowRun
		for i := range 6 {
			runs = append(runs, e.start(t, co.ID, fmt.Sprintf("drain-%d", i), fmt.Sprintf("message %d", i)))
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := smsc.WaitSubmits(ctx, 6); err != nil {
			t.Fatal(err)
		}
		for _, s := range smsc.Submits() {
			if s.Answered {
				t.Fatal("a response came before the stop; the test needs the window full")
			}
		}
		if got := gauge(t, reg, "smsgw_connector_window_in_use"); got != 6 {
			t.Errorf("window in use = %v, want 6", got)
		}
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if n := smsc.Unbinds(); n != 2 {
			t.Errorf("the SMSC saw %d unbinds, want 2", n)
		}
		for _, s := range smsc.Submits() {
			if !s.Answered {
				t.Errorf("unbound before the response to %q", s.ShortMessage)
			}
		}
		if got := gauge(t, reg, "smsgw_connector_bound_sessions"); got != 0 {
			t.Errorf("bound sessions = %v after Run", got)
		}
		// Each send completed; receipts come once a connector is back.
		e.runConnector(t, co, prometheus.NewRegistry())
		for _, run := range runs {
			if got := result(t, run); len(got.Result.UpstreamIDs) != 1 || len(got.Receipts) != 1 {
				t.Errorf("%s: %+v", run.GetID(), got)
			}
		}
		if n := len(smsc.Submits()); n != 6 {
			t.Errorf("%d submit_sm for 6 messages", n)
		}
	})
}

func TestClientConfig(t *testing.T) {
	cc, err := worker.ClientConfig(config.Connector{
		ID: "x", Address: "h:1", SystemID: "s", BindMode: config.BindTransmitterReceiver, Binds: 2, TPS: 5,
		WindowSize: 7, RebindMin: time.Second, RebindMax: time.Minute, ReceiptIDFormat: "decimal", SubmitIDFormat: "hex", TLS: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if cc.BindMode != "transmitter+receiver" || cc.Binds != 2 || cc.TPS != 5 || cc.WindowSize != 7 || cc.TLS == nil || cc.TLS.ServerName != "h" ||
		cc.RebindMax != time.Minute || cc.ReceiptIDFormat != "decimal" || cc.SubmitIDFormat != "hex" {
		t.Errorf("client config %+v", cc)
	}
	if err := cc.Validate(); err != nil {
		t.Errorf("the client refuses a valid connector: %v", err)
	}
	if _, err := worker.ClientConfig(config.Connector{ID: "x", TLS: true, TLSCA: "/nonexistent"}); err == nil {
		t.Error("a missing CA file passed")
	}
}
