package main

import (
	"fmt"
	"net/http"
	"testing"
)

// TestEndToEndRepeatUnderKeyIsNotJudgedAgain: a submission repeated under
// its idempotency key is answered with the message the first one made,
// whatever the admission rules would now say of a new message: neither a
// velocity limit the first one used up nor an opt-out made since refuses
// it. (Fails on main: the rules run before the repeat is recognised.)
func TestEndToEndRepeatUnderKeyIsNotJudgedAgain(t *testing.T) {
	g := startGatewayWith(t, "", gatewayExtras{
		customers: `  - id: probe
    apiKeys: ["plain:probe-key"]
    rules:
      velocity:
        - {per: number, max: 1, window: 1h}
`,
	})
	submitTwice := func(to, key string, between func()) {
		t.Helper()
		body := fmt.Sprintf(`{"from":"PROBE","to":%q,"text":"hi","idempotencyKey":%q}`, to, key)
		code, first := g.do(t, "POST", "/v1/messages", "probe-key", body)
		if code != http.StatusAccepted {
			t.Fatalf("first submission to %s: HTTP %d %v", to, code, first)
		}
		between()
		code, again := g.do(t, "POST", "/v1/messages", "probe-key", body)
		if fmt.Sprint(again["id"]) != fmt.Sprint(first["id"]) {
			t.Errorf("repeat under key %s: HTTP %d %v, want the accepted message %v", key, code, again, first["id"])
		}
	}
	// The first used up the number's velocity limit of 1.
	submitTwice("+61412000077", "k-1", func() {})
	// The number opted out after the first was accepted.
	submitTwice("+61412000079", "k-2", func() {
		if code, out := g.do(t, "POST", "/v1/optouts", "probe-key", `{"number":"+61412000079"}`); code != http.StatusOK {
			t.Fatalf("add an opt-out: HTTP %d %v", code, out)
		}
	})
}
