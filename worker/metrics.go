package worker

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw/internal/promreg"
)

// The Temporal SDK reports its own metrics (task schedule-to-start
// latencies, poll results, slots in use, request failures, …) through a
// client.MetricsHandler. TemporalMetrics turns them into Prometheus metrics
// on the process's registry, under the SDK's names: counters as counters,
// gauges as gauges and timers as histograms in seconds
// (temporal_workflow_task_schedule_to_start_latency_bucket, …). The SDK
// tags a metric differently at different call sites, so each name may carry
// several label sets; Prometheus accepts that from an unchecked collector.

// TemporalLatencyBuckets are the histogram buckets of the SDK's timers, in
// seconds: from a millisecond to a minute, fine where the alerts look
// (a task waiting more than 2 or 5 s).
var TemporalLatencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 20, 30, 60}

// TemporalMetrics is a client.MetricsHandler whose metrics are collected
// by a Prometheus registry. Create it with NewTemporalMetrics.
type TemporalMetrics struct {
	set  *metricSet
	tags map[string]string
	key  string // tagsKey(tags), made once by WithTags
	// children are the handlers WithTags made from this one, by the key of
	// the tags it added: the SDK adds the same few tags (the request's
	// operation, the task queue) to the same handlers again and again,
	// several times a task.
	children sync.Map
}

// NewTemporalMetrics registers the SDK's metrics on reg and returns the
// handler to give the Temporal client (client.Options.MetricsHandler).
func NewTemporalMetrics(reg prometheus.Registerer) (*TemporalMetrics, error) {
	set := &metricSet{vecs: map[string]prometheus.Collector{}, metrics: map[metricKey]any{}}
	if err := reg.Register(set); err != nil {
		return nil, err
	}
	return &TemporalMetrics{set: set}, nil
}

// WithTags implements client.MetricsHandler. A handler with the same tags
// added to the same handler is made once and found again.
func (h *TemporalMetrics) WithTags(tags map[string]string) client.MetricsHandler {
	added := tagsKey(tags)
	if c, ok := h.children.Load(added); ok {
		return c.(*TemporalMetrics)
	}
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	c, _ := h.children.LoadOrStore(added, &TemporalMetrics{set: h.set, tags: merged, key: tagsKey(merged)})
	return c.(*TemporalMetrics)
}

// Counter implements client.MetricsHandler.
func (h *TemporalMetrics) Counter(name string) client.MetricsCounter {
	return h.set.metric("counter", name, h, func(opts metricOpts) prometheus.Collector {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: opts.help}, opts.labels)
	}, func(vec prometheus.Collector, tags map[string]string) any {
		return &counter{vec.(*prometheus.CounterVec).With(tags)}
	}).(*counter)
}

// Gauge implements client.MetricsHandler.
func (h *TemporalMetrics) Gauge(name string) client.MetricsGauge {
	return h.set.metric("gauge", name, h, func(opts metricOpts) prometheus.Collector {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: opts.help}, opts.labels)
	}, func(vec prometheus.Collector, tags map[string]string) any {
		return &gauge{vec.(*prometheus.GaugeVec).With(tags)}
	}).(*gauge)
}

// Timer implements client.MetricsHandler.
func (h *TemporalMetrics) Timer(name string) client.MetricsTimer {
	return h.set.metric("timer", name, h, func(opts metricOpts) prometheus.Collector {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: opts.help, Buckets: TemporalLatencyBuckets}, opts.labels)
	}, func(vec prometheus.Collector, tags map[string]string) any {
		return &timer{vec.(*prometheus.HistogramVec).With(tags)}
	}).(*timer)
}

type counter struct{ c prometheus.Counter }

func (c counter) Inc(d int64) { c.c.Add(float64(d)) }

type gauge struct{ g prometheus.Gauge }

func (g gauge) Update(v float64) { g.g.Set(v) }

type timer struct{ o prometheus.Observer }

