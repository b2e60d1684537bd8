package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// metricName finds the metric names in a PromQL expression: the gateway's
// and the Temporal SDK's all start with one of these prefixes.
var metricName = regexp.MustCompile(`\b(?:smsgw|temporal)_[A-Za-z0-9_]*[A-Za-z0-9]`)

// dashboardMetrics returns, per metric name, the dashboard panels that use it.
func dashboardMetrics(t *testing.T, path string) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string  `json:"title"`
		Panels  []panel `json:"panels"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	}
	var d struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	uses := map[string][]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			for _, target := range p.Targets {
				for _, name := range metricName.FindAllString(target.Expr, -1) {
					uses[name] = append(uses[name], "panel "+p.Title)
				}
			}
		}
	}
	walk(d.Panels)
	return uses
}

// alertMetrics returns, per metric name, the alert rules that use it.
func alertMetrics(t *testing.T, path string) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	uses := map[string][]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			for _, name := range metricName.FindAllString(r.Expr, -1) {
				uses[name] = append(uses[name], "alert "+r.Alert)
			}
		}
	}
	return uses
}

// metricsFlag is the flag of `smsgw all` that sets where /metrics is
// served, when it has one of its own; "" when /metrics is served on the
// HTTP address.
func metricsFlag(t *testing.T) string {
	t.Helper()
	var usage bytes.Buffer
	run(context.Background(), []string{"all", "-h"}, func(string) string { return "" }, io.Discard, &usage)
	flagLine := regexp.MustCompile(`^\s+-([a-z0-9-]+)`)
	sc := bufio.NewScanner(&usage)
	for sc.Scan() {
		if m := flagLine.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(m[1], "metrics") && strings.HasSuffix(m[1], "addr") {
			return m[1]
		}
	}
	return ""
}

// scrapeNames returns the names of the series a /metrics page shows.
func scrapeNames(url string) (map[string]bool, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names, sc.Err()
}

// Every metric a Grafana panel or a Prometheus alert rule of deploy/ names
// is exported by the gateway once it has carried a message: otherwise the
// panel stays empty and the alert can never fire, and nobody notices until
// the day it should have. The Temporal SDK's own metrics (task
// schedule-to-start latencies) are among them.
func TestEndToEndMetricsOfDashboardAndAlertsAreExported(t *testing.T) {
	// The message's send goes through its connector's task queue, as in
	// the deployments the dashboard is made for (the roles apart): a
	// process running every role sends from where its workflow runs, and
	// its activity metrics show only once an activity runs (docs/connectors.md).
	extras := gatewayExtras{flags: []string{"-send-here=false"}}
	metricsURL := ""
	if flag := metricsFlag(t); flag != "" {
		addr := freeAddr(t)
		extras.flags = append(extras.flags, "-"+flag, addr)
		metricsURL = "http://" + addr + "/metrics"
	}
	g := startGatewayWith(t, "", extras)
	if metricsURL == "" {
		metricsURL = g.base + "/metrics"
	}

	// One message's whole life, so that every part of the gateway has
	// something to report.
	code, acc := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+61412345678","text":"metrics"}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit: HTTP %d %v", code, acc)
	}
	if n := g.hook.waitFor(t, acc["id"].(string), 30*time.Second); n["status"] != "DELIVERED" {
		t.Fatalf("webhook %v", n)
	}

	want := dashboardMetrics(t, "../../deploy/grafana/smsgw-dashboard.json")
	for name, uses := range alertMetrics(t, "../../deploy/prometheus/alerts.yaml") {
		want[name] = append(want[name], uses...)
	}
	if len(want) < 10 {
		t.Fatalf("found only %d metric names in the dashboard and the alert rules: %v", len(want), want)
	}
	// Counters of events a message's life does not provoke show on
	// /metrics only once one happens (a vector has no series before): for
	// those the code must at least register the name.
	for name, event := range map[string]string{
		"smsgw_api_panics_total":          "a handler panics",
		"smsgw_pumping_guard_flags_total": "the pumping guard flags a submission",
		"smsgw_rule_refusals_total":       "a rule refuses a submission",
	} {
		if _, ok := want[name]; ok {
			if !registeredInSource(t, name) {
				t.Errorf("%s is registered nowhere, but %s use it (it shows once %s)", name, strings.Join(want[name], ", "), event)
			}
			delete(want, name)
		}
	}
	var missing []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		names, err := scrapeNames(metricsURL)
		missing = missing[:0]
		for name := range want {
			if err != nil || !names[name] {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			slices.Sort(missing)
			for _, name := range missing {
				t.Errorf("%s is not exported (%v), but %s use it", name, err, strings.Join(want[name], ", "))
			}
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// registeredInSource tells whether a Go file of the module (tests left out)
// names the metric in its options: Name: "<name>".
func registeredInSource(t *testing.T, name string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || found {
			return err
		}
		if d.IsDir() && (d.Name() == ".data" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != "../.." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found = bytes.Contains(src, []byte(`Name: "`+name+`"`))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
