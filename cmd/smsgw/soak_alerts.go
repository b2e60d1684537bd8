package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// The soak's alerting: a Prometheus server of its own scrapes every
// replica and evaluates the gateway's alert rules (deploy/prometheus/
// alerts.yaml), on a compressed clock: every `for` and every range of the
// rules is divided by alertTimeScale, so that an alert meant to fire after
// 2 minutes of a fault fires after 6 s of the soak's. A watcher reads the
// alerts Prometheus holds while the faults run, and the checker requires
// that the alerts the faults must raise fired, and that every alert that
// fired was resolved once the stack was whole again.

// alertTimeScale divides the rules' durations: the soak's faults last
// seconds where production's last minutes.
const alertTimeScale = 20

// expectedAlerts are the alerts a soak's faults must raise, with the fault
// that raises each: an alert that stays silent through its fault is as
// broken as one that never resolves.
var expectedAlerts = []struct{ alert, labels, fault string }{
	{"ConnectorUnbound", "connector=carrier-a", "carrier A down"},
}

// scaleAlertRules rewrites a Prometheus rule file with every `for` and
// every range selector divided by scale (at least 1 s).
func scaleAlertRules(src []byte, scale int) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("alert rules: %w", err)
	}
	var walkErr error
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				key, val := n.Content[i], n.Content[i+1]
				switch key.Value {
				case "for":
					d, err := time.ParseDuration(val.Value)
					if err != nil {
						walkErr = fmt.Errorf("alert rules: for %q: %w", val.Value, err)
						return
					}
					val.Value = scaledDuration(d, scale)
				case "expr":
					val.Value = scaleRanges(val.Value, scale)
					val.Style = yaml.LiteralStyle
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	if walkErr != nil {
		return nil, walkErr
	}
	return yaml.Marshal(&doc)
}

var rangeSelector = regexp.MustCompile(`\[(\d+)([smhd])\]`)

// scaleRanges divides every range selector of a PromQL expression.
func scaleRanges(expr string, scale int) string {
	return rangeSelector.ReplaceAllStringFunc(expr, func(m string) string {
		sub := rangeSelector.FindStringSubmatch(m)
		n, _ := strconv.Atoi(sub[1])
		unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[sub[2]]
		return "[" + scaledDuration(time.Duration(n)*unit, scale) + "]"
	})
}

func scaledDuration(d time.Duration, scale int) string {
	return strconv.Itoa(max(int(d/time.Duration(scale)/time.Second), 1)) + "s"
}

// startPrometheus starts a Prometheus server that scrapes every replica
// each second and evaluates the scaled rules. It returns "" (and starts
// nothing) when no prometheus binary is installed.
func (s *stack) startPrometheus(ctx context.Context, rulesPath string) (string, error) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		s.logger.Warn("no prometheus on this machine: the alert rules are not evaluated (apt-get install prometheus)")
		return "", nil
	}
	src, err := os.ReadFile(rulesPath)
	if err != nil {
		return "", err
	}
	rules, err := scaleAlertRules(src, alertTimeScale)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(s.dir, "prometheus")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts.yaml"), rules, 0o644); err != nil {
		return "", err
	}
	var cfg strings.Builder
	cfg.WriteString("# Written by smsgw soak.\nglobal: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\nrule_files: [alerts.yaml]\nscrape_configs:\n  - job_name: smsgw\n    static_configs:\n")
	for _, name := range roleNames {
		for _, r := range s.roles[name] {
			fmt.Fprintf(&cfg, "      - {targets: [%q], labels: {role: %q, replica: %q}}\n", r.probes, name, r.name)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg.String()), 0o644); err != nil {
		return "", err
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s.prometheus = &proc{name: "prometheus", path: bin, log: filepath.Join(s.dir, "prometheus.log"), args: []string{
		"--config.file=" + filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--log.level=warn",
	}}
	if err := s.prometheus.start(); err != nil {
		return "", err
	}
	for deadline := time.Now().Add(time.Minute); ; {
		if code, err := httpStatus(ctx, "http://"+addr+"/-/ready"); err == nil && code == http.StatusOK {
			return "http://" + addr, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("prometheus at %s not ready in a minute (see %s)", addr, s.prometheus.log)
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return "", err
		}
	}
}

// alertSpan is one alert (a rule and its labels) from the time it fired
// until it was resolved.
type alertSpan struct {
	Alert    string
	Labels   string        // the alert's own labels, sorted, without alertname and severity
	Fired    time.Duration // since the load began
	Resolved time.Duration // 0 while it fires
	Faults   []string      // the faults under way when it fired, or that had just ended
}

// alertWatcher polls Prometheus for the alerts that fire.
type alertWatcher struct {
	url       string
	loadStart time.Time
	faults    func() []faultRecord

	mu     sync.Mutex
	spans  []*alertSpan
	firing map[string]*alertSpan // by alert and labels
	polls  int
	errs   int
}

// watch polls every second until ctx ends.
func (w *alertWatcher) watch(ctx context.Context) {
	for {
		w.poll(ctx)
		if sleepCtx(ctx, time.Second) != nil {
			return
		}
	}
}

