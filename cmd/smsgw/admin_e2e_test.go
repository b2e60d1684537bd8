package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smpptest"
)

// ctlRun runs the smsgw binary's `ctl` against a gateway and returns its
// exit code, standard output and standard error.
func ctlRun(t *testing.T, bin, addr string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"ctl", "-addr", addr}, args...)...)
	cmd.Env = append(os.Environ(), "SMSGW_ADMIN_KEY=admin-key")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// ctlOK runs `smsgw ctl` and fails the test unless it succeeds.
func ctlOK(t *testing.T, bin, addr string, args ...string) string {
	t.Helper()
	code, out, errOut := ctlRun(t, bin, addr, args...)
	if code != 0 {
		t.Fatalf("smsgw ctl %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// keyStatus is how a gateway answers a customer key: 404 for a message
// that does not exist (the key works), 401 once it is refused.
func keyStatus(t *testing.T, base, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/messages/nothing-here", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus waits until key answers want on every base, and returns how
// long that took.
func waitStatus(t *testing.T, key string, want int, within time.Duration, bases ...string) time.Duration {
	t.Helper()
	start := time.Now()
	for _, base := range bases {
		for keyStatus(t, base, key) != want {
			if time.Since(start) > within {
				t.Fatalf("%s: the key answers HTTP %d after %v, want %d", base, keyStatus(t, base, key), within, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// An operator runs the gateway without editing its file: with `smsgw ctl`
// a customer and its API key are made, the customer sends a message with
// the key, the key is revoked and refused within 5 s on both replicas (the
// second an `smsgw api` process of its own on the same store), a connector
// and a route added through the API take traffic without a restart, and
// the configuration exported is a file `smsgw check-config` accepts.
func TestEndToEndAdminAPIAndCtl(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	g := startGatewayWith(t, "", gatewayExtras{
		sections: "admin:\n  keys: [{name: ops, key: \"plain:admin-key\"}]\n",
		flags:    []string{"-config-poll", "1s"},
	})
	bin := buildSmsgw(t, ctx)

	// A second API replica on the same stores, with the same file.
	second := "http://" + freeAddr(t)
	var logs bytes.Buffer
	replica := exec.Command(bin, append([]string{"api", "-config", g.cfgPath,
		"-temporal-address", g.temporal, "-mongodb-uri", g.mongoURI, "-mongodb-database", g.mongoDB,
		"-mysql-dsn", g.mysqlDSN, "-http-addr", strings.TrimPrefix(second, "http://"), "-grpc-addr", freeAddr(t),
		"-metrics-addr", freeAddr(t), "-config-poll", "1s", "-log-level", "warn"}, g.keys.flags()...)...)
	replica.Stdout, replica.Stderr = &logs, &logs
	if err := replica.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = replica.Process.Signal(syscall.SIGTERM)
		_ = replica.Wait()
		if t.Failed() {
			t.Logf("second replica's logs:\n%s", logs.String())
		}
	})
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, err := http.Get(second + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("second replica not ready: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Keys are for their own side: a customer's key is forbidden on the
	// admin API, an admin key acts for no customer.
	if code, out := g.do(t, "GET", "/v1/admin/customers", "acme-key", ""); code != http.StatusForbidden {
		t.Errorf("a customer key on the admin API: HTTP %d %v, want 403", code, out)
	}
	if code, out := g.do(t, "GET", "/v1/messages/nothing-here", "admin-key", ""); code != http.StatusForbidden {
		t.Errorf("the admin key on the customer API: HTTP %d %v, want 403", code, out)
	}
	if code, _ := g.do(t, "GET", "/v1/admin/customers", "no-such-key", ""); code != http.StatusUnauthorized {
		t.Errorf("an unknown key on the admin API: HTTP %d, want 401", code)
	}

	// The operator makes a customer and a key.
	out := ctlOK(t, bin, g.base, "customers", "create", `{"id": "zeta", "name": "Zeta", "tps": 5, "allowedSenders": ["ZETA"], "smpp": {"systemId": "zeta", "password": "zeta-pw"}}`)
	if !strings.Contains(out, "id: zeta") || strings.Contains(out, "zeta-pw") {
		t.Errorf("customers create printed:\n%s", out)
	}
	out = ctlOK(t, bin, g.base, "-o", "json", "keys", "create", "zeta")
	var created struct {
		Key    string `json:"key"`
		APIKey struct {
			ID     string `json:"id"`
			Prefix string `json:"prefix"`
		} `json:"apiKey"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Key == "" || created.APIKey.ID == "" {
		t.Fatalf("keys create -o json: %v\n%s", err, out)
	}
	// The second replica takes the key within 5 s.
	took := waitStatus(t, created.Key, http.StatusNotFound, 5*time.Second, g.base, second)
	t.Logf("the new key worked on both replicas %v after ctl returned", took)
	if list := ctlOK(t, bin, g.base, "keys", "list", "zeta"); !strings.Contains(list, created.APIKey.ID) || !strings.Contains(list, created.APIKey.Prefix) || strings.Contains(list, created.Key) {
		t.Errorf("keys list:\n%s", list)
	}
	if list := ctlOK(t, bin, g.base, "customers", "list"); !strings.Contains(list, "zeta") || !strings.Contains(list, "acme") {
		t.Errorf("customers list:\n%s", list)
	}

	// The customer sends with it and reads the message back.
	code, msg := g.do(t, "POST", "/v1/messages", created.Key, `{"from":"ZETA","to":"+61412340001","text":"made by ctl"}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit with the new key: HTTP %d %v", code, msg)
	}
	id, _ := msg["id"].(string)
	if code, msg := g.do(t, "POST", "/v1/messages", created.Key, `{"from":"OTHER","to":"+61412340001","text":"x"}`); code != http.StatusBadRequest {
		t.Errorf("a sender the customer is not allowed: HTTP %d %v", code, msg)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		code, m := g.do(t, "GET", "/v1/messages/"+id, created.Key, "")
		if code == http.StatusOK && statusName(m["status"]) == "DELIVERED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the message: HTTP %d %v", code, m)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cmd := exec.Command(bin, "ctl", "-addr", second, "-o", "json", "messages", "get", id)
	cmd.Env = append(os.Environ(), "SMSGW_API_KEY="+created.Key)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "MESSAGE_STATUS_DELIVERED") {
		t.Errorf("ctl messages get on the second replica: %v\n%s", err, out)
	}

	// The operator finds it across customers, reads its events and the
	// usage, over REST and with ctl; a customer's key is refused there.
	operatorTraffic(t, g, bin, id, created.Key)

	// Revoked, the key is refused on both replicas within 5 s.
	ctlOK(t, bin, g.base, "keys", "revoke", "zeta", created.APIKey.ID)
	took = waitStatus(t, created.Key, http.StatusUnauthorized, 5*time.Second, g.base, second)
	t.Logf("the revoked key was refused on both replicas %v after ctl returned", took)

	// A connector and a route added through the API are bound and used
	// without a restart.
	fresh, freshAddr := startSim(t, ctx, smpptest.Config{SystemID: "gw2", Password: "pw2"})
	ctlOK(t, bin, g.base, "connectors", "create", fmt.Sprintf(`{"id": "fresh", "address": %q, "systemId": "gw2", "password": "pw2"}`, freshAddr))
	ctlOK(t, bin, g.base, "routes", "create", `{"name": "fiji", "prefixes": ["+679"], "connectors": ["fresh"]}`)
	bctx, bcancel := context.WithTimeout(ctx, 15*time.Second)
	if err := fresh.WaitBinds(bctx, 1); err != nil {
		t.Fatalf("the new connector did not bind: %v", err)
	}
	bcancel()
	if code, m := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+6797000001","text":"to fiji"}`); code != http.StatusAccepted {
		t.Fatalf("submit by the new route: HTTP %d %v", code, m)
	}
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	if err := fresh.WaitSubmits(wctx, 1); err != nil {
		t.Fatalf("the new connector sent nothing: %v", err)
	}
	wcancel()
	if conns := ctlOK(t, bin, g.base, "connectors", "list"); !strings.Contains(conns, "fresh") || strings.Contains(conns, "pw2") {
		t.Errorf("connectors list:\n%s", conns)
	}

	// Bad input: a clear reason and a non-zero exit.
	code, _, errOut := ctlRun(t, bin, g.base, "routes", "create", `{"name": "nowhere", "prefixes": ["+1"], "connectors": ["missing"]}`)
	if code == 0 || !strings.Contains(errOut, "HTTP 400") || !strings.Contains(errOut, `unknown connector "missing"`) {
		t.Errorf("a route to a missing connector: exit %d, %s", code, errOut)
	}
	if code, _, errOut := ctlRun(t, bin, g.base, "customers", "get", "nobody"); code == 0 || !strings.Contains(errOut, "HTTP 404") {
		t.Errorf("a missing customer: exit %d, %s", code, errOut)
	}

	// The audit log names the admin key, and shows no secret.
	audit := ctlOK(t, bin, g.base, "audit", "list")
	for _, want := range []string{"create customer zeta", "revoke API key " + created.APIKey.ID, "create connector fresh", "ops", "bootstrap"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit list has no %q:\n%s", want, audit)
		}
	}
	for _, secret := range []string{"zeta-pw", "pw2", created.Key} {
		if strings.Contains(audit, secret) {
			t.Errorf("audit list shows %q", secret)
		}
	}

	// Export: a file check-config accepts; import -dry-run shows a change.
	exported := ctlOK(t, bin, g.base, "export")
	path := filepath.Join(t.TempDir(), "exported.yaml")
	if err := os.WriteFile(path, []byte(exported), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "check-config", path).CombinedOutput(); err != nil {
		t.Fatalf("check-config of the export: %v\n%s\n%s", err, out, exported)
	}
	changed := strings.Replace(exported, "name: Zeta", "name: Zeta Ltd", 1)
	if err := os.WriteFile(path, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := ctlOK(t, bin, g.base, "import", "-dry-run", path); !strings.Contains(out, "~ customer zeta: name Zeta → Zeta Ltd") || !strings.Contains(out, "dry run") {
		t.Errorf("import -dry-run:\n%s", out)
	}
	if out := ctlOK(t, bin, g.base, "-o", "json", "customers", "get", "zeta"); !strings.Contains(out, `"name": "Zeta"`) {
		t.Errorf("a dry run changed the customer:\n%s", out)
	}
	if out := ctlOK(t, bin, g.base, "import", path); !strings.Contains(out, "imported as version") {
		t.Errorf("import:\n%s", out)
	}
	if out := ctlOK(t, bin, second, "-o", "json", "customers", "get", "zeta"); !strings.Contains(out, `"name": "Zeta Ltd"`) {
		t.Errorf("the import, read on the second replica:\n%s", out)
	}

	// Restarted with its file, which now differs, the gateway keeps the
	// stored configuration and says so.
	g.stop()
	g.stop = g.run(t, append(g.keys.flags(), "-config-poll", "1s")...)
	if !strings.Contains(g.logs(), "differs from the stored configuration") {
		t.Errorf("no report of the file differing:\n%s", g.logs())
	}
	if code, _ := g.do(t, "GET", "/v1/admin/customers/zeta", "admin-key", ""); code != http.StatusOK {
		t.Errorf("after the restart the customer made through the API: HTTP %d", code)
	}
}

// operatorTraffic checks the operators' traffic routes and their ctl
// commands on zeta's delivered message id (to +61412340001), then erases
// the number through the admin API.
func operatorTraffic(t *testing.T, g *gateway, bin, id, zetaKey string) {
	t.Helper()
	for _, path := range []string{"/v1/admin/messages", "/v1/admin/messages/" + id + "/events", "/v1/admin/usage?from=2026-01-01&to=2026-01-02"} {
		if code, out := g.do(t, "GET", path, zetaKey, ""); code != http.StatusForbidden {
			t.Errorf("a customer key on %s: HTTP %d %v, want 403", path, code, out)
		}
	}
	// The reporting database has the message once its projection ran.
	var found map[string]any
	for deadline := time.Now().Add(30 * time.Second); ; {
		code, out := g.do(t, "GET", "/v1/admin/messages?customerId=zeta&status=DELIVERED", "admin-key", "")
		if list, _ := out["messages"].([]any); code == http.StatusOK && len(list) == 1 {
			found = list[0].(map[string]any)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("operator search for zeta's message: HTTP %d %v", code, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if found["customerId"] != "zeta" || found["message"].(map[string]any)["id"] != id {
		t.Errorf("operator search found %v, want zeta's %s", found, id)
	}
	if code, out := g.do(t, "GET", "/v1/admin/messages/"+id+"/events", "admin-key", ""); code != http.StatusOK || out["customerId"] != "zeta" || len(out["events"].([]any)) < 4 {
		t.Errorf("operator events: HTTP %d %v", code, out)
	}
	today := time.Now().UTC()
	days := fmt.Sprintf("from=%s&to=%s", today.AddDate(0, 0, -1).Format(time.DateOnly), today.AddDate(0, 0, 2).Format(time.DateOnly))
	if code, out := g.do(t, "GET", "/v1/admin/usage?customerId=zeta&"+days, "admin-key", ""); code != http.StatusOK || fmt.Sprint(out["totalMessages"]) != "1" {
		t.Errorf("operator usage of zeta: HTTP %d %v, want 1 message", code, out)
	}
	if code, ctype, body := g.get(t, "/v1/admin/usage?"+days, "admin-key", "text/csv"); code != http.StatusOK || !strings.HasPrefix(ctype, "text/csv") ||
		!strings.HasPrefix(body, "day,customer_id,") || !strings.Contains(body, ",zeta,rest,sim,DELIVERED,1,1,,0,\n") {
		t.Errorf("operator usage CSV: HTTP %d %s\n%s", code, ctype, body)
	}

	// ctl, with the admin key only: every customer's traffic.
	if out := ctlOK(t, bin, g.base, "messages", "search", "-customer", "zeta", "-since", "1h"); !strings.Contains(out, id) || !strings.Contains(out, "DELIVERED") || !strings.Contains(out, "+61412340001") {
		t.Errorf("ctl messages search:\n%s", out)
	}
	out := ctlOK(t, bin, g.base, "-o", "json", "messages", "search", "-to", "+61412340001", "-page-size", "1", "-all")
	var page struct {
		Messages []struct {
			CustomerID string `json:"customerId"`
		} `json:"messages"`
	}
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Messages) != 1 || page.Messages[0].CustomerID != "zeta" {
		t.Errorf("ctl -o json messages search -all: %v\n%s", err, out)
	}
	if out := ctlOK(t, bin, g.base, "messages", "events", id); !strings.Contains(out, "# customer zeta") || !strings.Contains(out, "accepted") || !strings.Contains(out, "final") {
		t.Errorf("ctl messages events:\n%s", out)
	}
	if out := ctlOK(t, bin, g.base, "usage", "-customer", "zeta"); !strings.Contains(out, "zeta") || !strings.Contains(out, "total: 1 messages, 1 segments") {
		t.Errorf("ctl usage -customer zeta:\n%s", out)
	}
	// The customer's own routes, with its API key.
	if out := ctlOK(t, bin, g.base, "messages", "search", "-api-key", zetaKey); !strings.Contains(out, id) {
		t.Errorf("ctl messages search with the customer's key:\n%s", out)
	}
	if out := ctlOK(t, bin, g.base, "usage", "-api-key", zetaKey); !strings.Contains(out, "total: 1 messages, 1 segments") {
		t.Errorf("ctl usage with the customer's key:\n%s", out)
	}
	if out := ctlOK(t, bin, g.base, "messages", "events", id, "-api-key", zetaKey); !strings.Contains(out, "accepted") {
		t.Errorf("ctl messages events with the customer's key:\n%s", out)
	}
	if code, _, errOut := ctlRun(t, bin, g.base, "usage", "-tz", "Mars/Olympus"); code == 0 || !strings.Contains(errOut, "Mars/Olympus") {
		t.Errorf("ctl usage in no time zone: exit %d %s", code, errOut)
	}

	// Erasure through the admin API: the number's message is gone from
	// every store.
	if code, _, errOut := ctlRun(t, bin, g.base, "erase", "not-a-number"); code == 0 || !strings.Contains(errOut, "HTTP 400") {
		t.Errorf("ctl erase of no number: exit %d %s", code, errOut)
	}
	if code, out := g.do(t, "POST", "/v1/admin/erasures", zetaKey, `{"number":"+61412340001"}`); code != http.StatusForbidden {
		t.Errorf("a customer key erasing: HTTP %d %v, want 403", code, out)
	}
	out = ctlOK(t, bin, g.base, "-o", "json", "erase", "+61412340001", "-terminate", "-reason", "e2e request")
	var rep struct {
		ID       string `json:"id"`
		Messages int    `json:"messages"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.ID == "" || rep.Messages != 1 {
		t.Errorf("ctl erase: %v\n%s", err, out)
	}
	t.Logf("erasure through the admin API: %s", strings.Join(strings.Fields(out), " "))
	if code, out := g.do(t, "GET", "/v1/admin/messages?to=%2B61412340001", "admin-key", ""); code != http.StatusOK || out["messages"] != nil && len(out["messages"].([]any)) != 0 {
		t.Errorf("search after the erasure: HTTP %d %v, want nothing", code, out)
	}
	if code, out := g.do(t, "GET", "/v1/admin/messages/"+id+"/events", "admin-key", ""); code != http.StatusNotFound {
		t.Errorf("events after the erasure: HTTP %d %v, want 404", code, out)
	}
}
