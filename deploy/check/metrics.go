package main

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// metricKind says which series names a metric family exposes.
type metricKind int

const (
	counter metricKind = iota
	gauge
	histogram // exposes <name>_bucket, <name>_sum and <name>_count only
)

// metric is one metric family the gateway (or the Temporal SDK inside it) exports.
type metric struct {
	kind metricKind
	// labels the family carries. nil: not checked (the Temporal SDK's).
	labels []string
	// values of labels whose values are a closed set.
	values map[string][]string
	// required: the dashboard must show it.
	required bool
}

// knownMetrics is the gateway's metrics contract. Alert rules and dashboard
// panels may name nothing else, so a renamed metric breaks this check
// instead of silently emptying a panel or muting an alert.
var knownMetrics = map[string]metric{
	"smsgw_submissions_total":                          {kind: counter, labels: []string{"entry_point", "result"}, values: map[string][]string{"entry_point": {"rest", "grpc", "smpp", "email"}}, required: true},
	"smsgw_reroutes_total":                             {kind: counter, labels: []string{"connector", "kind"}, values: map[string][]string{"kind": {"not_bound", "retries_exhausted", "reroute_error", "receipt_error"}}},
	"smsgw_api_requests_total":                         {kind: counter, labels: []string{"method", "code"}},
	"smsgw_api_request_duration_seconds":               {kind: histogram, labels: []string{"method", "code"}, required: true},
	"smsgw_api_panics_total":                           {kind: counter, labels: []string{"method"}},
	"smsgw_upstream_submits_total":                     {kind: counter, labels: []string{"connector", "status"}},
	"smsgw_upstream_submit_duration_seconds":           {kind: histogram, labels: []string{"connector"}, required: true},
	"smsgw_connector_bound_sessions":                   {kind: gauge, labels: []string{"connector"}, required: true},
	"smsgw_connector_window_in_use":                    {kind: gauge, labels: []string{"connector"}, required: true},
	"smsgw_connector_tps_limit":                        {kind: gauge, labels: []string{"connector"}},
	"smsgw_upstream_bind_attempts_total":               {kind: counter, labels: []string{"connector", "result"}, values: map[string][]string{"result": {"ok", "refused", "error"}}},
	"smsgw_upstream_receipts_total":                    {kind: counter, labels: []string{"connector", "result"}, values: map[string][]string{"result": {"ok", "handler_error", "invalid"}}},
	"smsgw_upstream_mo_total":                          {kind: counter, labels: []string{"connector", "result"}, values: map[string][]string{"result": {"ok", "handler_error", "invalid"}}},
	"smsgw_receipts_total":                             {kind: counter, labels: []string{"connector", "result"}, values: map[string][]string{"result": {"matched", "parked", "rematched", "duplicate", "late"}}, required: true},
	"smsgw_receipts_unmatched":                         {kind: gauge, required: true},
	"smsgw_webhook_attempts_total":                     {kind: counter, labels: []string{"result"}, values: map[string][]string{"result": {"ok", "retry", "failed", "blocked"}}, required: true},
	"smsgw_notifications_total":                        {kind: counter, labels: []string{"channel", "result"}, values: map[string][]string{"channel": {"webhook", "smpp", "email"}, "result": {"ok", "retry", "refused"}}},
	"smsgw_mo_total":                                   {kind: counter, labels: []string{"result"}, values: map[string][]string{"result": {"routed", "unrouted"}}},
	"smsgw_email_submissions_total":                    {kind: counter, labels: []string{"result"}, values: map[string][]string{"result": {"accepted", "duplicate", "invalid", "forbidden", "unavailable", "throttled", "error", "auth_failed", "sender_refused", "recipient_refused", "too_large", "unreadable"}}},
	"smsgw_smpp_bound_sessions":                        {kind: gauge, labels: []string{"customer", "type"}, values: map[string][]string{"type": {"transmitter", "receiver", "transceiver"}}},
	"smsgw_smpp_bind_attempts_total":                   {kind: counter, labels: []string{"result"}, values: map[string][]string{"result": {"ok", "refused"}}},
	"smsgw_smpp_pdus_total":                            {kind: counter, labels: []string{"direction", "command", "status"}, values: map[string][]string{"direction": {"in", "out"}}},
	"smsgw_smpp_window_in_use":                         {kind: gauge, labels: []string{"customer", "window"}, values: map[string][]string{"window": {"submit", "deliver"}}},
	"smsgw_smpp_throttled_total":                       {kind: counter, labels: []string{"customer"}},
	"smsgw_smpp_deliveries_total":                      {kind: counter, labels: []string{"customer", "kind", "result"}, values: map[string][]string{"kind": {"receipt", "mo"}, "result": {"ok", "refused", "failed"}}},
	"smsgw_smpp_direct_deliveries_total":               {kind: counter, labels: []string{"customer", "kind", "result"}, values: map[string][]string{"kind": {"receipt", "mo"}, "result": {"ok", "no_receiver", "refused", "failed"}}},
	"smsgw_smpp_outbox_pending":                        {kind: gauge, labels: []string{"customer"}},
	"smsgw_smpp_outbox_expired_total":                  {kind: counter, labels: []string{"customer"}},
	"smsgw_smpp_session_panics_total":                  {kind: counter},
	"smsgw_workflows_running":                          {kind: gauge},
	"smsgw_retention_purged_total":                     {kind: counter, labels: []string{"store"}, values: map[string][]string{"store": {"events", "reporting"}}},
	"smsgw_retention_passes_total":                     {kind: counter, labels: []string{"store", "outcome"}, values: map[string][]string{"store": {"events", "reporting"}, "outcome": {"ok", "error"}}},
	"smsgw_rule_refusals_total":                        {kind: counter, labels: []string{"customer", "reason"}, values: map[string][]string{"reason": {"OPTED_OUT", "DESTINATION_NOT_ALLOWED", "CONTENT_REFUSED", "VELOCITY_LIMIT", "UNUSUAL_DESTINATION_TRAFFIC"}}},
	"smsgw_rule_matches_total":                         {kind: counter, labels: []string{"customer", "kind", "action"}, values: map[string][]string{"kind": {"content", "velocity", "pumping"}, "action": {"refuse", "hold", "rewriteSender", "tag", "alert"}}},
	"smsgw_pumping_guard_flags_total":                  {kind: counter, labels: []string{"customer", "action"}, values: map[string][]string{"action": {"refuse", "hold", "alert"}}},
	"smsgw_optout_changes_total":                       {kind: counter, labels: []string{"source", "change"}, values: map[string][]string{"source": {"mo"}, "change": {"opt_out", "opt_in"}}},
	"temporal_workflow_task_schedule_to_start_latency": {kind: histogram},
	"temporal_activity_schedule_to_start_latency":      {kind: histogram},
}