// poll reads the alerts firing now and opens and closes spans.
func (w *alertWatcher) poll(ctx context.Context) {
	now := time.Since(w.loadStart)
	alerts, err := firingAlerts(ctx, w.url)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.polls++
	if err != nil {
		w.errs++
		return
	}
	seen := map[string]bool{}
	for _, a := range alerts {
		key := a.alert + "{" + a.labels + "}"
		seen[key] = true
		if w.firing[key] == nil {
			span := &alertSpan{Alert: a.alert, Labels: a.labels, Fired: now, Faults: faultsAround(w.faults(), now)}
			w.firing[key] = span
			w.spans = append(w.spans, span)
		}
	}
	for key, span := range w.firing {
		if !seen[key] {
			span.Resolved = now
			delete(w.firing, key)
		}
	}
}

// faultsAround names the faults under way at t, or that ended within the
// 30 s before it (an alert's `for` and its ranges lag the fault).
func faultsAround(faults []faultRecord, t time.Duration) []string {
	var names []string
	for _, f := range faults {
		if f.At <= t && t <= f.At+f.Took+30*time.Second {
			names = append(names, f.What)
		}
	}
	return names
}

type firing struct{ alert, labels string }

// firingAlerts reads the alerts in state firing from Prometheus's API.
func firingAlerts(ctx context.Context, url string) ([]firing, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v1/alerts", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var body struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("prometheus alerts: %w", err)
	}
	var out []firing
	for _, a := range body.Data.Alerts {
		if a.State != "firing" {
			continue
		}
		var labels []string
		for k, v := range a.Labels {
			if k != "alertname" && k != "severity" {
				labels = append(labels, k+"="+v)
			}
		}
		sort.Strings(labels)
		out = append(out, firing{alert: a.Labels["alertname"], labels: strings.Join(labels, ",")})
	}
	return out, nil
}

// awaitResolved waits until no alert fires, or deadline.
func (w *alertWatcher) awaitResolved(ctx context.Context, deadline time.Time) {
	for time.Now().Before(deadline) {
		w.poll(ctx)
		w.mu.Lock()
		n := len(w.firing)
		w.mu.Unlock()
		if n == 0 || sleepCtx(ctx, time.Second) != nil {
			return
		}
	}
}

// alertFigures is what the checker concludes from the alerts.
type alertFigures struct {
	Evaluated  bool
	Spans      []alertSpan
	Missing    []string // expected alerts that never fired
	Unresolved []string // alerts still firing at the end
	Polls      int
	PollErrors int
}

func (f alertFigures) pass() bool {
	return !f.Evaluated || len(f.Missing) == 0 && len(f.Unresolved) == 0
}

// figures judges the alerts seen: every expected alert fired while its
// fault ran, and none fires any more.
func (w *alertWatcher) figures() alertFigures {
	if w == nil {
		return alertFigures{}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	f := alertFigures{Evaluated: true, Polls: w.polls, PollErrors: w.errs}
	for _, s := range w.spans {
		f.Spans = append(f.Spans, *s)
		if s.Resolved == 0 {
			f.Unresolved = append(f.Unresolved, s.Alert+"{"+s.Labels+"}")
		}
	}
	for _, e := range expectedAlerts {
		fired := slices.ContainsFunc(f.Spans, func(s alertSpan) bool {
			return s.Alert == e.alert && strings.Contains(s.Labels, e.labels) &&
				slices.ContainsFunc(s.Faults, func(fault string) bool { return strings.Contains(fault, e.fault) })
		})
		if !fired {
			f.Missing = append(f.Missing, fmt.Sprintf("%s{%s} during %q", e.alert, e.labels, e.fault))
		}
	}
	return f
}

// reportAlerts writes the alerts' section of the report.
func reportAlerts(w io.Writer, f alertFigures) {
	fmt.Fprintf(w, "\nAlerts (the rules of deploy/prometheus/alerts.yaml, each `for` and range divided by %d, evaluated every second by Prometheus):\n\n", alertTimeScale)
	if !f.Evaluated {
		fmt.Fprintf(w, "Not evaluated: no prometheus on this machine.\n")
		return
	}
	fmt.Fprintf(w, "| alert | labels | fired at | resolved at | faults under way |\n|---|---|---|---|---|\n")
	for _, s := range f.Spans {
		resolved := "still firing"
		if s.Resolved > 0 {
			resolved = s.Resolved.Round(time.Second).String()
		}
		faults := strings.Join(s.Faults, "; ")
		if faults == "" {
			faults = "none"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", s.Alert, s.Labels, s.Fired.Round(time.Second), resolved, faults)
	}
	fmt.Fprintf(w, "\n| figure | value | must be |\n|---|---|---|\n")
	fmt.Fprintf(w, "| **expected alerts that did not fire** | %s | none |\n", listOrNone(f.Missing))
	fmt.Fprintf(w, "| **alerts still firing at the end** | %s | none |\n", listOrNone(f.Unresolved))
	fmt.Fprintf(w, "| reads of the alerts (failed) | %d (%d) |  |\n", f.Polls, f.PollErrors)
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}
