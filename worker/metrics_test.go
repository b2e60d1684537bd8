package worker

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The SDK's metrics reach the registry under their own names, with the
// tags of each call site as labels, even where one name is tagged
// differently in different places.
func TestTemporalMetricsOnTheRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, err := NewTemporalMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	ns := h.WithTags(map[string]string{"namespace": "default"})
	queue := ns.WithTags(map[string]string{"task_queue": "smsgw-messages"})
	queue.Timer("temporal_workflow_task_schedule_to_start_latency").Record(3 * time.Second)
	queue.Timer("temporal_workflow_task_schedule_to_start_latency").Record(10 * time.Millisecond)
	queue.Counter("temporal_request").Inc(2)
	ns.Counter("temporal_request").Inc(1) // the same name, fewer tags
	queue.WithTags(map[string]string{"task_queue": "smpp-out.sim"}).Gauge("temporal_num_pollers").Update(4)

	if n, err := testutil.GatherAndCount(reg); err != nil || n != 4 {
		t.Fatalf("gathered %d series, %v; want 4 without errors", n, err)
	}
	want := `
# HELP temporal_num_pollers Temporal SDK metric temporal_num_pollers (see the SDK's documentation).
# TYPE temporal_num_pollers gauge
temporal_num_pollers{namespace="default",task_queue="smpp-out.sim"} 4
# HELP temporal_request Temporal SDK metric temporal_request (see the SDK's documentation).
# TYPE temporal_request counter
temporal_request{namespace="default"} 1
temporal_request{namespace="default",task_queue="smsgw-messages"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "temporal_num_pollers", "temporal_request"); err != nil {
		t.Error(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "temporal_workflow_task_schedule_to_start_latency" {
			continue
		}
		hist := mf.GetMetric()[0].GetHistogram()
		if hist.GetSampleCount() != 2 || hist.GetSampleSum() < 3.009 || hist.GetSampleSum() > 3.011 {
			t.Errorf("histogram in seconds: %d samples, sum %v", hist.GetSampleCount(), hist.GetSampleSum())
		}
		return
	}
	t.Error("no schedule-to-start histogram")
}

// A metric asked for again, by a handler with the same tags made in
// another order, is the same series; other tags, or none (the handler
// without tags), are series of their own.
func TestTemporalMetricsFoundAgain(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, err := NewTemporalMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	a := h.WithTags(map[string]string{"namespace": "default"}).WithTags(map[string]string{"task_queue": "q"})
	b := h.WithTags(map[string]string{"task_queue": "q", "namespace": "default"})
	a.Counter("temporal_request").Inc(1)
	b.Counter("temporal_request").Inc(2)
	h.WithTags(map[string]string{"namespace": "default", "task_queue": "other"}).Counter("temporal_request").Inc(4)
	h.Counter("temporal_request").Inc(5)
	h.WithTags(map[string]string{}).Counter("temporal_request").Inc(6)
	a.Timer("temporal_request_latency").Record(time.Second)
	b.Timer("temporal_request_latency").Record(time.Second)
	want := `
# HELP temporal_request Temporal SDK metric temporal_request (see the SDK's documentation).
# TYPE temporal_request counter
temporal_request 11
temporal_request{namespace="default",task_queue="other"} 4
temporal_request{namespace="default",task_queue="q"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "temporal_request"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "temporal_request_latency"); err != nil || n != 1 {
		t.Errorf("%d latency series, %v; want 1", n, err)
	}
}

// WithTags keeps its own copy of the tags: a caller that changes its map
// afterwards changes no series, and the same tags added to the same
// handler again find the handler made the first time.
func TestTemporalMetricsTagsCopied(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, err := NewTemporalMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{"operation": "A"}
	a := h.WithTags(tags)
	tags["operation"] = "B"
	a.Counter("temporal_request").Inc(1)
	h.WithTags(tags).Counter("temporal_request").Inc(2)
	again := h.WithTags(map[string]string{"operation": "A"})
	again.Counter("temporal_request").Inc(4)
	if again != a {
		t.Error("the handler with the same tags was made again")
	}
	want := `
# HELP temporal_request Temporal SDK metric temporal_request (see the SDK's documentation).
# TYPE temporal_request counter
temporal_request{operation="A"} 5
temporal_request{operation="B"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "temporal_request"); err != nil {
		t.Error(err)
	}
}

// Two sets of tags never share a key, whatever their values hold, and
// handlers asked for at the same time with the same tags are one.
func TestTemporalMetricsTagsKept(t *testing.T) {
	if a, b := tagsKey(map[string]string{"a": "x\x00b\x00y"}), tagsKey(map[string]string{"a": "x", "b": "y"}); a == b {
		t.Errorf("two sets of tags share the key %q", a)
	}
	if a, b := tagsKey(map[string]string{"a": "1:b"}), tagsKey(map[string]string{"a": "1", "b": ""}); a == b {
		t.Errorf("two sets of tags share the key %q", a)
	}
	reg := prometheus.NewRegistry()
	h, err := NewTemporalMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				h.WithTags(map[string]string{"operation": "A", "namespace": "default"}).Counter("temporal_request").Inc(1)
			}
		})
	}
	wg.Wait()
	want := `
# HELP temporal_request Temporal SDK metric temporal_request (see the SDK's documentation).
# TYPE temporal_request counter
temporal_request{namespace="default",operation="A"} 800
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "temporal_request"); err != nil {
		t.Error(err)
	}
}

// BenchmarkTemporalMetrics is what the SDK does for each metric it
// records: ask for it by name, then record.
func BenchmarkTemporalMetrics(b *testing.B) {
	h, err := NewTemporalMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	q := h.WithTags(map[string]string{"namespace": "default", "task_queue": "smsgw-messages", "workflow_type": "MessageWorkflow", "worker_type": "WorkflowWorker"})
	for b.Loop() {
		q.Counter("temporal_workflow_task_execution_total").Inc(1)
		q.Timer("temporal_workflow_task_execution_latency").Record(time.Millisecond)
	}
}

// BenchmarkTemporalMetricsPerRequest is what the SDK does around each
// request to the server, several times a task: add the request's operation
// and namespace to the client's handler, then count the request and time
// it.
func BenchmarkTemporalMetricsPerRequest(b *testing.B) {
	h, err := NewTemporalMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	client := h.WithTags(map[string]string{"client_name": "temporal-go"})
	operations := []string{"RespondWorkflowTaskCompleted", "PollWorkflowTaskQueue", "RespondActivityTaskCompleted", "SignalWorkflowExecution"}
	i := 0
	for b.Loop() {
		m := client.WithTags(map[string]string{"operation": operations[i%len(operations)], "namespace": "default"})
		m.Counter("temporal_request").Inc(1)
		m.Timer("temporal_request_latency").Record(time.Millisecond)
		i++
	}
}