func (t timer) Record(d time.Duration) { t.o.Observe(d.Seconds()) }

// metricOpts is what a new vector of one name and label set is made with.
type metricOpts struct {
	help   string
	labels []string
}

// metricSet holds one vector per metric name and label set, and collects
// them all. It describes nothing (an unchecked collector): the names and
// label sets are known only as the SDK uses them.
//
// The SDK asks for a metric by name each time it records one (several
// times a task), so each metric of a name and label values, once made, is
// kept and found again by one map lookup.
type metricSet struct {
	mu      sync.Mutex
	vecs    map[string]prometheus.Collector // by name and label names
	metrics map[metricKey]any
}

// metricKey names one metric: its kind, name and tags (TemporalMetrics.key).
type metricKey struct{ kind, name, tags string }

// metric returns the metric of kind and name with h's tags: of the vector
// of that name and label names (made by newVec on first use), the child
// that with makes for h's tags.
func (s *metricSet) metric(kind, name string, h *TemporalMetrics, newVec func(metricOpts) prometheus.Collector, with func(prometheus.Collector, map[string]string) any) any {
	key := metricKey{kind, name, h.key}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.metrics[key]; ok {
		return m
	}
	labels := labelNames(h.tags)
	vecKey := name + "\x00" + strings.Join(labels, "\x00")
	v, ok := s.vecs[vecKey]
	if !ok {
		v = newVec(metricOpts{help: "Temporal SDK metric " + name + " (see the SDK's documentation).", labels: labels})
		s.vecs[vecKey] = v
	}
	m := with(v, h.tags)
	s.metrics[key] = m
	return m
}

// tagsKey names a set of tags: its names and values, sorted by name, each
// after its length, so that no two sets of tags share a key.
func tagsKey(tags map[string]string) string {
	var room [8]string // the SDK adds one to a handful of tags at a time
	names := room[:0]
	size := 0
	for k, v := range tags {
		names = append(names, k)
		size += len(k) + len(v) + 8
	}
	slices.Sort(names)
	var b strings.Builder
	b.Grow(size)
	for _, k := range names {
		for _, part := range [2]string{k, tags[k]} {
			b.WriteString(strconv.Itoa(len(part)))
			b.WriteByte(':')
			b.WriteString(part)
		}
	}
	return b.String()
}

// labelNames returns the sorted label names of tags.
func labelNames(tags map[string]string) []string {
	labels := make([]string, 0, len(tags))
	for k := range tags {
		labels = append(labels, k)
	}
	slices.Sort(labels)
	return labels
}

// Describe implements prometheus.Collector: it describes nothing, which
// makes the set an unchecked collector.
func (s *metricSet) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (s *metricSet) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	vecs := make([]prometheus.Collector, 0, len(s.vecs))
	for _, v := range s.vecs {
		vecs = append(vecs, v)
	}
	s.mu.Unlock()
	for _, v := range vecs {
		v.Collect(ch)
	}
}

// RunningQuery is the visibility query of the message workflows running.
const RunningQuery = "WorkflowType = 'MessageWorkflow' AND ExecutionStatus = 'Running'"

// CountRunning keeps the gauge smsgw_workflows_running on reg at the number
// of message workflows running in namespace, read from Temporal's
// visibility store every interval until ctx is done. Every worker replica
// reports the same count: dashboards take the max.
func CountRunning(ctx context.Context, c client.Client, namespace string, reg prometheus.Registerer, interval time.Duration, logger *slog.Logger) error {
	gauge, err := promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "smsgw_workflows_running",
		Help: "Message workflows running (accepted and not final), as Temporal's visibility store counted them last.",
	}))
	if err != nil {
		return err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, interval)
		resp, err := c.CountWorkflow(cctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace, Query: RunningQuery})
		cancel()
		switch {
		case err == nil:
			gauge.Set(float64(resp.GetCount()))
		case ctx.Err() == nil:
			logger.Warn("running workflows not counted", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
