package workflows

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/routing"
)

// Workflows started by one version of the code must replay on the next:
// testdata/histories holds histories recorded on a Temporal dev server, and
// the replay test runs the current code over each of them. Before changing
// workflow code, record the histories of the code as it is, named for what
// sets it apart:
//
//	go test ./workflows -run TestReplayRecordedHistories -record-histories=<version>
//
// and keep them all: each file is <scenario>.<version>.json.
var recordHistories = flag.String("record-histories", "",
	"run the replay scenarios on a Temporal dev server and add their histories to testdata/histories, as <scenario>.<this>.json")

const historiesDir = "testdata/histories"

func TestReplayRecordedHistories(t *testing.T) {
	if *recordHistories != "" {
		recordScenarios(t, *recordHistories)
	}
	files, err := filepath.Glob(filepath.Join(historiesDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no recorded histories in %s", historiesDir)
	}
	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflow(MessageWorkflow)
	replayer.RegisterWorkflow(InboundWorkflow)
	replayer.RegisterWorkflow(ReassemblyWorkflow)
	replayer.RegisterWorkflow(RedeliverWorkflow)
	logger := tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			if err := replayer.ReplayWorkflowHistoryFromJSONFile(logger, f); err != nil {
				t.Fatalf("the current code does not replay %s: %v", f, err)
			}
		})
	}
}

// replayConfig has a customer per notification behaviour the scenarios need.
const replayConfig = `
customers:
  - {id: ok, apiKeys: ["plain:k1"], webhook: {url: "http://127.0.0.1:1/ok"}}
  - {id: flaky, apiKeys: ["plain:k2"], webhook: {url: "http://127.0.0.1:1/flaky"}}
  - {id: chatty, apiKeys: ["plain:k3"], webhook: {url: "http://127.0.0.1:1/chatty"}, notify: {statuses: all}}
  - {id: refusing, apiKeys: ["plain:k4"], webhook: {url: "http://127.0.0.1:1/refusing"}}
  - {id: down, apiKeys: ["plain:k5"], webhook: {url: "http://127.0.0.1:1/down"}}
  - {id: shop, apiKeys: ["plain:k6"], webhook: {url: "http://127.0.0.1:1/shop"}, numbers: [{number: "+61400000001"}]}
connectors:
  - {id: sim, address: "127.0.0.1:2776"}
routes:
  - {name: all, prefixes: ["+"], connectors: [sim]}
`

// scriptedWebhook fails each customer's first deliveries as its script says.
type scriptedWebhook struct {
	mu    sync.Mutex
	fails map[string]int // retryable failures left, by customer
}

func (w *scriptedWebhook) Deliver(_ context.Context, d smsgw.Delivery) error {
	if d.CustomerID == "refusing" {
		return fmt.Errorf("HTTP 410: %w", smsgw.ErrRefused)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fails[d.CustomerID] > 0 {
		w.fails[d.CustomerID]--
		return errors.New("HTTP 503")
	}
	return nil
}

// recordScenarios runs each scenario to its end on a dev server and writes
// its history.
func recordScenarios(t *testing.T, version string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := client.Dial(client.Options{HostPort: testenv.TemporalAddress(t), Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg, err := config.Parse([]byte(replayConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	live := config.Static(cfg)
	mem := &inboundMem{records: map[string]smsgw.InboundRecord{}, events: map[string]smsgw.Event{}}
	hook := &scriptedWebhook{fails: map[string]int{"flaky": 2, "chatty": 2, "down": 7, "shop": 2}}
	logger := slog.New(slog.DiscardHandler)
	w := worker.New(c, TaskQueue, worker.Options{})
	w.RegisterWorkflow(MessageWorkflow)
	w.RegisterActivity(&activities.Activities{
		Config: live, Routes: routing.NewCache(live), Events: mem, Reports: &memReports{rows: map[string]smsgw.MessageRecord{}},
		Encoder: oneGSMPart{}, Channels: map[string]activities.Channel{smsgw.ChannelWebhook: hook}, Logger: logger, Now: time.Now,
	})
	in, err := activities.NewInbound(live, mem, mem, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	RegisterInbound(w, in)
	send := worker.New(c, SendTaskQueue("sim"), worker.Options{})
	send.RegisterActivityWithOptions(func(ctx context.Context, in activities.SendInput) (activities.SendResult, error) {
		id := in.MessageID
		time.AfterFunc(500*time.Millisecond, func() {
			_ = c.SignalWorkflow(context.Background(), id, "", SignalReceipt, ReceiptSignal{
				Receipt: smsgw.Receipt{ConnectorID: "sim", UpstreamID: "u-" + id, Stat: "DELIVRD"}, Segment: 1,
			})
		})
		return activities.SendResult{UpstreamIDs: []string{"u-" + id}, SentAt: time.Now()}, nil
	}, activity.RegisterOptions{Name: activities.SendName})
	for _, wk := range []worker.Worker{w, send} {
		if err := wk.Start(); err != nil {
			t.Fatal(err)
		}
		defer wk.Stop()
	}

	planner := activities.Planner{Config: live, Routes: routing.NewCache(live), Encoder: oneGSMPart{}}
	message := func(customer string) (string, any, any) {
		m := smsgw.Message{ID: "replay-" + customer, CustomerID: customer, EntryPoint: smsgw.EntryREST,
			From: "TEST", To: "+61412345678", Text: "hello", Validity: time.Hour, AcceptedAt: time.Now()}
		plan, err := planner.Plan(m)
		if err != nil {
			t.Fatal(err)
		}
		return m.ID, MessageWorkflow, MessageInput{Message: m, Plan: &plan}
	}
	scenarios := map[string]func() (string, any, any){
		"message-webhook-answers":      func() (string, any, any) { return message("ok") },
		"message-webhook-fails-twice":  func() (string, any, any) { return message("flaky") },
		"message-all-statuses-retried": func() (string, any, any) { return message("chatty") },
		"message-webhook-refuses":      func() (string, any, any) { return message("refusing") },
		"message-webhook-long-retry":   func() (string, any, any) { return message("down") },
		"inbound-webhook-fails-twice": func() (string, any, any) {
			return "replay-inbound", InboundWorkflow, InboundInput{Message: smsgw.InboundMessage{
				ID: "replay-inbound", Connector: "sim", From: "+61412345678", To: "+61400000001", Text: "hi", ReceivedAt: time.Now(),
			}}
		},
	}
	var wg sync.WaitGroup
	for name, start := range scenarios {
		wg.Go(func() {
			id, wf, input := start()
			run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: TaskQueue}, wf, input)
			if err == nil {
				err = run.Get(ctx, nil)
			}
			if err != nil {
				t.Errorf("scenario %s: %v", name, err)
				return
			}
			writeHistory(t, c, id, filepath.Join(historiesDir, name+"."+version+".json"))
		})
	}
	wg.Wait()
}

func writeHistory(t *testing.T, c client.Client, id, path string) {
	var events []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Errorf("history of %s: %v", id, err)
			return
		}
		events = append(events, e)
	}
	raw, err := protojson.MarshalOptions{Indent: " "}.Marshal(&historypb.History{Events: events})
	if err == nil {
		err = os.MkdirAll(filepath.Dir(path), 0o755)
	}
	if err == nil {
		err = os.WriteFile(path, raw, 0o644)
	}
	if err != nil {
		t.Errorf("write %s: %v", path, err)
	}
}
