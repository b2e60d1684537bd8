package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// mustReplace replaces old with new exactly once, so a mutation that no
// longer applies fails the test instead of testing the unchanged input.
func mustReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("%q occurs %d times in the input, want once", old, n)
	}
	return strings.Replace(s, old, new, 1)
}

// expectProblem runs a check and wants exactly the problems that contain want.
func expectProblem(t *testing.T, check func(string, []byte) (string, []error), input, want string) {
	t.Helper()
	_, problems := check("input", []byte(input))
	if len(problems) == 0 {
		t.Fatalf("no problem reported, want one containing %q", want)
	}
	for _, p := range problems {
		if strings.Contains(p.Error(), want) {
			return
		}
	}
	t.Fatalf("no problem contains %q; got:\n%v", want, problems)
}

func expectClean(t *testing.T, check func(string, []byte) (string, []error), input string) string {
	t.Helper()
	summary, problems := check("input", []byte(input))
	for _, p := range problems {
		t.Error(p)
	}
	return summary
}

func TestManifestsGood(t *testing.T) {
	summary := expectClean(t, checkManifests, readTestdata(t, "testdata/manifests-good.yaml"))
	if !strings.HasPrefix(summary, "9 objects") {
		t.Errorf("summary %q, want 9 objects", summary)
	}
}

// The file the deploy-check script also feeds to the binary as its
// self-test: one misspelt field must fail the whole check.
func TestManifestsMisspelledFieldFails(t *testing.T) {
	expectProblem(t, checkManifests, readTestdata(t, "testdata/manifests-misspelled.yaml"), `unknown field "spec.replicass"`)
}

func TestManifestsBroken(t *testing.T) {
	good := readTestdata(t, "testdata/manifests-good.yaml")
	cases := []struct {
		name, old, new, want string
	}{
		{"wrong type", "averageUtilization: 70", `averageUtilization: "seventy"`, "cannot unmarshal string"},
		{"field at the wrong level", "      terminationGracePeriodSeconds: 60", "      terminationGracePeriod: 60", `unknown field "spec.template.spec.terminationGracePeriod"`},
		{"duplicate field", "  maxReplicas: 10", "  maxReplicas: 10\n  maxReplicas: 11", "maxReplicas"},
		{"unknown kind", "kind: PodDisruptionBudget", "kind: PodDisruptionBudgett", `no kind "PodDisruptionBudgett"`},
		{"missing kind", "apiVersion: policy/v1\nkind: PodDisruptionBudget\n", "apiVersion: policy/v1\n", "Kind"},
		{"selector does not match the template", "      labels:\n        app.kubernetes.io/component: worker", "      labels:\n        app.kubernetes.io/component: workr", "does not match the pod template"},
		{"service selects nothing", "  selector:\n    app.kubernetes.io/component: connector", "  selector:\n    app.kubernetes.io/component: connectr", "selects no pod"},
		{"service target port missing", "      targetPort: http", "      targetPort: metrics", "target port metrics"},
		{"pdb selects nothing", "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/component: connector", "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/component: conector", "selects no pod"},
		{"hpa target sets replicas", "  name: gw-worker\n  namespace: sms\nspec:\n  selector:", "  name: gw-worker\n  namespace: sms\nspec:\n  replicas: 3\n  selector:", "sets replicas"},
		{"hpa target missing", "    name: gw-worker\n  minReplicas", "    name: gw-wrker\n  minReplicas", `Deployment "gw-wrker"`},
		{"connector surges", "      maxSurge: 0", "      maxSurge: 1", "must not surge"},
		{"connector evictable", "        cluster-autoscaler.kubernetes.io/safe-to-evict: \"false\"", "        cluster-autoscaler.kubernetes.io/safe-to-evict: \"true\"", "safe-to-evict"},
		{"connector grace too short", "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: 10", "terminationGracePeriodSeconds"},
		{"root allowed", "        runAsNonRoot: true\n        runAsUser: 65532", "        runAsUser: 0", "runAsNonRoot"},
		{"literal secret in config", "password: ${CARRIER_A_PASSWORD}", "password: hunter2", "literal secret"},
		{"secret key not an env name", "  CARRIER_A_PASSWORD: s3cret", "  carrier-a.password: s3cret", "environment variable"},
		{"mount without volume", "            - name: config\n              mountPath", "            - name: conf\n              mountPath", `volumeMount "conf"`},
		{"service monitor port", "    - port: http\n      path: /metrics", "    - port: metrics\n      path: /metrics", `endpoint port "metrics"`},
		{"alert with a bad expression", "expr: sum by (connector) (smsgw_connector_bound_sessions) < 1", "expr: sum by (connector) (smsgw_connector_bound_sessions < 1", "does not parse"},
		{"invalid label value", "    app.kubernetes.io/component: connector\nspec:\n  replicas", "    app.kubernetes.io/component: connector!\nspec:\n  replicas", "label app.kubernetes.io/component"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectProblem(t, checkManifests, mustReplace(t, good, tc.old, tc.new), tc.want)
		})
	}

	t.Run("every container check", func(t *testing.T) {
		in := mustReplace(t, good, "            readOnlyRootFilesystem: true\n            allowPrivilegeEscalation: false\n            capabilities:\n              drop: [ALL]\n          livenessProbe:\n            httpGet:\n              path: /healthz\n              port: http\n          readinessProbe:\n            httpGet:\n              path: /readyz\n              port: http\n---\napiVersion: autoscaling/v2",
			"            readOnlyRootFilesystem: false\n          livenessProbe:\n            httpGet:\n              path: /healthz\n              port: metrics\n---\napiVersion: autoscaling/v2")
		for _, want := range []string{"readOnlyRootFilesystem", "allowPrivilegeEscalation", "capabilities.drop", "no readinessProbe", `livenessProbe uses port "metrics"`} {
			expectProblem(t, checkManifests, in, want)
		}
	})
	t.Run("objects defined twice", func(t *testing.T) {
		expectProblem(t, checkManifests, good+"\n---\n"+good, "defined twice")
	})
	t.Run("nothing to check", func(t *testing.T) {
		expectProblem(t, checkManifests, "# only a comment\n---\n", "no Kubernetes objects")
	})
	t.Run("not YAML", func(t *testing.T) {
		expectProblem(t, checkManifests, "kind: [unclosed\n", "not YAML")
	})
}

