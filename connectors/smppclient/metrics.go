package smppclient

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw/internal/promreg"
)

// metrics are one connector's view of the shared connector and upstream
// metric families. Their names are part of the contract in
// deploy/check/metrics.go, which the dashboard and alert rules are checked
// against.
type metrics struct {
	bound    prometheus.Gauge // sessions bound, of every mode
	window   prometheus.Gauge // submit_sm awaiting their response, over all sessions
	tpsLimit prometheus.Gauge
	latency  prometheus.Observer
	submits  *prometheus.CounterVec // by command_status name, or "in_doubt"
	receipts *prometheus.CounterVec // by result: ok, handler_error, invalid
	mo       *prometheus.CounterVec // by result: ok, handler_error, invalid
	binds    *prometheus.CounterVec // by result: ok, refused, error
}

// newMetrics registers the metric families on reg, or reuses the ones another
// client of the same process registered there, and curries them with the
// connector label.
func newMetrics(reg prometheus.Registerer, connector string) (*metrics, error) {
	label := []string{"connector"}
	bound := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "smsgw_connector_bound_sessions",
		Help: "Sessions bound to the upstream SMSC now, of every bind mode.",
	}, label)
	window := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "smsgw_connector_window_in_use",
		Help: "submit_sm sent and awaiting their submit_sm_resp, over all sessions.",
	}, label)
	tpsLimit := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "smsgw_connector_tps_limit",
		Help: "The connector's configured submit rate per second (0: no limit).",
	}, label)
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "smsgw_upstream_submit_duration_seconds",
		Help:    "Time from sending submit_sm to its response.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, label)
	submits := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smsgw_upstream_submits_total",
		Help: "submit_sm by the command_status of their response (in_doubt: no response).",
	}, []string{"connector", "status"})
	receipts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smsgw_upstream_receipts_total",
		Help: "Delivery receipts received, by result: ok (held), handler_error (SMSC told to retry), invalid.",
	}, []string{"connector", "result"})
	mo := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smsgw_upstream_mo_total",
		Help: "Mobile-originated messages received, by result: ok (held), handler_error (SMSC told to retry), invalid.",
	}, []string{"connector", "result"})
	binds := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smsgw_upstream_bind_attempts_total",
		Help: "Attempts to bind, by result: ok, refused (by the SMSC), error (network).",
	}, []string{"connector", "result"})

	var errs [8]error
	bound, errs[0] = promreg.Register(reg, bound)
	window, errs[1] = promreg.Register(reg, window)
	latency, errs[2] = promreg.Register(reg, latency)
	submits, errs[3] = promreg.Register(reg, submits)
	receipts, errs[4] = promreg.Register(reg, receipts)
	mo, errs[5] = promreg.Register(reg, mo)
	binds, errs[6] = promreg.Register(reg, binds)
	tpsLimit, errs[7] = promreg.Register(reg, tpsLimit)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	l := prometheus.Labels{"connector": connector}
	return &metrics{
		bound:    bound.With(l),
		window:   window.With(l),
		tpsLimit: tpsLimit.With(l),
		latency:  latency.With(l),
		submits:  submits.MustCurryWith(l),
		receipts: receipts.MustCurryWith(l),
		mo:       mo.MustCurryWith(l),
		binds:    binds.MustCurryWith(l),
	}, nil
}
