package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/connectors/smpptest"
)

// The configuration the soak writes is one the gateway takes, with its
// failover route and every entry point of the customer.
func TestSoakConfigIsValid(t *testing.T) {
	for name, p := range soakProfiles {
		cfg, err := config.Parse([]byte(soakConfig(p, "http://127.0.0.1:1/hook", map[string]string{"A": "127.0.0.1:2", "B": "127.0.0.1:3"})),
			func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cu, ok := cfg.Customer("soak")
		if !ok || cu.Validity != p.validity || cu.SMPP.SystemID != soakSystemID || len(cu.Numbers) != 1 {
			t.Errorf("%s: customer %+v", name, cu)
		}
		if a, _ := cfg.Connector("carrier-a"); !a.Resubmit() || a.Binds != 2 {
			t.Errorf("%s: carrier-a %+v", name, a)
		}
		if len(p.faults) == 0 || p.rate <= 0 {
			t.Errorf("%s: no faults or no load", name)
		}
	}
}

// The checker finds the part a submit_sm carried from its UDH, its SAR
// parameters, or else takes it for a message of one part.
func TestSoakPartOf(t *testing.T) {
	udh := smpptest.Submitted{ESMClass: 0x40, ShortMessage: append([]byte{0x05, 0x00, 0x03, 0x2A, 0x02, 0x02}, "second"...)}
	sar := smpptest.Submitted{SAR: &smpptest.SAR{Ref: 7, Total: 3, Seq: 3}, ShortMessage: []byte("third")}
	one := smpptest.Submitted{ShortMessage: []byte("whole")}
	if partOf(udh) != 2 || partOf(sar) != 3 || partOf(one) != 1 {
		t.Errorf("parts %d %d %d, want 2 3 1", partOf(udh), partOf(sar), partOf(one))
	}
	if text, parts := soakText(longTextEvery); parts != 2 || len(text) <= 160 {
		t.Errorf("every %dth soak message should take two parts: %d characters", longTextEvery, len(text))
	}
}

// The soak's Prometheus evaluates the gateway's own alert rules with every
// `for` and range divided by the time scale, and nothing else changed.
func TestSoakScalesAlertRules(t *testing.T) {
	src, err := os.ReadFile("../../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := scaleAlertRules(src, 20)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr, For string
			}
		}
	}
	if err := yaml.Unmarshal(out, &rules); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			got[r.Alert] = r.For + " " + strings.Join(strings.Fields(r.Expr), " ")
		}
	}
	for alert, want := range map[string]string{
		"ConnectorUnbound":        "6s sum by (connector) (smsgw_connector_bound_sessions) < 1",
		"APIPanics":               " sum by (method) (increase(smsgw_api_panics_total[45s])) > 0",
		"ReceiptsUnmatchedRising": "45s max(delta(smsgw_receipts_unmatched[90s])) > 50",
	} {
		if got[alert] != want {
			t.Errorf("%s: %q, want %q", alert, got[alert], want)
		}
	}
	if len(got) < 8 {
		t.Errorf("%d rules after scaling: %v", len(got), got)
	}
	for _, expected := range expectedAlerts {
		if _, ok := got[expected.alert]; !ok {
			t.Errorf("the soak expects %s, which is not a rule", expected.alert)
		}
	}
	for name, p := range soakProfiles {
		for _, expected := range expectedAlerts {
			if !slices.ContainsFunc(p.faults, func(f plannedFault) bool { return strings.Contains(f.what, expected.fault) }) {
				t.Errorf("the %s profile has no fault %q for %s", name, expected.fault, expected.alert)
			}
		}
	}
}

// gaugeOf reads the metric named, not its help or type lines nor a metric
// whose name starts with it, and says why when it cannot.
func TestSoakGaugeOf(t *testing.T) {
	page := "# HELP smsgw_upstream_sends_held Send activities held open.\n" +
		"# TYPE smsgw_upstream_sends_held gauge\n" +
		"smsgw_upstream_sends_held_total 9\n" +
		"smsgw_upstream_sends_held 3\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(page))
	}))
	defer srv.Close()
	ctx := context.Background()
	if v, err := gaugeOf(ctx, srv.URL+"/metrics", "smsgw_upstream_sends_held"); err != nil || v != 3 {
		t.Fatalf("gaugeOf = %v, %v; want 3", v, err)
	}
	if _, err := gaugeOf(ctx, srv.URL+"/metrics", "smsgw_absent"); err == nil || !strings.Contains(err.Error(), "no smsgw_absent") {
		t.Fatalf("a metric not on the page: %v", err)
	}
	if _, err := gaugeOf(ctx, srv.URL+"/other", "smsgw_upstream_sends_held"); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("a page answered 500: %v", err)
	}
}
