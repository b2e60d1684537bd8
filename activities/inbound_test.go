package activities_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
)

const routingYAML = `
customers:
  - id: pizza
    webhook: {url: "https://hooks.example.com/pizza"}
    numbers: [{number: "12345", keyword: PIZZA}, {number: "12345", keyword: pasta}]
  - id: bank
    webhook: {url: "https://hooks.example.com/bank"}
    notify: {channels: [webhook, smpp], retryFor: 1h}
    numbers: [{number: "12345"}, {number: "+61400000001"}]
  - id: votes
    numbers: [{number: "0061400000002", keyword: YES}]
connectors:
  - {id: sim, address: "127.0.0.1:2776"}
routes:
  - {name: all, prefixes: ["+"], connectors: [sim]}
`

func TestRouteInbound(t *testing.T) {
	cfg, err := config.Parse([]byte(routingYAML), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		to, text          string
		customer, keyword string
	}{
		{"12345", "PIZZA large please", "pizza", "PIZZA"},
		{"12345", "pizza", "pizza", "PIZZA"},
		{"12345", "  Pasta! now", "pizza", "pasta"},
		{"12345", "balance", "bank", ""},      // the number without keyword takes the rest
		{"12345", "pizzas", "bank", ""},       // a keyword is a whole word
		{"12345", "", "bank", ""},             // empty text
		{"+12345", "PIZZA", "pizza", "PIZZA"}, // a leading + is ignored
		{"61400000001", "hi", "bank", ""},     // number without +
		{"+61400000001", "PIZZA", "bank", ""}, // keywords belong to their number only
		{"0061400000001", "hi", "bank", ""},   // international prefix 00
		{"+61400000002", "yes I vote", "votes", "YES"},
		{"+61400000002", "no", "", ""},    // keyword-only number, no match: unrouted
		{"+61499999999", "hello", "", ""}, // no owner
		{"not-a-number", "PIZZA", "", ""},
	} {
		got, kw, ok := activities.RouteInbound(cfg, c.to, c.text)
		if got != c.customer || kw != c.keyword || ok != (c.customer != "") {
			t.Errorf("RouteInbound(%q, %q) = %q %q %v, want %q %q", c.to, c.text, got, kw, ok, c.customer, c.keyword)
		}
	}

	plans := map[string]string{}
	for _, cu := range cfg.Customers {
		p := activities.InboundPlan(cu)
		plans[cu.ID] = fmt.Sprint(p.Channels, " ", p.RetryFor)
	}
	want := map[string]string{"pizza": "[webhook] 24h0m0s", "bank": "[webhook smpp] 1h0m0s", "votes": "[] 24h0m0s"}
	if fmt.Sprint(plans) != fmt.Sprint(want) {
		t.Errorf("plans %v, want %v", plans, want)
	}
}

type fakeChannel struct{ err error }

func (f fakeChannel) Deliver(context.Context, smsgw.Delivery) error { return f.err }

func TestNotificationMetricsCountOutcomes(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := activities.NewNotificationMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := activities.NewNotificationMetrics(reg); err != nil {
		t.Fatalf("a second worker on the same registry: %v", err)
	}
	ch := m.Wrap(map[string]activities.Channel{
		"webhook": fakeChannel{},
		"email":   fakeChannel{err: fmt.Errorf("550: %w", smsgw.ErrRefused)},
		"smpp":    fakeChannel{err: errors.New("not bound")},
	})
	for _, name := range []string{"webhook", "webhook", "email", "smpp"} {
		_ = ch[name].Deliver(context.Background(), smsgw.Delivery{})
	}
	got := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"smsgw_notifications_total channel=email result=refused": 1,
		"smsgw_notifications_total channel=smpp result=retry":    1,
		"smsgw_notifications_total channel=webhook result=ok":    2,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counted %v, want %v", got, want)
	}
}

func TestFailedNotificationID(t *testing.T) {
	for _, eventID := range []string{"m1:notify-failed-webhook-DELIVERED", "mo-ab:notify-failed-email-inbound"} {
		id := smsgw.FailedNotificationID(eventID)
		if strings.ContainsAny(id, ":/?#") {
			t.Errorf("ID %q is not URL-path safe", id)
		}
		back, err := smsgw.ParseFailedNotificationID(id)
		if err != nil || back != eventID {
			t.Errorf("round trip of %q: %q, %v", eventID, back, err)
		}
	}
	for _, bad := range []string{"", "!!", "/w"} {
		if _, err := smsgw.ParseFailedNotificationID(bad); err == nil {
			t.Errorf("ParseFailedNotificationID(%q) accepted", bad)
		}
	}
}
