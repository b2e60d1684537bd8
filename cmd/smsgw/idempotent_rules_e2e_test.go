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
// it, and the repeat is not counted toward the velocity limits: a new
// message after it still has the room the first one left.
func TestEndToEndRepeatUnderKeyIsNotJudgedAgain(t *testing.T) {
	g := startGatewayWith(t, "", gatewayExtras{
		customers: `  - id: probe
    apiKeys: ["plain:probe-key"]
    rules:
      velocity:
        - {per: number, max: 1, window: 1h}
  - id: roomy
    apiKeys: ["plain:roomy-key"]
    rules:
      velocity:
        - {per: number, max: 2, window: 1h}
`,
	})
	send := func(apiKey, to, key string) (int, map[string]any) {
		t.Helper()
		return g.do(t, "POST", "/v1/messages", apiKey, fmt.Sprintf(`{"from":"PROBE","to":%q,"text":"hi","idempotencyKey":%q}`, to, key))
	}
	submitTwice := func(apiKey, to, key string, between func()) {
		t.Helper()
		code, first := send(apiKey, to, key)
		if code != http.StatusAccepted {
			t.Fatalf("first submission to %s: HTTP %d %v", to, code, first)
		}
		between()
		code, again := send(apiKey, to, key)
		if code >= 300 || fmt.Sprint(again["id"]) != fmt.Sprint(first["id"]) {
			t.Errorf("repeat under key %s: HTTP %d %v, want the accepted message %v", key, code, again, first["id"])
		}
	}
	// The first used up the number's velocity limit of 1.
	submitTwice("probe-key", "+61412000077", "k-1", func() {})
	// The number opted out after the first was accepted.
	submitTwice("probe-key", "+61412000079", "k-2", func() {
		if code, out := g.do(t, "POST", "/v1/optouts", "probe-key", `{"number":"+61412000079"}`); code != http.StatusOK {
			t.Fatalf("add an opt-out: HTTP %d %v", code, out)
		}
	})
	// A limit of 2: the first and its repeat count once, so a second
	// message is let in, and a third is over the limit.
	submitTwice("roomy-key", "+61412000081", "r-1", func() {})
	if code, out := send("roomy-key", "+61412000081", "r-2"); code != http.StatusAccepted {
		t.Errorf("a second message after a repeat of the first: HTTP %d %v, want 202 (the repeat was counted)", code, out)
	}
	if code, out := send("roomy-key", "+61412000081", "r-3"); code != http.StatusTooManyRequests || reasonOf(out) != "VELOCITY_LIMIT" {
		t.Errorf("a third message: HTTP %d %v, want 429 VELOCITY_LIMIT", code, out)
	}
}
