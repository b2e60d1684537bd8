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
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		bound: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "smsgw_smpp_bound_sessions",
			Help: "Customers' SMPP sessions bound to this replica, by customer and bind type.",
		}, []string{"customer", "type"}),
		bindAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsgw_smpp_bind_attempts_total",
			Help: "Bind requests from customers, by result: ok or refused.",
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
	for _, c := range []prometheus.Collector{m.bound, m.bindAttempts, m.pdus, m.window, m.throttled, m.deliveries, m.direct, m.pending, m.expired, m.panics} {
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