// targetLabels are added to every series by scraping (Prometheus Operator
// ServiceMonitor defaults plus the chart's relabelings).
var targetLabels = []string{"job", "instance", "namespace", "pod", "service", "container", "endpoint", "role", "connector_group"}

// resolveSeries maps a series name to its metric family, and says whether
// the name is one the family exposes.
func resolveSeries(name string) (family string, m metric, ok bool) {
	if m, found := knownMetrics[name]; found {
		return name, m, m.kind != histogram
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, cut := strings.CutSuffix(name, suffix)
		if !cut {
			continue
		}
		if m, found := knownMetrics[base]; found && m.kind == histogram {
			return base, m, true
		}
	}
	return "", metric{}, false
}

// promql parses PromQL with the default functions.
var promql = parser.NewParser(parser.Options{})

// grafanaVariable matches Grafana's interval variables, which are not PromQL.
var grafanaVariable = regexp.MustCompile(`\$\{?__(rate_interval|interval|range)(_ms|_s)?\}?`)

// checkExpr parses a PromQL expression and checks every series it selects
// against knownMetrics. It returns the metric families used.
func checkExpr(expr string) (families []string, problems []error) {
	if strings.TrimSpace(expr) == "" {
		return nil, []error{fmt.Errorf("empty expression")}
	}
	ast, err := promql.ParseExpr(grafanaVariable.ReplaceAllString(expr, "5m"))
	if err != nil {
		return nil, []error{fmt.Errorf("expression %q does not parse: %w", oneLine(expr), err)}
	}
	seen := map[string]bool{}
	parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
		}
		family, m, known := resolveSeries(name)
		if !known {
			problems = append(problems, fmt.Errorf("expression %q selects %q, which is not one of the gateway's metrics (%s)", oneLine(expr), name, strings.Join(knownSeriesNames(), ", ")))
			return nil
		}
		seen[family] = true
		problems = append(problems, checkMatchers(expr, name, m, vs.LabelMatchers)...)
		return nil
	})
	for f := range seen {
		families = append(families, f)
	}
	sort.Strings(families)
	return families, problems
}

// checkMatchers checks the label matchers of one selector: the label must
// exist on the metric, and an equality on a closed set must name a member.
func checkMatchers(expr, series string, m metric, matchers []*labels.Matcher) []error {
	if m.labels == nil {
		return nil
	}
	var problems []error
	for _, lm := range matchers {
		if lm.Name == labels.MetricName {
			continue
		}
		allowed := slices.Contains(m.labels, lm.Name) || slices.Contains(targetLabels, lm.Name) ||
			(lm.Name == "le" && strings.HasSuffix(series, "_bucket"))
		if !allowed {
			problems = append(problems, fmt.Errorf("expression %q: %s has no label %q (it has %s)", oneLine(expr), series, lm.Name, strings.Join(m.labels, ", ")))
			continue
		}
		closed, ok := m.values[lm.Name]
		if ok && (lm.Type == labels.MatchEqual || lm.Type == labels.MatchNotEqual) && !slices.Contains(closed, lm.Value) {
			problems = append(problems, fmt.Errorf("expression %q: %s{%s} is never %q (values: %s)", oneLine(expr), series, lm.Name, lm.Value, strings.Join(closed, ", ")))
		}
	}
	return problems
}

// knownSeriesNames lists every series name the contract allows.
func knownSeriesNames() []string {
	var names []string
	for name, m := range knownMetrics {
		if m.kind == histogram {
			names = append(names, name+"_bucket", name+"_sum", name+"_count")
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return s
}
