package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppserver/esme"
	"github.com/smsgw/smsgw/connectors/smppwire"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// httpGet returns the status and body of a GET.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Metrics are served on their own listener, not by the public REST one.
func TestEndToEndMetricsOnTheirOwnListener(t *testing.T) {
	g := startGateway(t)
	if code, out := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+61412345678","text":"count me"}`); code != http.StatusAccepted {
		t.Fatalf("submit: HTTP %d %v", code, out)
	}
	if code, body := httpGet(t, g.base+"/metrics"); code != http.StatusNotFound || strings.Contains(body, "smsgw_") {
		t.Errorf("GET /metrics on the REST listener: %d %.100s, want 404", code, body)
	}
	code, body := httpGet(t, g.metrics+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, `smsgw_submissions_total{entry_point="rest",result="accepted"} 1`) || !strings.Contains(body, "go_goroutines") {
		t.Errorf("GET /metrics on the metrics listener: %d\n%.500s", code, body)
	}
	for _, base := range []string{g.metrics, g.base} {
		if code, body := httpGet(t, base+"/readyz"); code != http.StatusOK || strings.TrimSpace(body) != "ready" {
			t.Errorf("GET %s/readyz: %d %q", base, code, body)
		}
	}
}

// A callbackUrl that could never be posted to is refused at submission,
// over REST (400) and gRPC (INVALID_ARGUMENT); one whose name resolves to
// an address that is no longer allowed when the notification goes out is
// refused when it is dialled, and the customer is told so without the
// address.
func TestEndToEndWebhookAddressesAreChecked(t *testing.T) {
	g := startGatewayWith(t, "", gatewayExtras{flags: []string{"-reload-interval", "100ms"}})

	conn, err := grpc.NewClient(g.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := smsgwv1.NewMessageServiceClient(conn)
	for _, cb := range []string{
		"http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://[::ffff:10.0.0.1]:8500/v1/kv/",
		"http://100.64.0.1/",
		"https://user:pw@hooks.example.com/",
		"gopher://hooks.example.com/",
		"https://hooks.example.com/" + strings.Repeat("a", smsgw.MaxCallbackURLSize),
	} {
		code, out := g.do(t, "POST", "/v1/messages", "acme-key", fmt.Sprintf(`{"from":"ACME","to":"+61412345678","text":"probe","callbackUrl":%q}`, cb))
		if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["message"]), "callbackUrl") {
			t.Errorf("REST callbackUrl %.60s: HTTP %d %v, want 400 about the callbackUrl", cb, code, out)
		}
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer acme-key")
		_, err := api.SubmitMessage(ctx, &smsgwv1.SubmitMessageRequest{From: "ACME", To: "+61412345678", Text: "probe", CallbackUrl: cb})
		if grpcstatus.Code(err) != codes.InvalidArgument {
			t.Errorf("gRPC callbackUrl %.60s: %v, want INVALID_ARGUMENT", cb, err)
		}
	}

	// A receiver on loopback, named by "localhost", which the gateway's
	// configuration allows at first: it answers 503, so the notification
	// is retried.
	hook := newEventHook(t, "acme-secret")
	hook.mu.Lock()
	hook.down = true
	hook.mu.Unlock()
	callback := strings.Replace(hook.url, "127.0.0.1", "localhost", 1)
	code, acc := g.do(t, "POST", "/v1/messages", "acme-key", fmt.Sprintf(`{"from":"ACME","to":"+61412345678","text":"rebind","callbackUrl":%q}`, callback))
	if code != http.StatusAccepted {
		t.Fatalf("submit with a loopback callback while loopback is allowed: HTTP %d %v", code, acc)
	}
	id := acc["id"].(string)
	tries := func() int {
		hook.mu.Lock()
		defer hook.mu.Unlock()
		return hook.tries
	}
	deadline := time.Now().Add(30 * time.Second)
	for tries() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the receiver got no attempt within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Loopback is no longer allowed (and acme's own webhook moves off it),
	// with a new key to tell when the change is in force.
	cfg := strings.Replace(g.cfg, `allowNetworks: ["127.0.0.0/8", "::1/128"]`, `allowNetworks: []`, 1)
	cfg = strings.Replace(cfg, g.hook.url, "https://hooks.example.com/acme", 1)
	cfg = strings.Replace(cfg, `apiKeys: ["plain:acme-key"]`, `apiKeys: ["plain:acme-key", "plain:acme-key-2"]`, 1)
	rewriteConfig(t, g, cfg, 1)
	deadline = time.Now().Add(30 * time.Second)
	for {
		if code, _ := g.do(t, "GET", "/v1/messages/nothing-here", "acme-key-2", ""); code == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new configuration is not in force within 30s:\n%s", g.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := tries()

	var failed map[string]any
	deadline = time.Now().Add(90 * time.Second)
	for failed == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no failed notification for %s within 90s", id)
		}
		time.Sleep(200 * time.Millisecond)
		_, list := g.do(t, "GET", "/v1/notifications/failed", "acme-key", "")
		for _, n := range asList(list["notifications"]) {
			if n["messageId"] == id {
				failed = n
			}
		}
	}
	reason := fmt.Sprint(failed["reason"])
	if reason != "refused: address not allowed" {
		t.Errorf("failed notification's reason %q, want refused: address not allowed", reason)
	}
	if after := tries(); after != before {
		t.Errorf("the receiver got %d more attempts after loopback was disallowed", after-before)
	}
	// New submissions with it are refused outright now.
	if code, out := g.do(t, "POST", "/v1/messages", "acme-key", fmt.Sprintf(`{"from":"ACME","to":"+61412345678","text":"x","callbackUrl":%q}`, callback)); code != http.StatusBadRequest {
		t.Errorf("a localhost callback once loopback is disallowed: HTTP %d %v, want 400", code, out)
	}
}