// The chart's canonical rules and the standalone copy must be the same file.
func TestAlertsCopyIdentical(t *testing.T) {
	canonical := readTestdata(t, "../helm/smsgw/files/alerts.yaml")
	cp := readTestdata(t, "../prometheus/alerts.yaml")
	if canonical != cp {
		t.Fatal("deploy/prometheus/alerts.yaml differs from deploy/helm/smsgw/files/alerts.yaml: cp deploy/helm/smsgw/files/alerts.yaml deploy/prometheus/alerts.yaml")
	}
}

func TestRulesShipped(t *testing.T) {
	rules := readTestdata(t, "../helm/smsgw/files/alerts.yaml")
	expectClean(t, checkRulesFile, rules)
	for _, alert := range []string{"ConnectorUnbound", "ReceiptsUnmatchedRising", "WebhookFailures", "ThroughputAtLimit", "WorkflowBacklog", "APIErrorRate"} {
		if !strings.Contains(rules, "alert: "+alert+"\n") {
			t.Errorf("alert %s missing", alert)
		}
	}
}

func TestRulesBroken(t *testing.T) {
	good := readTestdata(t, "../helm/smsgw/files/alerts.yaml")
	cases := []struct {
		name, old, new, want string
	}{
		{"expression does not parse", "expr: max(delta(smsgw_receipts_unmatched[30m])) > 50", "expr: max(delta(smsgw_receipts_unmatched[30m]) > 50", "does not parse"},
		{"unknown metric", "expr: max(delta(smsgw_receipts_unmatched[30m])) > 50", "expr: max(delta(smsgw_receipt_unmatched[30m])) > 50", `selects "smsgw_receipt_unmatched"`},
		{"histogram without suffix", "temporal_workflow_task_schedule_to_start_latency_bucket", "temporal_workflow_task_schedule_to_start_latency", `selects "temporal_workflow_task_schedule_to_start_latency"`},
		{"label value outside the set", `{result="failed"}`, `{result="fail"}`, `is never "fail"`},
		{"label the metric lacks", `{result="failed"}`, `{outcome="failed"}`, `no label "outcome"`},
		{"severity missing", "          severity: critical\n        annotations:\n          summary: \"Connector {{ $labels.connector }} has no bound", "          team: sms\n        annotations:\n          summary: \"Connector {{ $labels.connector }} has no bound", "labels.severity"},
		{"summary missing", "          summary: \"No connector reports metrics", "          headline: \"No connector reports metrics", "no annotations.summary"},
		{"bad duration", "for: 15m\n        labels:\n          severity: warning\n        annotations:\n          summary: \"Unmatched", "for: 15 minutes\n        labels:\n          severity: warning\n        annotations:\n          summary: \"Unmatched", "in duration"},
		{"bad template", "{{ $value | humanizePercentage }} of webhook", "{{ $value | humanisePercentage }} of webhook", "humanisePercentage"},
		{"unknown field", "    rules:\n      - alert: WebhookFailures", "    rulez:\n      - alert: WebhookFailures", "unknown field"},
		{"alert twice", "alert: ConnectorMetricsAbsent", "alert: ConnectorUnbound", "alert defined twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectProblem(t, checkRulesFile, mustReplace(t, good, tc.old, tc.new), tc.want)
		})
	}
	t.Run("no groups", func(t *testing.T) {
		expectProblem(t, checkRulesFile, "groups: []\n", "no rule groups")
	})
}

