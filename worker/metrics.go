package worker

import (
	"context"
	"log/slog"
	"slices"
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
}

// NewTemporalMetrics registers the SDK's metrics on reg and returns the
// handler to give the Temporal client (client.Options.MetricsHandler).
func NewTemporalMetrics(reg prometheus.Registerer) (*TemporalMetrics, error) {
	set := &metricSet{vecs: map[string]prometheus.Collector{}}
	if err := reg.Register(set); err != nil {
		return nil, err
	}
	return &TemporalMetrics{set: set}, nil
}

// WithTags implements client.MetricsHandler.
func (h *TemporalMetrics) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return &TemporalMetrics{set: h.set, tags: merged}
}

// Counter implements client.MetricsHandler.
func (h *TemporalMetrics) Counter(name string) client.MetricsCounter {
	c := h.set.vec(name, h.tags, func(opts metricOpts) prometheus.Collector {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: opts.help}, opts.labels)
	}).(*prometheus.CounterVec).With(h.tags)
	return counterFunc(func(d int64) { c.Add(float64(d)) })
}

// Gauge implements client.MetricsHandler.
func (h *TemporalMetrics) Gauge(name string) client.MetricsGauge {
	g := h.set.vec(name, h.tags, func(opts metricOpts) prometheus.Collector {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: opts.help}, opts.labels)
	}).(*prometheus.GaugeVec).With(h.tags)
	return gaugeFunc(g.Set)
}

// Timer implements client.MetricsHandler.
func (h *TemporalMetrics) Timer(name string) client.MetricsTimer {
	o := h.set.vec(name, h.tags, func(opts metricOpts) prometheus.Collector {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: opts.help, Buckets: TemporalLatencyBuckets}, opts.labels)
	}).(*prometheus.HistogramVec).With(h.tags)
	return timerFunc(func(d time.Duration) { o.Observe(d.Seconds()) })
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

// metricOpts is what a new vector of one name and label set is made with.
type metricOpts struct {
	help   string
	labels []string
}

// metricSet holds one vector per metric name and label set, and collects
// them all. It describes nothing (an unchecked collector): the names and
// label sets are known only as the SDK uses them.
type metricSet struct {
	mu   sync.Mutex
	vecs map[string]prometheus.Collector // by name and label names
}

// vec returns the vector of name with the label names of tags, made by
// newVec on first use.
func (s *metricSet) vec(name string, tags map[string]string, newVec func(metricOpts) prometheus.Collector) prometheus.Collector {
	labels := labelNames(tags)
	key := name + "\x00" + strings.Join(labels, "\x00")
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vecs[key]
	if !ok {
		v = newVec(metricOpts{help: "Temporal SDK metric " + name + " (see the SDK's documentation).", labels: labels})
		s.vecs[key] = v
	}
	return v
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
