package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"testing"
)

// TestEndToEndRefusedAfterRulesIsNotCounted: a submission the rules let
// in but a later step refuses (here the balance, 402) is taken back from
// the velocity counts. A prepaid customer with a limit of 2 messages an
// hour to a number and nothing on its balance is refused three times;
// once topped up, two messages to the number are accepted, and only the
// third is over the limit.
func TestEndToEndRefusedAfterRulesIsNotCounted(t *testing.T) {
	g := startGatewayWith(t, "", gatewayExtras{
		customers: `  - id: broke
    apiKeys: ["plain:broke-key"]
    billing: {mode: prepaid}
    rules:
      velocity:
        - {per: number, max: 2, window: 1h}
      pumpingGuard: {factor: 2, minMessages: 100, prefixDigits: 2, minBaseline: 1, action: alert}
`,
		sections: `priceLists:
  - {id: retail, currency: EUR, customers: [broke], rates: [{prefix: "+61", price: 0.05}]}
`,
		flags: []string{"-billing-operator-key", "plain:operator-key"},
	})
	send := func(i int) (int, map[string]any) {
		t.Helper()
		return g.do(t, "POST", "/v1/messages", "broke-key", fmt.Sprintf(`{"from":"BROKE","to":"+61412000091","text":"hi %d"}`, i))
	}
	for i := range 3 {
		if code, out := send(i); code != http.StatusPaymentRequired || reasonOf(out) != "INSUFFICIENT_BALANCE" {
			t.Fatalf("submission %d on an empty balance: HTTP %d %v, want 402 INSUFFICIENT_BALANCE", i+1, code, out)
		}
	}
	if code, out := g.do(t, "POST", "/v1/billing/customers/broke:topUp", "operator-key", `{"amount":"1.00","reference":"inv-1"}`); code != http.StatusOK {
		t.Fatalf("top-up: HTTP %d %v", code, out)
	}
	for i := 3; i < 5; i++ {
		if code, out := send(i); code != http.StatusAccepted {
			t.Fatalf("submission %d after the top-up: HTTP %d %v, want 202 (the refused ones were counted toward the limit)", i+1, code, out)
		}
	}
	if code, out := send(5); code != http.StatusTooManyRequests || reasonOf(out) != "VELOCITY_LIMIT" {
		t.Errorf("the third message after the top-up: HTTP %d %v, want 429 VELOCITY_LIMIT", code, out)
	}
	// The pumping guard's traffic counted the two accepted only (the
	// velocity limit refused the last before the guard saw it).
	db, err := sql.Open("mysql", g.mysqlDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow("SELECT COALESCE(SUM(n), 0) FROM traffic_counts WHERE customer_id = 'broke' AND prefix = '+61'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("traffic to +61 counted %d messages, want the 2 accepted", n)
	}
}
