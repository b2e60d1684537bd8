package smppserver

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// metrics are the server's Prometheus metric families.
type metrics struct {
	bound        *prometheus.GaugeVec   // customer, type
	bindAttempts *prometheus.CounterVec // result: ok, refused
	pdus         *prometheus.CounterVec // direction, command, status
	window       *prometheus.GaugeVec   // customer, window: submit, deliver
	throttled    *prometheus.CounterVec // customer
	deliveries   *prometheus.CounterVec // customer, kind, result: ok, refused, timeout
	direct       *prometheus.CounterVec // customer, kind, result: ok, no_receiver, refused, failed
	pending      *prometheus.GaugeVec   // customer
	expired      *prometheus.CounterVec // customer
	panics       prometheus.Counter
	unbound      prometheus.GaugeFunc   // connections waiting to bind
	shed         *prometheus.CounterVec // reason
	bindDelayed  *prometheus.CounterVec // by: source, system_id
	lockouts     prometheus.Counter
}

// newMetrics registers the server's metrics; unbound counts the
// connections waiting to bind.
func newMetrics(reg prometheus.Registerer, unbound func() int) (*metrics, error) {
	m := &metrics{
		unbound: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "smsgw_smpp_unbound_connections",
			Help: "Connections to this replica that have not bound yet.",
		}, func() float64 { return float64(unbound()) }),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsgw_smpp_connections_shed_total",
			Help: "Unbound connections closed to protect the server, by reason: evicted_per_source and evicted_total (an idle one closed for a newcomer, over the per-source or the total cap), " +
				"refused_per_source and refused_total (the newcomer closed: every connection in the way was binding), first_pdu_timeout (no PDU in time).",
		}, []string{"reason"}),
		bindDelayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsgw_smpp_bind_delayed_total",
			Help: "Binds held back before their password check because of earlier failed binds, by whose failures: source or system_id.",
		}, []string{"by"}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smsgw_smpp_bind_lockouts_total",
			Help: "Sources locked out after repeated failed binds.",
		}),
		bound: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "smsgw_smpp_bound_sessions",
			Help: "Customers' SMPP sessions bound to this replica, by customer and bind type.",
		}, []string{"customer", "type"}),
		bindAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsgw_smpp_bind_attempts_total",
			Help: "Bind requests from customers, by result: ok, refused, or locked_out (refused unchecked: its source failed too often).",
		}, []string{"result"}),
		pdus: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsgw_smpp_pdus_total",
			Help: "PDUs received (in) and sent (out) on customers' sessions, by command and command_status.",
		}, []string{"direction", "command", "status"}),
		window: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "smsgw_smpp_window_in_use",
			Help: "Requests outstanding on customers' sessions: submits being accepted (submit) and deliver_sm awaiting deliver_sm_resp (deliver).",
		}, []string{"customer", "window"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsgw_smpp_throttled_total",
			Help: "Submissions refused with ESME_RTHROTTLED or ESME_RMSGQFUL, by customer.",
		}, []string{"customer"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsgw_smpp_deliveries_total",
			Help: "deliver_sm sent to customers, by kind (receipt, mo) and result: ok, refused (non-zero deliver_sm_resp), failed (no answer).",
		}, []string{"customer", "kind", "result"}),
		direct: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsgw_smpp_direct_deliveries_total",
			Help: "Receipts and MO the smpp channel tried to deliver straight to a receiver bind in the same process, by kind (receipt, mo) and result: ok (no outbox write), or why it went to the outbox: no_receiver, refused (non-zero deliver_sm_resp), failed (no answer).",
		}, []string{"customer", "kind", "result"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "smsgw_smpp_outbox_pending",
			Help: "Receipts and MO waiting in the outbox for a customer's receiver bind.",
		}, []string{"customer"}),
		expired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsgw_smpp_outbox_expired_total",
			Help: "Outbox items dropped at the end of their validity, never delivered.",
		}, []string{"customer"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smsgw_smpp_session_panics_total",
			Help: "Sessions ended by a bug in the server; the server keeps serving the others.",
		}),
	}
	for _, c := range []prometheus.Collector{m.bound, m.bindAttempts, m.pdus, m.window, m.throttled, m.deliveries, m.direct, m.pending, m.expired, m.panics,
		m.unbound, m.shed, m.bindDelayed, m.lockouts} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("smppserver: register metrics: %w", err)
		}
	}
	return m, nil
}

// countPDU counts one PDU, read from its header.
func (m *metrics) countPDU(direction string, raw []byte) {
	h, ok := smppwire.HeaderOf(raw)
	if !ok {
		return
	}
	status := "other"
	if _, known := smppstatus.Lookup(h.Status); known {
		status = smppstatus.Name(h.Status)
	}
	m.pdus.WithLabelValues(direction, smppwire.CommandName(h.CommandID), status).Inc()
}
