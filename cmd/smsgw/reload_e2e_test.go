package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smppserver/esme"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// rewriteConfig replaces the running gateway's configuration file, with a
// modification time the reload cannot mistake for the old file's.
func rewriteConfig(t *testing.T, g *gateway, cfg string, n int) {
	t.Helper()
	if err := os.WriteFile(g.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	mod := time.Now().Add(time.Duration(n) * time.Second)
	if err := os.Chtimes(g.cfgPath, mod, mod); err != nil {
		t.Fatal(err)
	}
}

// smppBindStatus binds to the gateway's SMSC and returns the bind's
// command_status.
func smppBindStatus(t *testing.T, g *gateway, systemID, password string) uint32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := esme.Dial(ctx, g.smpp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := c.Bind(ctx, smppwire.BindTransceiver, systemID, password)
	if err != nil {
		t.Fatalf("bind %s: %v", systemID, err)
	}
	return resp.Status
}

// A changed configuration file takes effect under a running `smsgw all`: a
// new customer, API key and route work, a removed customer's key and a
// removed route stop working, and a file that does not load leaves the
// configuration in force as it was.
func TestEndToEndConfigurationHotReload(t *testing.T) {
	g := startGatewayWith(t, "", gatewayExtras{flags: []string{"-reload-interval", "100ms"}})
	// keys checks which API keys authenticate: a known key is answered 404
	// (no such message), an unknown one 401.
	keys := func(when string, want map[string]int) {
		t.Helper()
		for key, code := range want {
			if got, _ := g.do(t, "GET", "/v1/messages/nothing-here", key, ""); got != code {
				t.Errorf("%s: key %s answers HTTP %d, want %d", when, key, got, code)
			}
		}
	}
	submit := func(key, to string) (int, map[string]any) {
		return g.do(t, "POST", "/v1/messages", key, fmt.Sprintf(`{"from":"ACME","to":%q,"text":"hot reload"}`, to))
	}

	// Before: no customer "later", no second key for acme, no route to France.
	keys("before the change", map[string]int{"later-key": 401, "acme-key-2": 401, "other-key": 404, "acme-key": 404})
	if code, out := submit("acme-key", "+33612345678"); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["message"]), "no route") {
		t.Fatalf("France before its route: HTTP %d %v, want 400 no route", code, out)
	}
	if code, out := submit("acme-key", "+6421555001"); code != http.StatusAccepted {
		t.Fatalf("New Zealand before its route is removed: HTTP %d %v", code, out)
	}
	if st := smppBindStatus(t, g, "later", "later-pw"); st == 0 {
		t.Fatal("an SMPP customer not yet configured could bind")
	}

	// The new file: customer "other" removed, a second key for acme, a new
	// customer with API and SMPP access, a route to France, none to New Zealand.
	other := regexp.MustCompile(`(?m)^  - id: other\n    apiKeys: \[[^\]]*\]\n`)
	if !other.MatchString(g.cfg) {
		t.Fatalf("customer other not found in\n%s", g.cfg)
	}
	cfg := other.ReplaceAllString(g.cfg, `  - id: later
    apiKeys: ["plain:later-key"]
    smpp: {systemId: later, password: "plain:later-pw"}
`)
	for _, r := range []struct{ old, new string }{
		{`apiKeys: ["plain:acme-key"]`, `apiKeys: ["plain:acme-key", "plain:acme-key-2"]`},
		{"  - {name: new-zealand, prefixes: [\"+64\"], connectors: [early]}\n", "  - {name: france, prefixes: [\"+33\"], connectors: [sim]}\n"},
	} {
		if !strings.Contains(cfg, r.old) {
			t.Fatalf("%q not found in\n%s", r.old, cfg)
		}
		cfg = strings.Replace(cfg, r.old, r.new, 1)
	}
	rewriteConfig(t, g, cfg, 1)

	var id string
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, out := submit("later-key", "+33612345678")
		if code == http.StatusAccepted {
			id, _ = out["id"].(string)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new customer's key and route did not take effect: HTTP %d %v", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	keys("after the change", map[string]int{"later-key": 404, "acme-key-2": 404, "other-key": 401, "acme-key": 404})
	if code, out := submit("acme-key", "+6421555002"); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["message"]), "no route") {
		t.Errorf("New Zealand after its route was removed: HTTP %d %v, want 400 no route", code, out)
	}
	if st := smppBindStatus(t, g, "later", "later-pw"); st != 0 {
		t.Errorf("the new SMPP customer's bind: status 0x%08X", st)
	}

	// The message of the new customer went out by the new route.
	deadline = time.Now().Add(30 * time.Second)
	for {
		code, msg := g.do(t, "GET", "/v1/messages/"+id, "later-key", "")
		if code == http.StatusOK && statusName(msg["status"]) == "DELIVERED" && msg["connectorId"] == "sim" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new customer's message: HTTP %d %v, want DELIVERED through sim", code, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if toFrance := g.submitsTo("33612345678"); toFrance != 1 {
		t.Errorf("the SMSC got %d messages for France, want 1", toFrance)
	}

	// A file that does not load is refused; the configuration in force stays.
	rewriteConfig(t, g, "customers: [{id: broken\n", 2)
	time.Sleep(time.Second)
	keys("after a broken file", map[string]int{"later-key": 404, "acme-key-2": 404, "other-key": 401})
}
