package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smpptest"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/notify/webhook"
	"github.com/smsgw/smsgw/store/mongostore"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

// The end-to-end tests run `smsgw all` against a real Temporal dev server,
// FerretDB, MariaDB, SMSC simulators on TCP and an HTTP webhook receiver.

// hookRecorder is a customer's webhook endpoint.
type hookRecorder struct {
	mu    sync.Mutex
	got   map[string][]map[string]any
	bad   []string
	srv   *http.Server
	url   string
	fails int // answer 503 to this many posts first
}

func newHookRecorder(t *testing.T, secret string) *hookRecorder {
	h := &hookRecorder{got: map[string][]map[string]any{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.url = "http://" + ln.Addr().String() + "/hook"
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.fails > 0 {
			h.fails--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), time.Minute); err != nil {
			h.bad = append(h.bad, err.Error())
		}
		var n map[string]any
		if err := json.Unmarshal(body, &n); err != nil {
			h.bad = append(h.bad, err.Error())
		}
		id, _ := n["messageId"].(string)
		h.got[id] = append(h.got[id], n)
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = h.srv.Serve(ln) }()
	t.Cleanup(func() { h.srv.Close() })
	return h
}

func (h *hookRecorder) waitFor(t *testing.T, id string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		got := h.got[id]
		h.mu.Unlock()
		if len(got) > 0 {
			return got[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no webhook for %s within %s", id, timeout)
	return nil
}

// freeAddr is a loopback address free now, never handed out before in
// this test binary: the kernel may give a port just closed to the next
// listener asked for, and two of a gateway's listeners then collide.
func freeAddr(t *testing.T) string {
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, seen := handedOut.LoadOrStore(addr, true); !seen {
			return addr
		}
	}
}

// handedOut holds every address freeAddr returned.
var handedOut sync.Map

func startSim(t *testing.T, ctx context.Context, cfg smpptest.Config) (*smpptest.SMSC, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sim := smpptest.New(cfg)
	go func() { _ = sim.Serve(ctx, ln) }()
	return sim, ln.Addr().String()
}

type gateway struct {
	base     string
	temporal string
	mongoURI string
	mongoDB  string
	mysqlDSN string
	hook     *hookRecorder
	sim      *smpptest.SMSC
	early    *smpptest.SMSC
	smtp     string // the email-to-SMS SMTP listener
	grpc     string // the gRPC API
	smpp     string // the customers' SMSC
	// primary and backup serve +44, in that order, for failover tests.
	primary, backup *smpptest.SMSC
	// cfgPath is the configuration file smsgw runs with, cfg what it held
	// at the start.
	cfgPath, cfg string
	httpAddr     string
	// metricsAddr is the metrics listener's address, metrics its base URL.
	metricsAddr, metrics string
	// logs returns what the running smsgw has logged so far.
	logs func() string
	// keys are the payload keys smsgw seals Temporal payloads with.
	keys *payloadKeys
	// stop stops the running smsgw (run starts another).
	stop func()
}

// startGateway runs `smsgw all` with two connectors: "sim" (receipts after
// the submit response, routes +61) and "early" (the receipt comes before the
// submit response, routes +64).
func startGateway(t *testing.T) *gateway { return startGatewayWith(t, "") }

// startGatewayWith runs the gateway against the event store at mongoURI, or
// a fresh one when it is empty, with extras added to its configuration.
func startGatewayWith(t *testing.T, mongoURI string, extras ...gatewayExtras) *gateway {
	if testing.Short() {
		t.Skip("end-to-end test: needs the Temporal CLI, FerretDB and MariaDB")
	}
	ctx, cancel := context.WithCancel(context.Background())
	if mongoURI == "" {
		mongoURI = testenv.MongoURI(t)
	}
	g := &gateway{
		temporal: testenv.TemporalAddress(t),
		mongoURI: mongoURI,
		mongoDB:  testenv.MongoDatabase(t),
		mysqlDSN: testenv.MySQLDSN(t),
		hook:     newHookRecorder(t, "acme-secret"),
	}
	var simAddr, earlyAddr string
	g.sim, simAddr = startSim(t, ctx, smpptest.Config{SystemID: "gw", Password: "pw", ReceiptDelay: 50 * time.Millisecond,
		Outcome: func(dest string) (string, string) {
			if strings.HasSuffix(dest, "0000") {
				return "UNDELIV", "001"
			}
			return "DELIVRD", "000"
		}})
	g.early, earlyAddr = startSim(t, ctx, smpptest.Config{SystemID: "gw", Password: "pw", ReceiptBeforeResp: true})
	var primaryAddr, backupAddr string
	g.primary, primaryAddr = startSim(t, ctx, smpptest.Config{SystemID: "gw", Password: "pw", ReceiptDelay: 2 * time.Second,
		ReceiptAttempts: 60, ReceiptRetryInterval: 500 * time.Millisecond})
	g.backup, backupAddr = startSim(t, ctx, smpptest.Config{SystemID: "gw", Password: "pw"})

	var extra gatewayExtras
	if len(extras) > 0 {
		extra = extras[0]
	}
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	cfg := fmt.Sprintf(`
webhooks:
  allowNetworks: ["127.0.0.0/8", "::1/128"] # the tests' receivers
customers:
  - id: acme
    apiKeys: ["plain:acme-key"]
    webhook: {url: %q, secret: acme-secret}
  - id: other
    apiKeys: ["sha256:%s"]
%sconnectors:
  - {id: sim, address: %q, systemId: gw, password: pw, windowSize: 10}
  - {id: early, address: %q, systemId: gw, password: pw, concat: sar}
  - {id: primary, address: %q, systemId: gw, password: pw, rebindMin: 200ms, rebindMax: 500ms}
  - {id: backup, address: %q, systemId: gw, password: pw}
%sroutes:
  - {name: australia, prefixes: ["+61"], connectors: [sim]}
  - {name: new-zealand, prefixes: ["+64"], connectors: [early]}
  - {name: united-kingdom, prefixes: ["+44"], connectors: [primary, backup]}
%s%s`, g.hook.url, smsgw.HashAPIKey("other-key"), extra.customers, simAddr, earlyAddr, primaryAddr, backupAddr, extra.connectors, extra.routes, extra.sections)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g.cfgPath, g.cfg = cfgPath, cfg
	g.httpAddr, g.grpc, g.smtp, g.smpp, g.metricsAddr = freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	g.base = "http://" + g.httpAddr
	g.metrics = "http://" + g.metricsAddr
	g.keys = newPayloadKeys(t, "k1")
	g.stop = g.run(t, append(g.keys.flags(), extra.flags...)...)
	t.Cleanup(func() {
		recordHistories(t, g.temporal, mustRing(t, g.keys))
		g.stop()
		cancel()
	})
	return g
}

// run starts `smsgw all` with the gateway's stores, listeners and
// configuration, and flags after those, and waits until it is ready. stop
// stops it and waits for it to exit; its logs are shown if the test failed.
func (g *gateway) run(t *testing.T, flags ...string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var logs bytes.Buffer
	var logMu sync.Mutex
	g.logs = func() string {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.String()
	}
	go func() {
		done <- run(ctx, g.args(flags...), func(string) string { return "" }, io.Discard, &lockedWriter{w: &logs, mu: &logMu})
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			// A drain waits up to 20 s for a connector's sends and longer on
			// a loaded machine; past a minute, what it is still doing tells a
			// slow drain from a hang.
			var stacks strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			t.Errorf("smsgw did not stop within 60s; goroutines:\n%s", stacks.String())
		}
		if t.Failed() {
			logMu.Lock()
			t.Logf("smsgw logs:\n%s", logs.String())
			logMu.Unlock()
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(g.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case code := <-done:
			t.Fatalf("smsgw exited with %d:\n%s", code, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("smsgw not ready: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return stop
}

// args are the arguments of `smsgw all` with the gateway's stores,
// listeners and configuration, and flags after those.
func (g *gateway) args(flags ...string) []string {
	args := []string{"all",
		"-config", g.cfgPath, "-temporal-address", g.temporal,
		"-mongodb-uri", g.mongoURI, "-mongodb-database", g.mongoDB, "-mysql-dsn", g.mysqlDSN,
		"-http-addr", g.httpAddr, "-grpc-addr", g.grpc, "-smtp-addr", g.smtp, "-smpp-addr", g.smpp, "-metrics-addr", g.metricsAddr,
		"-log-level", "warn", "-failover-after", "2s",
		"-send-here", // as make dev runs it
	}
	return append(args, flags...)
}

// buildSmsgw builds smsgw from this tree, for a test that runs it as a
// process of its own, and returns the binary's path.
func buildSmsgw(t *testing.T, ctx context.Context) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "smsgw")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (g *gateway) do(t *testing.T, method, path, key, body string, header ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, g.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	if out == nil {
		out = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, out
}

// submitsTo counts the submit_sm the "sim" SMSC received for dest.
func (g *gateway) submitsTo(dest string) int {
	n := 0
	for _, s := range g.sim.Submits() {
		if s.DestAddr == dest {
			n++
		}
	}
	return n
}

func statusName(v any) string {
	return strings.TrimPrefix(fmt.Sprint(v), "MESSAGE_STATUS_")
}

func TestEndToEndRESTToWebhook(t *testing.T) {
	g := startGateway(t)

	code, acc := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+61412345678","text":"Hello {world} €","callbackUrl":""}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit: HTTP %d %v", code, acc)
	}
	id, _ := acc["id"].(string)
	if id == "" || statusName(acc["status"]) != "ACCEPTED" {
		t.Fatalf("submit answer %v", acc)
	}

	n := g.hook.waitFor(t, id, 30*time.Second)
	if n["status"] != "DELIVERED" || n["seq"] == nil || n["occurredAt"] == nil {
		t.Fatalf("webhook %v, want DELIVERED with seq and occurredAt", n)
	}
	g.hook.mu.Lock()
	if len(g.hook.bad) > 0 {
		t.Errorf("bad webhooks: %v", g.hook.bad)
	}
	g.hook.mu.Unlock()

	// The API, the reporting row and the event store agree.
	code, msg := g.do(t, "GET", "/v1/messages/"+id, "acme-key", "")
	if code != 200 || statusName(msg["status"]) != "DELIVERED" || msg["to"] != "+61412345678" {
		t.Fatalf("GET: HTTP %d %v", code, msg)
	}
	ctx := context.Background()
	reports, err := mysqlstore.Open(ctx, g.mysqlDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer reports.Close()
	row, err := reports.GetMessage(ctx, id)
	if err != nil || row.Status != smsgw.StatusDelivered || row.ConnectorID != "sim" || row.UpstreamID == "" || row.DoneAt == nil {
		t.Fatalf("reporting row %+v, %v", row, err)
	}
	events, err := mongostore.Open(ctx, g.mongoURI, g.mongoDB)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close(ctx)
	// The delivery's own event is written after the webhook came, in the
	// background: with the next batch of events or after
	// -store-batch-lazy-wait.
	var types []string
	testenv.WaitFor(t, "the webhook's notified event", func() bool {
		evs, err := events.Events(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		types = types[:0]
		for _, e := range evs {
			types = append(types, e.Type)
		}
		return len(types) > 0 && types[len(types)-1] == smsgw.EventNotified
	})
	want := []string{smsgw.EventAccepted, smsgw.EventRouted, smsgw.EventSent, smsgw.EventReceipt, smsgw.EventFinal, smsgw.EventNotified}
	if strings.Join(types, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", types, want)
	}
	// Its message ended, so its correlation leaves the collection each
	// receipt reads within a second or so; the archive knows the upstream ID.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, ok, err := events.LookupCorrelation(ctx, "sim", row.UpstreamID)
		if err == nil && !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("correlation still in flight 10 s after the message ended: %+v %v %v", c, ok, err)
			break
		}
	}
	if known, err := events.Correlated(ctx, []smsgw.Receipt{{ConnectorID: "sim", UpstreamID: row.UpstreamID}}); err != nil || len(known) != 1 || !known[0] {
		t.Errorf("the archive does not know the upstream ID %s: %v %v", row.UpstreamID, known, err)
	}

	// Upstream saw the message once, in GSM 7-bit, and with the upstream ID we recorded.
	var seen int
	for _, s := range g.sim.Submits() {
		if s.DestAddr == "61412345678" {
			seen++
			if s.DataCoding != 0 || s.UpstreamID != row.UpstreamID {
				t.Errorf("submit at the SMSC: %+v, row upstream id %s", s, row.UpstreamID)
			}
		}
	}
	if seen != 1 {
		t.Fatalf("SMSC received the message %d times, want 1", seen)
	}

	// Support staff find it in Temporal by customer and status.
	tc, err := client.Dial(client.Options{HostPort: g.temporal})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	query := fmt.Sprintf(`CustomerId = "acme" AND MessageStatus = "DELIVERED" AND ConnectorId = "sim" AND WorkflowId = %q`, id)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err == nil && len(resp.GetExecutions()) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("visibility query %s found nothing: %v", query, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Another customer does not see it.
	if code, _ := g.do(t, "GET", "/v1/messages/"+id, "other-key", ""); code != http.StatusNotFound {
		t.Fatalf("other customer's GET: HTTP %d, want 404", code)
	}
}

func TestEndToEndReceiptBeforeSubmitResponse(t *testing.T) {
	g := startGateway(t)
	g.hook.mu.Lock()
	g.hook.fails = 2 // the customer's endpoint fails twice before it takes the receipt
	g.hook.mu.Unlock()
	code, acc := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+6421555123","text":"early bird"}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit: HTTP %d %v", code, acc)
	}
	id := acc["id"].(string)
	n := g.hook.waitFor(t, id, 30*time.Second)
	if n["status"] != "DELIVERED" {
		t.Fatalf("webhook %v, want DELIVERED", n)
	}
	time.Sleep(time.Second)
	g.hook.mu.Lock()
	defer g.hook.mu.Unlock()
	if len(g.hook.got[id]) != 1 || g.hook.fails != 0 {
		t.Fatalf("webhook taken %d times after %d refusals left, want once after both", len(g.hook.got[id]), g.hook.fails)
	}
}

func TestEndToEndIdempotencyAndBadInput(t *testing.T) {
	g := startGateway(t)
	body := `{"from":"ACME","to":"+61412345001","text":"once only"}`
	code1, a1 := g.do(t, "POST", "/v1/messages", "acme-key", body, "Idempotency-Key", "order-77")
	code2, a2 := g.do(t, "POST", "/v1/messages", "acme-key", body, "Idempotency-Key", "order-77")
	if code1 != 202 || code2 != 202 || a1["id"] != a2["id"] {
		t.Fatalf("same key: %d %v / %d %v, want the same id twice", code1, a1, code2, a2)
	}
	g.hook.waitFor(t, a1["id"].(string), 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	if seen := g.submitsTo("61412345001"); seen != 1 {
		t.Fatalf("idempotent submit reached the SMSC %d times, want 1", seen)
	}
	// Repeated once the message is delivered, the key answers with the
	// message as it is now, not as the new request would be.
	code3, a3 := g.do(t, "POST", "/v1/messages", "acme-key", body, "Idempotency-Key", "order-77")
	if code3 != 202 || a3["id"] != a1["id"] || statusName(a3["status"]) != "DELIVERED" || fmt.Sprint(a3["segments"]) != "1" || a3["encoding"] != "GSM7" {
		t.Fatalf("same key after delivery: %d %v, want 202 with the delivered message", code3, a3)
	}
	// The same key with another body is refused, whatever differs.
	for _, other := range []string{
		`{"from":"ACME","to":"+61412345001","text":"twice?"}`,
		`{"from":"ACME","to":"+61412345002","text":"once only"}`,
		`{"from":"ACME","to":"+61412345001","text":"once only","callbackUrl":"https://elsewhere.example/hook"}`,
		`{"from":"ACME","to":"+61412345001","text":"once only","validitySeconds":600}`,
	} {
		code, out := g.do(t, "POST", "/v1/messages", "acme-key", other, "Idempotency-Key", "order-77")
		if code != http.StatusConflict || !strings.Contains(fmt.Sprint(out["message"]), `"order-77" was already used for message `+a1["id"].(string)) {
			t.Errorf("same key, body %s: HTTP %d %v; want 409 naming the key and the message", other, code, out)
		}
	}
	// The message is unchanged, and nothing more reached the SMSC.
	if code, msg := g.do(t, "GET", "/v1/messages/"+a1["id"].(string), "acme-key", ""); code != 200 || statusName(msg["status"]) != "DELIVERED" || msg["to"] != "+61412345001" {
		t.Fatalf("GET after the refused repeats: HTTP %d %v", code, msg)
	}
	for _, s := range g.sim.Submits() {
		if s.DestAddr != "61412345001" || string(s.ShortMessage) != "once only" {
			t.Fatalf("a refused repeat reached the SMSC: %+v", s)
		}
	}
	if n := len(g.sim.Submits()); n != 1 {
		t.Fatalf("the SMSC has %d submits, want the first message's only", n)
	}

	for _, c := range []struct {
		key, body string
		want      int
		reason    string
	}{
		{"", body, 401, ""},
		{"wrong", body, 401, ""},
		{"acme-key", `{"from":`, 400, ""},
		{"acme-key", `{"from":"ACME","to":"+61412345678"}`, 400, "text is required"},
		{"acme-key", `{"from":"ACME","to":"12ab","text":"x"}`, 400, "not a valid international phone number"},
		{"acme-key", `{"from":"ACME","to":"+61412345678","text":"` + strings.Repeat("x", 2000) + `"}`, 400, "at most"},
		{"acme-key", `{"from":"ACME","to":"+4915112345678","text":"x"}`, 400, "no route"},
	} {
		code, out := g.do(t, "POST", "/v1/messages", c.key, c.body)
		if code != c.want || !strings.Contains(fmt.Sprint(out["message"]), c.reason) {
			t.Errorf("POST %.40s with key %q: HTTP %d %v, want %d with %q", c.body, c.key, code, out, c.want, c.reason)
		}
	}
	if code, _ := g.do(t, "GET", "/v1/messages/does-not-exist", "acme-key", ""); code != 404 {
		t.Errorf("unknown id: HTTP %d, want 404", code)
	}
}

func TestEndToEndUndeliverable(t *testing.T) {
	g := startGateway(t)
	_, acc := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+61400000000","text":"to a dead phone"}`)
	n := g.hook.waitFor(t, acc["id"].(string), 30*time.Second)
	if n["status"] != "UNDELIVERABLE" || n["errorCode"] != "001" {
		t.Fatalf("webhook %v, want UNDELIVERABLE with error 001", n)
	}
}

// TestEndToEndRejectedAndExpired covers the two ends that come from
// upstream's silence or refusal: a submit_sm refused for good ends
// REJECTED at once, and a message whose receipt never comes ends EXPIRED
// when its validity does. Each is notified like any final status.
func TestEndToEndRejectedAndExpired(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, lossy := startSim(t, ctx, smpptest.Config{SystemID: "gw", Password: "pw",
		Outcome: func(string) (string, string) { return "", "" }})
	_, strict := startSim(t, ctx, smpptest.Config{SystemID: "gw", Password: "pw",
		SubmitStatus: func(string, int) uint32 { return smppstatus.ESME_RINVDSTADR }})
	g := startGatewayWith(t, "", gatewayExtras{
		connectors: fmt.Sprintf("  - {id: lossy, address: %q, systemId: gw, password: pw}\n  - {id: strict, address: %q, systemId: gw, password: pw}\n", lossy, strict),
		routes:     "  - {name: sweden, prefixes: [\"+46\"], connectors: [lossy]}\n  - {name: norway, prefixes: [\"+47\"], connectors: [strict]}\n",
	})
	_, rejected := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+4740000001","text":"refused upstream"}`)
	_, expired := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+4670000001","text":"receipt lost","validitySeconds":4}`)
	if n := g.hook.waitFor(t, fmt.Sprint(rejected["id"]), 30*time.Second); n["status"] != "REJECTED" {
		t.Errorf("webhook %v, want REJECTED", n)
	}
	if n := g.hook.waitFor(t, fmt.Sprint(expired["id"]), 30*time.Second); n["status"] != "EXPIRED" {
		t.Errorf("webhook %v, want EXPIRED", n)
	}
}