// An end-to-end run over every entry point, with debug logging: the
// binary's logs hold none of the texts or full numbers sent, nor the
// passwords, keys and secrets it was given or refused.
func TestEndToEndLogsHoldNoSecretsTextsOrNumbers(t *testing.T) {
	shop := newEventHook(t, "shop-webhook-secret")
	g := startGatewayWith(t, "", gatewayExtras{
		customers: fmt.Sprintf(`  - id: smppco
    smpp: {systemId: smppco, password: "plain:smpp-pw-91"}
  - id: shop
    apiKeys: ["plain:shop-api-key-77"]
    webhook: {url: %q, secret: shop-webhook-secret}
    numbers: [{number: "+61400000001"}]
`, shop.url),
		flags: []string{"-log-level", "debug"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	texts := []string{"Your code is Quokka-8841", "Shipment Wombat-5512 leaves today", "over SMPP Numbat-3309", "MO Dingo-7720 hello",
		"garbled Emu-6650 receipt", "callback Koala-4417"}
	numbers := []string{"61412398761", "61412390000", "61412398763", "61412398764", "4915112398762", "61412398766", "61412398767"}

	// REST: delivered, undeliverable (the number ends in 0000), no route.
	code, acc := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+61412398761","text":"`+texts[0]+`"}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit: HTTP %d %v", code, acc)
	}
	g.hook.waitFor(t, acc["id"].(string), 30*time.Second)
	code, acc = g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+61412390000","text":"`+texts[1]+`"}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit: HTTP %d %v", code, acc)
	}
	g.hook.waitFor(t, acc["id"].(string), 30*time.Second)
	if code, out := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+4915112398762","text":"no route"}`); code != http.StatusBadRequest {
		t.Errorf("no route: HTTP %d %v", code, out)
	}
	// Wrong credentials: an API key and an SMPP password that are refused.
	if code, _ := g.do(t, "GET", "/v1/messages/x", "wrong-api-key-31", ""); code != http.StatusUnauthorized {
		t.Errorf("a wrong API key: HTTP %d", code)
	}
	if st := smppBindStatus(t, g, "smppco", "wrong-pw-53"); st == 0 {
		t.Error("a wrong SMPP password bound")
	}

	// SMPP: submit and receipt.
	c, err := esme.Dial(ctx, g.smpp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if resp, err := c.Bind(ctx, smppwire.BindTransceiver, "smppco", "smpp-pw-91"); err != nil || resp.Status != 0 {
		t.Fatalf("bind: %+v %v", resp.Header, err)
	}
	st, id, err := c.Submit(ctx, smppwire.Message{SourceTON: 5, Source: "SMPPCO", DestTON: 1, DestNPI: 1, Dest: "61412398763",
		RegisteredDelivery: 1, ShortMessage: []byte(texts[2])})
	if err != nil || st != 0 {
		t.Fatalf("submit_sm: 0x%08X %v", st, err)
	}
	if _, err := c.WaitFor(ctx, func(f smppwire.Frame) bool {
		m, err := esme.DecodeDeliver(f)
		return err == nil && smppwire.TLVString(m.TLVs[smppwire.TagReceiptedMessageID]) == id
	}); err != nil {
		t.Fatalf("no receipt: %v", err)
	}

	// MO to the shop's number, delivered by webhook.
	if err := g.sim.InjectMO(ctx, "61412398764", "61400000001", 0, 0, []byte(texts[3])); err != nil {
		t.Fatal(err)
	}
	shop.waitFor(t, 1, inbound(texts[3]))

	// A receipt from upstream that cannot be read: refused, and logged.
	if err := g.sim.InjectMO(ctx, "61412398766", "61400000009", 0, 0x04, []byte(texts[4]+" from 61412398766")); err == nil {
		t.Error("an unreadable receipt was taken")
	}
	// A callback URL that carries a number, whose first attempt fails.
	flaky := newEventHook(t, "acme-secret")
	flaky.mu.Lock()
	flaky.fails = 1
	flaky.mu.Unlock()
	code, acc = g.do(t, "POST", "/v1/messages", "acme-key", fmt.Sprintf(`{"from":"ACME","to":"+61412398767","text":%q,"callbackUrl":%q}`,
		texts[5], flaky.url+"?to=61412398767"))
	if code != http.StatusAccepted {
		t.Fatalf("submit: HTTP %d %v", code, acc)
	}
	flaky.waitFor(t, 1, status(acc["id"].(string)))

	logs := g.logs()
	if !strings.Contains(logs, `"level":"DEBUG"`) || !strings.Contains(logs, "api request") {
		t.Fatalf("the run logged too little to tell anything:\n%.2000s", logs)
	}
	leaked := func(what, s string) {
		if i := strings.Index(logs, s); i >= 0 {
			line := logs[strings.LastIndex(logs[:i], "\n")+1:]
			if j := strings.Index(line, "\n"); j >= 0 {
				line = line[:j]
			}
			t.Errorf("the logs hold %s %q:\n%s", what, s, line)
		}
	}
	for _, s := range texts {
		leaked("the text", s)
		for _, w := range strings.Fields(s) {
			if strings.Contains(w, "-") { // the word only this text has
				leaked("a word of the text", w)
			}
		}
	}
	for _, n := range numbers {
		leaked("the number", n)
		leaked("the number without its first digits", n[len(n)-7:])
	}
	for _, s := range []string{"acme-key", "shop-api-key-77", "wrong-api-key-31", "smpp-pw-91", "wrong-pw-53", "acme-secret", "shop-webhook-secret"} {
		leaked("the credential", s)
	}
}
