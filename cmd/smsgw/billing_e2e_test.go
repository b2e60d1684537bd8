package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

// TestEndToEndPrepaidBalance runs a prepaid customer at 0.05 EUR a
// segment through the real binary: an operator tops it up with 0.20 over
// the API (once, however often the top-up is repeated); four messages, two
// over REST and two over SMPP, are accepted and the fifth is refused (REST
// 402 with the reason INSUFFICIENT_BALANCE, SMPP ESME_RSUBMITFAIL, SMTP
// 552); once they are delivered the balance is 0.20 - 4 x 0.05 with
// nothing held, each reporting row carries its cost, the usage report sums
// the costs and counts the refusals, and the customer was
// told when its available balance fell below 0.10. Then a scheduled
// message holds the price of its segments until it is cancelled, which
// releases it.
func TestEndToEndPrepaidBalance(t *testing.T) {
	hook := newEventHook(t, "prepay-secret")
	g := startGatewayWith(t, "", gatewayExtras{
		customers: fmt.Sprintf(`  - id: prepay
    apiKeys: ["plain:prepay-key"]
    webhook: {url: %q, secret: prepay-secret}
    smpp: {systemId: prepay, password: "plain:prepay-pw"}
    emailIngress: {username: prepay-mail, password: "plain:mail-pw"}
    billing: {mode: prepaid, lowBalance: ["0.10"]}
`, hook.url),
		sections: `email: {domains: [sms.test]}
priceLists:
  - id: retail
    currency: EUR
    customers: [prepay]
    default: 0.10
    rates:
      - {prefix: "+61", price: 0.05}
`,
		flags: []string{"-billing-operator-key", "plain:operator-key", "-smtp-insecure-auth"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	call := func(method, path, key, body string) (int, map[string]any) {
		t.Helper()
		return g.do(t, method, path, key, body)
	}
	balance := func() map[string]any {
		t.Helper()
		code, out := call("GET", "/v1/balance", "prepay-key", "")
		if code != http.StatusOK {
			t.Fatalf("GET /v1/balance: HTTP %d %v", code, out)
		}
		return out["balance"].(map[string]any)
	}
	topUp := func(amount, ref, key string) (int, map[string]any) {
		return call("POST", "/v1/billing/customers/prepay:topUp", key, fmt.Sprintf(`{"amount":%q,"reference":%q}`, amount, ref))
	}

	// Nothing is accepted on an empty balance.
	if code, out := call("POST", "/v1/messages", "prepay-key", `{"from":"PREPAY","to":"+61400000001","text":"hi"}`); code != http.StatusPaymentRequired {
		t.Fatalf("submission on an empty balance: HTTP %d %v, want 402", code, out)
	}
	// Top-ups need the operator key; a customer's key will not do.
	if code, out := topUp("0.20", "inv-1", "prepay-key"); code != http.StatusUnauthorized {
		t.Fatalf("top-up with a customer's key: HTTP %d %v, want 401", code, out)
	}
	for i, wantApplied := range []bool{true, false} {
		code, out := topUp("0.20", "inv-1", "operator-key")
		if code != http.StatusOK || out["applied"] != wantApplied {
			t.Fatalf("top-up %d: HTTP %d %v, want applied %v", i+1, code, out, wantApplied)
		}
	}
	if b := balance(); b["balance"] != "0.20" || b["available"] != "0.20" || b["currency"] != "EUR" || b["prepaid"] != true {
		t.Fatalf("balance after the top-up: %v", b)
	}

	esmeClient := smppBindAs(t, ctx, g, smppwire.BindTransmitter, "prepay", "prepay-pw")
	smppSubmit := func(dest string) uint32 {
		t.Helper()
		st, _, err := esmeClient.Submit(ctx, smppwire.Message{
			SourceTON: 5, Source: "PREPAY", DestTON: 1, DestNPI: 1, Dest: dest, ShortMessage: []byte("hello over smpp"),
		})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	var ids []string
	for i := 1; i <= 2; i++ {
		code, out := call("POST", "/v1/messages", "prepay-key", fmt.Sprintf(`{"from":"PREPAY","to":"+6140000000%d","text":"hello %d"}`, i, i))
		if code != http.StatusAccepted {
			t.Fatalf("REST submission %d: HTTP %d %v", i, code, out)
		}
		ids = append(ids, out["id"].(string))
		if st := smppSubmit(fmt.Sprintf("6140000001%d", i)); st != smppstatus.ESME_ROK {
			t.Fatalf("SMPP submission %d: status 0x%08X", i, st)
		}
	}

	// The fifth is refused on every entry point.
	code, out := call("POST", "/v1/messages", "prepay-key", `{"from":"PREPAY","to":"+61400000005","text":"one too many"}`)
	if code != http.StatusPaymentRequired || !strings.Contains(fmt.Sprint(out), "INSUFFICIENT_BALANCE") || !strings.Contains(fmt.Sprint(out), "insufficient balance") {
		t.Fatalf("REST submission over the balance: HTTP %d %v, want 402 with INSUFFICIENT_BALANCE", code, out)
	}
	if st := smppSubmit("61400000016"); st != smppstatus.ESME_RSUBMITFAIL {
		t.Fatalf("SMPP submission over the balance: status 0x%08X, want ESME_RSUBMITFAIL", st)
	}
	if code := mailCode(t, g.smtp, "prepay-mail", "mail-pw", "+61400000007@sms.test", "one too many"); code != 552 {
		t.Fatalf("mail over the balance: SMTP %d, want 552", code)
	}

	untilBalance := func(what string, want func(map[string]any) bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for b := balance(); !want(b); b = balance() {
			if time.Now().After(deadline) {
				t.Fatalf("balance a minute on: %v, want %s", b, what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// Delivered, the four are settled: 0.20 - 4 x 0.05, nothing held.
	untilBalance("0.00 with nothing held", func(b map[string]any) bool { return b["balance"] == "0.00" && b["reserved"] == "0.00" })
	if n := len(g.sim.Submits()); n != 4 {
		t.Errorf("the SMSC has %d messages, want the 4 accepted", n)
	}
	db, err := sql.Open("mysql", g.mysqlDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, id := range ids {
		var cost int64
		var currency string
		for try := 0; ; try++ {
			err := db.QueryRowContext(ctx, "SELECT cost_micros, currency FROM messages WHERE id = ?", id).Scan(&cost, &currency)
			if err == nil && currency != "" || try == 50 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if cost != 50_000 || currency != "EUR" {
			t.Errorf("message %s: reporting row cost %d %q, want 50000 EUR", id, cost, currency)
		}
	}
	// The usage report sums the four charges once, and counts the four
	// refusals.
	today := time.Now().UTC()
	usagePath := "/v1/usage?from=" + today.AddDate(0, 0, -1).Format(time.DateOnly) + "&to=" + today.AddDate(0, 0, 2).Format(time.DateOnly)
	if code, rep := call("GET", usagePath, "prepay-key", ""); code != http.StatusOK || fmt.Sprint(rep["totalCosts"]) != "[map[costMicros:200000 currency:EUR]]" ||
		rep["totalRefusals"] != "4" || !strings.Contains(fmt.Sprint(rep["refusals"]), "reason:INSUFFICIENT_BALANCE") {
		t.Errorf("GET %s: HTTP %d %v, want a total cost of 200000 EUR and 4 refusals for INSUFFICIENT_BALANCE", usagePath, code, rep)
	}
	// Available fell from 0.10 to 0.05 with the fourth reservation: one alert.
	alerts := hook.waitFor(t, 1, func(c hookCall) bool { return c.event == "low_balance" })
	if a := alerts[0].body; a["threshold"] != "0.10" || a["available"] != "0.05" || a["currency"] != "EUR" {
		t.Errorf("low-balance alert %v, want threshold 0.10, available 0.05 EUR", a)
	}

	// A scheduled message holds its price until it is cancelled.
	if code, out := topUp("0.05", "inv-2", "operator-key"); code != http.StatusOK {
		t.Fatalf("second top-up: HTTP %d %v", code, out)
	}
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	code, out = call("POST", "/v1/messages", "prepay-key", fmt.Sprintf(`{"from":"PREPAY","to":"+61400000008","text":"later","scheduleAt":%q}`, at))
	if code != http.StatusAccepted {
		t.Fatalf("scheduled submission: HTTP %d %v", code, out)
	}
	scheduled := out["id"].(string)
	if b := balance(); b["reserved"] != "0.05" || b["available"] != "0.00" {
		t.Fatalf("balance with the scheduled message: %v, want 0.05 held", b)
	}
	if code, out := call("POST", "/v1/messages", "prepay-key", `{"from":"PREPAY","to":"+61400000009","text":"no room"}`); code != http.StatusPaymentRequired {
		t.Fatalf("submission while the scheduled message holds the balance: HTTP %d %v, want 402", code, out)
	}
	if code, out := call("POST", "/v1/messages/"+scheduled+":cancel", "prepay-key", `{}`); code != http.StatusOK {
		t.Fatalf("cancel: HTTP %d %v", code, out)
	}
	untilBalance("0.05 available and nothing held after the cancel", func(b map[string]any) bool { return b["reserved"] == "0.00" && b["available"] == "0.05" })
	if n := len(g.sim.Submits()); n != 4 {
		t.Errorf("the SMSC has %d messages, want still the 4", n)
	}
}

// TestEndToEndPrepaidAcrossTwoProcesses runs two `smsgw all` processes on
// the same stores and Temporal, as two replicas, and submits 30 messages at
// once, half through each, for a prepaid customer whose balance covers 20:
// exactly 20 are accepted, and once they are delivered the balance is
// 0.00, the ledger holds one reservation and one settlement per accepted
// message and nothing for the refused, and every balance equals its ledger.
func TestEndToEndPrepaidAcrossTwoProcesses(t *testing.T) {
	g, g2 := prepaidReplicas(t, "-billing-operator-key", "plain:operator-key")

	if code, out := g2.do(t, "POST", "/v1/billing/customers/prepay:topUp", "operator-key", `{"amount":"1.00","reference":"inv-1"}`); code != http.StatusOK {
		t.Fatalf("top-up: HTTP %d %v", code, out)
	}
	codes := make(chan int, 30)
	for i := range 30 {
		gw := g
		if i%2 == 1 {
			gw = g2
		}
		go func() {
			code, _ := gw.do(t, "POST", "/v1/messages", "prepay-key", fmt.Sprintf(`{"from":"PREPAY","to":"+614000001%02d","text":"race %d"}`, i, i))
			codes <- code
		}()
	}
	count := map[int]int{}
	for range 30 {
		count[<-codes]++
	}
	if count[http.StatusAccepted] != 20 || count[http.StatusPaymentRequired] != 10 {
		t.Fatalf("answers %v, want 20 accepted and 10 refused with 402", count)
	}

	db, err := sql.Open("mysql", g.mysqlDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var balance, reserved int64
		err := db.QueryRow("SELECT balance_micros, reserved_micros FROM billing_balances WHERE customer_id = 'prepay'").Scan(&balance, &reserved)
		if err == nil && balance == 0 && reserved == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("balance %d held %d (%v) after 90 s, want 0 and 0", balance, reserved, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	steps := map[string]int{}
	rows, err := db.Query("SELECT step, kind, COUNT(*), SUM(amount_micros), SUM(reserved_micros) FROM billing_ledger WHERE customer_id = 'prepay' GROUP BY step, kind")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var step, kind string
		var n int
		var amount, held int64
		if err := rows.Scan(&step, &kind, &n, &amount, &held); err != nil {
			t.Fatal(err)
		}
		steps[kind] = n
		t.Logf("%s/%s: %d movements, amount %d, held %d", step, kind, n, amount, held)
	}
	if steps[smsgw.MoveReserve] != 20 || steps[smsgw.MoveSettle] != 20 || steps[smsgw.MoveTopUp] != 1 || len(steps) != 3 {
		t.Errorf("ledger %v, want 20 reservations, 20 settlements and the top-up", steps)
	}
	cli := func(args ...string) string {
		t.Helper()
		var out strings.Builder
		args = append(args, "-config", g.cfgPath, "-mysql-dsn", g.mysqlDSN)
		if code := run(context.Background(), append([]string{"billing"}, args...), func(string) string { return "" }, &out, &out); code != 0 {
			t.Fatalf("smsgw billing %s: exit %d: %s", args[0], code, out.String())
		}
		return out.String()
	}
	// The command tops up once per reference, and the ledger still adds up.
	cli("topup", "-customer", "prepay", "-amount", "0.10", "-reference", "cli-1")
	if out := cli("topup", "-customer", "prepay", "-amount", "0.10", "-reference", "cli-1"); !strings.Contains(out, "applied before") ||
		!strings.Contains(out, "prepay: balance 0.10 EUR, reserved 0.00, available 0.10") {
		t.Errorf("repeated top-up: %q", out)
	}
	if out := cli("reconcile"); !strings.Contains(out, "every balance equals the sum of its ledger") {
		t.Errorf("reconcile: %q", out)
	}
}

// TestEndToEndOrphanReservationIsReleased runs two `smsgw all` processes
// with a short reservation grace period. A reservation whose message's
// workflow never started (as after a submission answered EUNKNOWN whose
// start never reached Temporal) is released, once, by whichever replica
// finds it first; the reservation of a scheduled message, whose workflow
// is running, stays held.
func TestEndToEndOrphanReservationIsReleased(t *testing.T) {
	g, g2 := prepaidReplicas(t, "-billing-operator-key", "plain:operator-key", "-reservation-grace", "2s", "-reservation-interval", "300ms")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if code, out := g.do(t, "POST", "/v1/billing/customers/prepay:topUp", "operator-key", `{"amount":"1.00","reference":"inv-1"}`); code != http.StatusOK {
		t.Fatalf("top-up: HTTP %d %v", code, out)
	}
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	code, out := g.do(t, "POST", "/v1/messages", "prepay-key", fmt.Sprintf(`{"from":"PREPAY","to":"+61400000008","text":"later","scheduleAt":%q}`, at))
	if code != http.StatusAccepted {
		t.Fatalf("scheduled submission: HTTP %d %v", code, out)
	}
	scheduled := out["id"].(string)

	// A reservation made as the Submitter makes it, for a message whose
	// workflow was never started.
	ledger, err := mysqlstore.Open(ctx, g.mysqlDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer ledger.Close()
	if _, err := ledger.Reserve(ctx, "prepay", "EUR", "orphan-message", 70_000, 1, time.Now()); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("mysql", g.mysqlDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	held := func() int64 {
		t.Helper()
		var reserved int64
		if err := db.QueryRowContext(ctx, "SELECT reserved_micros FROM billing_balances WHERE customer_id = 'prepay'").Scan(&reserved); err != nil {
			t.Fatal(err)
		}
		return reserved
	}
	if h := held(); h != 120_000 {
		t.Fatalf("held %d, want the scheduled message's 50000 and the orphan's 70000", h)
	}
	deadline := time.Now().Add(time.Minute)
	for held() != 50_000 {
		if time.Now().After(deadline) {
			t.Fatalf("held %d a minute on, want only the scheduled message's 50000", held())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Several more passes of both replicas change nothing.
	time.Sleep(2 * time.Second)
	if h := held(); h != 50_000 {
		t.Fatalf("held %d after more passes, want 50000", h)
	}
	closes := map[string][]string{}
	rows, err := db.QueryContext(ctx, "SELECT entry_key, kind FROM billing_ledger WHERE step = 'close'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, kind string
		if err := rows.Scan(&key, &kind); err != nil {
			t.Fatal(err)
		}
		closes[key] = append(closes[key], kind)
	}
	if len(closes) != 1 || fmt.Sprint(closes["orphan-message"]) != "[release]" {
		t.Fatalf("close steps %v, want one release of the orphan and nothing for %s", closes, scheduled)
	}
	var released float64
	for _, m := range []string{g.metrics, g2.metrics} {
		released += metricValue(t, m, "smsgw_billing_orphan_reservations_released_total")
	}
	if released != 1 {
		t.Errorf("smsgw_billing_orphan_reservations_released_total %v across the two replicas, want 1", released)
	}
	if code, out := g.do(t, "GET", "/v1/balance", "prepay-key", ""); code != http.StatusOK || fmt.Sprint(out["balance"].(map[string]any)["available"]) != "0.95" {
		t.Errorf("GET /v1/balance: HTTP %d %v, want 0.95 available", code, out)
	}
}

// prepaidReplicas starts two `smsgw all` processes with flags on the same
// stores and Temporal, as two replicas, for one prepaid customer (prepay,
// key prepay-key) at 0.05 EUR a segment to +61.
func prepaidReplicas(t *testing.T, flags ...string) (*gateway, *gateway) {
	g := startGatewayWith(t, "", gatewayExtras{
		customers: `  - id: prepay
    apiKeys: ["plain:prepay-key"]
    billing: {mode: prepaid}
`,
		sections: `priceLists:
  - {id: retail, currency: EUR, customers: [prepay], rates: [{prefix: "+61", price: 0.05}]}
`,
		flags: flags,
	})
	return g, replicaOf(t, g, flags...)
}

// replicaOf starts a second `smsgw all` process with flags on g's stores,
// Temporal and configuration, with listeners of its own: a second replica.
func replicaOf(t *testing.T, g *gateway, flags ...string) *gateway {
	g2 := *g
	g2.httpAddr, g2.grpc, g2.smtp, g2.smpp, g2.metricsAddr = freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	g2.base = "http://" + g2.httpAddr
	g2.metrics = "http://" + g2.metricsAddr
	t.Cleanup(g2.run(t, append(g.keys.flags(), flags...)...))
	return &g2
}

// metricValue reads the value of an unlabelled series from a /metrics page.
func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	v, err := gaugeOf(context.Background(), base+"/metrics", name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