func TestDashboardShipped(t *testing.T) {
	summary := expectClean(t, checkDashboard, readTestdata(t, "../grafana/smsgw-dashboard.json"))
	t.Log(summary)
}

func TestDashboardBroken(t *testing.T) {
	good := readTestdata(t, "../grafana/smsgw-dashboard.json")
	cases := []struct {
		name, old, new, want string
	}{
		{"unknown metric", `"expr": "max(smsgw_receipts_unmatched)"`, `"expr": "max(smsgw_receipts_pending)"`, `selects "smsgw_receipts_pending"`},
		{"required metric not shown", `"expr": "max(smsgw_receipts_unmatched)"`, `"expr": "max(smsgw_workflows_running)"`, "no panel shows smsgw_receipts_unmatched"},
		{"expression does not parse", `"expr": "max(smsgw_workflows_running)"`, `"expr": "max(smsgw_workflows_running"`, "does not parse"},
		{"no uid", `"uid": "smsgw-overview"`, `"uid": ""`, "no uid"},
		{"not JSON", `"uid": "smsgw-overview"`, `"uid": smsgw-overview`, "not JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectProblem(t, checkDashboard, mustReplace(t, good, tc.old, tc.new), tc.want)
		})
	}
}

func TestRunExitStatus(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"manifests"}, nil, &stdout, &stderr); code != 2 {
		t.Errorf("no file: exit %d, want 2", code)
	}
	if code := run([]string{"lint", "x"}, nil, &stdout, &stderr); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	stdout.Reset()
	if code := run([]string{"manifests", "testdata/manifests-good.yaml"}, nil, &stdout, &stderr); code != 0 {
		t.Errorf("good manifests: exit %d, want 0; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "ok (9 objects") {
		t.Errorf("stdout %q lacks the summary", stdout.String())
	}
	stderr.Reset()
	if code := run([]string{"manifests", "testdata/manifests-good.yaml", "testdata/manifests-misspelled.yaml"}, nil, &stdout, &stderr); code != 1 {
		t.Errorf("one bad file among good ones: exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "replicass") {
		t.Errorf("stderr %q does not name the misspelt field", stderr.String())
	}
	stdin := strings.NewReader(readTestdata(t, "../prometheus/alerts.yaml"))
	if code := run([]string{"rules", "-"}, stdin, &stdout, &stderr); code != 0 {
		t.Errorf("rules from stdin: exit %d, want 0", code)
	}
	if code := run([]string{"dashboard", "testdata/does-not-exist.json"}, nil, &stdout, &stderr); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
}
