package main

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"
)

// severities an alert may carry (Alertmanager routes on them).
var severities = []string{"critical", "warning", "info"}

var alertName = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)

// checkRulesFile checks a Prometheus rule file: the same `groups:` document
// that a PrometheusRule carries as its spec, decoded strictly.
func checkRulesFile(_ string, data []byte) (string, []error) {
	var spec monitoringv1.PrometheusRuleSpec
	if err := yaml.UnmarshalStrict(data, &spec); err != nil {
		return "", []error{fmt.Errorf("not a rule file: %w", err)}
	}
	return checkRuleGroups(spec.Groups)
}

// checkRuleGroups checks every group and rule: the structure promtool
// demands, plus the gateway's conventions (severity label, summary
// annotation, only known metrics).
func checkRuleGroups(groups []monitoringv1.RuleGroup) (string, []error) {
	var problems []error
	if len(groups) == 0 {
		return "", []error{fmt.Errorf("no rule groups")}
	}
	groupNames := map[string]bool{}
	alerts := map[string]bool{}
	families := map[string]bool{}
	count := 0
	for gi, g := range groups {
		where := fmt.Sprintf("groups[%d] %q", gi, g.Name)
		if g.Name == "" {
			problems = append(problems, fmt.Errorf("groups[%d]: no name", gi))
		}
		if groupNames[g.Name] {
			problems = append(problems, fmt.Errorf("%s: group name used twice", where))
		}
		groupNames[g.Name] = true
		if g.Interval != nil {
			if _, err := model.ParseDuration(string(*g.Interval)); err != nil {
				problems = append(problems, fmt.Errorf("%s: interval: %w", where, err))
			}
		}
		if len(g.Rules) == 0 {
			problems = append(problems, fmt.Errorf("%s: no rules", where))
		}
		for ri, r := range g.Rules {
			count++
			rwhere := fmt.Sprintf("%s rules[%d]", where, ri)
			used, errs := checkRule(r, rwhere, alerts)
			problems = append(problems, errs...)
			for _, f := range used {
				families[f] = true
			}
		}
	}
	return fmt.Sprintf("%d groups, %d rules, %d metric families", len(groups), count, len(families)), problems
}

func checkRule(r monitoringv1.Rule, where string, alerts map[string]bool) ([]string, []error) {
	var problems []error
	switch {
	case r.Alert != "" && r.Record != "":
		problems = append(problems, fmt.Errorf("%s: both alert and record", where))
	case r.Alert == "" && r.Record == "":
		problems = append(problems, fmt.Errorf("%s: neither alert nor record", where))
	case r.Record != "":
		if !model.LegacyValidation.IsValidMetricName(r.Record) {
			problems = append(problems, fmt.Errorf("%s: record %q is not a valid metric name", where, r.Record))
		}
	default:
		where = fmt.Sprintf("%s (alert %s)", where, r.Alert)
		if !alertName.MatchString(r.Alert) {
			problems = append(problems, fmt.Errorf("%s: alert names are CamelCase", where))
		}
		if alerts[r.Alert] {
			problems = append(problems, fmt.Errorf("%s: alert defined twice", where))
		}
		alerts[r.Alert] = true
		if sev := r.Labels["severity"]; !slices.Contains(severities, sev) {
			problems = append(problems, fmt.Errorf("%s: labels.severity is %q, want one of %s", where, sev, strings.Join(severities, ", ")))
		}
		if strings.TrimSpace(r.Annotations["summary"]) == "" {
			problems = append(problems, fmt.Errorf("%s: no annotations.summary", where))
		}
	}
	var durations []string
	if r.For != nil {
		durations = append(durations, string(*r.For))
	}
	if r.KeepFiringFor != nil {
		durations = append(durations, string(*r.KeepFiringFor))
	}
	for _, d := range durations {
		if _, err := model.ParseDuration(d); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", where, err))
		}
	}
	for _, kv := range []map[string]string{r.Labels, r.Annotations} {
		for _, k := range sortedKeys(kv) {
			if !model.LegacyValidation.IsValidLabelName(k) {
				problems = append(problems, fmt.Errorf("%s: %q is not a valid label or annotation name", where, k))
			}
			if err := parseAlertTemplate(kv[k]); err != nil {
				problems = append(problems, fmt.Errorf("%s: %s: template: %w", where, k, err))
			}
		}
	}
	families, errs := checkExpr(r.Expr.String())
	for _, err := range errs {
		problems = append(problems, fmt.Errorf("%s: %w", where, err))
	}
	return families, problems
}

// alertTemplateFuncs are the functions Prometheus offers to alert templates;
// only their names matter for parsing.
var alertTemplateFuncs = func() template.FuncMap {
	names := []string{
		"args", "externalURL", "first", "graphLink", "humanize", "humanize1024",
		"humanizeDuration", "humanizePercentage", "humanizeTimestamp", "label",
		"match", "now", "parseDuration", "pathPrefix", "query", "reReplaceAll",
		"safeHtml", "sortByLabel", "stripDomain", "stripPort", "strvalue",
		"tableLink", "title", "toDuration", "toLower", "toTime", "toUpper", "urlUnescape", "value",
	}
	funcs := template.FuncMap{}
	for _, n := range names {
		funcs[n] = func(...any) any { return nil }
	}
	return funcs
}()

// parseAlertTemplate parses a label or annotation value as Prometheus does,
// with $labels, $externalLabels and $value defined.
func parseAlertTemplate(text string) error {
	const defs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
	_, err := template.New("alert").Funcs(alertTemplateFuncs).Option("missingkey=zero").Parse(defs + text)
	return err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
