package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/smsgw/smsgw/connectors/smppwire"
	"github.com/smsgw/smsgw/payloadcrypt"
	"github.com/smsgw/smsgw/workflows"
)

// payloadKeys are the keys a test gateway seals Temporal payloads with: a
// directory of key files, as a mounted Kubernetes Secret gives them, the
// workflow ID key, and the codec server's token.
type payloadKeys struct {
	dir, active string
	keys        []payloadcrypt.Key
	idKeyFile   string
	tokensFile  string
	token       string
}

func newPayloadKeys(t *testing.T, active string) *payloadKeys {
	t.Helper()
	// The Temporal UI takes the token in the endpoint's path: URL-safe.
	k := &payloadKeys{dir: t.TempDir(), token: "codec-" + strings.NewReplacer("+", "-", "/", "_", "=", "").Replace(randomText(t))}
	k.add(t, active)
	k.active = active
	meta := t.TempDir()
	k.idKeyFile, k.tokensFile = filepath.Join(meta, "workflow-id-key"), filepath.Join(meta, "codec-tokens")
	if err := os.WriteFile(k.idKeyFile, []byte(randomText(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.tokensFile, []byte("an-older-token\n"+k.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

func randomText(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// add writes a new key file.
func (k *payloadKeys) add(t *testing.T, id string) {
	t.Helper()
	secret := make([]byte, payloadcrypt.KeySize)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(k.dir, id), []byte(base64.StdEncoding.EncodeToString(secret)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k.keys = append(k.keys, payloadcrypt.Key{ID: id, Secret: secret})
}

// flags give smsgw the keys.
func (k *payloadKeys) flags() []string {
	return []string{"-payload-keys-dir", k.dir, "-payload-key-active", k.active,
		"-workflow-id-key-file", k.idKeyFile, "-codec-tokens-file", k.tokensFile}
}

// client is a Temporal client that opens what the gateway sealed.
func (k *payloadKeys) client(t *testing.T, address string) client.Client {
	t.Helper()
	ring, err := payloadcrypt.NewKeyring(k.keys, k.active)
	if err != nil {
		t.Fatal(err)
	}
	dc, fc := payloadcrypt.Converters(ring)
	tc, err := client.Dial(client.Options{HostPort: address, DataConverter: dc, FailureConverter: fc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	return tc
}

// rawHistory reads a workflow's history as Temporal stores it, with a
// client that has no codec.
func rawHistory(t *testing.T, address, id string) []*historypb.HistoryEvent {
	t.Helper()
	tc, err := client.Dial(client.Options{HostPort: address})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var events []*historypb.HistoryEvent
	it := tc.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	return events
}

func keyCounts(t *testing.T, events []*historypb.HistoryEvent) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, ev := range events {
		if err := payloadcrypt.CountKeys(ev, counts); err != nil {
			t.Fatal(err)
		}
	}
	return counts
}

// temporalCLI runs the pinned Temporal CLI and returns what it printed,
// with the payload data it printed in base64 decoded and appended.
func temporalCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runTemporalCLI(args...)
	if err != nil {
		t.Fatalf("temporal %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func runTemporalCLI(args ...string) (string, error) {
	path := os.Getenv("SMSGW_TEMPORAL_CLI")
	if path == "" {
		path = filepath.Join("..", "..", "bin", "temporal")
	}
	var out bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	printed := out.String()
	for _, m := range base64Field.FindAllStringSubmatch(printed, -1) {
		if b, err := base64.StdEncoding.DecodeString(m[1]); err == nil {
			printed += "\n" + string(b)
		}
	}
	return printed, err
}

// base64Field finds the base64 values (payload data) in JSON output.
var base64Field = regexp.MustCompile(`"([A-Za-z0-9+/]{8,}={0,2})"`)

// TestEndToEndMessageSealedInTemporal sends a message through the whole
// gateway, then reads its workflow as Temporal keeps it: without the codec
// (an SDK client without one, and the Temporal CLI) neither its text nor
// its destination shows anywhere; through the gateway's codec server (the
// CLI with --codec-endpoint, as support staff use it) both do.
func TestEndToEndMessageSealedInTemporal(t *testing.T) {
	codecAddr := freeAddr(t)
	g := startGatewayWith(t, "", gatewayExtras{flags: []string{"-codec-addr", codecAddr, "-codec-origins", "http://127.0.0.1:8233"}})
	const text, to, digits = "Your one-time code is 493817", "+61412345678", "412345678"
	code, acc := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"`+to+`","text":"`+text+`"}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit: HTTP %d %v", code, acc)
	}
	id := acc["id"].(string)
	if n := g.hook.waitFor(t, id, 30*time.Second); n["status"] != "DELIVERED" {
		t.Fatalf("webhook %v, want DELIVERED", n)
	}
	// The API still answers with the destination: it opens what it reads back.
	if code, msg := g.do(t, "GET", "/v1/messages/"+id, "acme-key", ""); code != 200 || msg["to"] != to {
		t.Fatalf("GET: HTTP %d %v", code, msg)
	}

	// Raw, through the SDK: every payload sealed with the active key.
	events := rawHistory(t, g.temporal, id)
	raw, err := protojson.Marshal(&historypb.History{Events: events})
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"493817", digits, base64.StdEncoding.EncodeToString([]byte(text))[:16]} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the raw history holds %q", secret)
		}
	}
	if counts := keyCounts(t, events); counts["k1"] < 5 || len(counts) != 1 {
		t.Errorf("payloads per key %v, want every one sealed with k1", counts)
	}

	// Raw, through the Temporal CLI: the history and the description (memo,
	// search attributes, workflow ID).
	for _, args := range [][]string{
		{"workflow", "show", "-w", id, "-o", "json", "--address", g.temporal},
		{"workflow", "describe", "-w", id, "-o", "json", "--address", g.temporal},
	} {
		out := temporalCLI(t, args...)
		if !strings.Contains(out, id) {
			t.Fatalf("temporal %s printed no workflow:\n%s", args[1], out)
		}
		if strings.Contains(out, "493817") || strings.Contains(out, digits) {
			t.Errorf("temporal workflow %s without the codec shows the text or the number:\n%s", args[1], out)
		}
	}

	// With the codec server, as support staff read it.
	codecURL := "http://" + codecAddr + "/codec"
	out := temporalCLI(t, "workflow", "show", "-w", id, "-o", "json", "--address", g.temporal,
		"--codec-endpoint", codecURL, "--codec-auth", "Bearer "+g.keys.token)
	if !strings.Contains(out, "493817") || !strings.Contains(out, digits) {
		t.Errorf("temporal workflow show through the codec server lacks the text or the number:\n%s", out)
	}
	if out, err := runTemporalCLI("workflow", "show", "-w", id, "-o", "json", "--address", g.temporal,
		"--codec-endpoint", codecURL, "--codec-auth", "Bearer wrong"); err == nil || strings.Contains(out, "493817") {
		t.Errorf("the codec server answered a wrong token (%v):\n%s", err, out)
	}

	// With an SDK client that has the keys: the workflow's input whole.
	var in workflows.MessageInput
	opened := g.keys.client(t, g.temporal)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	it := opened.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	first, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	dc, _ := payloadcrypt.Converters(mustRing(t, g.keys))
	if err := dc.FromPayloads(first.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err != nil ||
		in.Message.Text != text || in.Message.To != to {
		t.Fatalf("input opened with the keys: %+v, %v", in.Message, err)
	}

	// The Temporal UI's form: a browser preflight from the UI's origin, then
	// a decode with the token in the endpoint's path.
	req, _ := http.NewRequest(http.MethodOptions, codecURL+"/"+g.keys.token+"/decode", nil)
	req.Header.Set("Origin", "http://127.0.0.1:8233")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:8233" {
		t.Fatalf("preflight: HTTP %d %v", resp.StatusCode, resp.Header)
	}
	input, _ := protojson.Marshal(first.GetWorkflowExecutionStartedEventAttributes().GetInput())
	req, _ = http.NewRequest(http.MethodPost, codecURL+"/"+g.keys.token+"/decode", bytes.NewReader(input))
	req.Header.Set("Origin", "http://127.0.0.1:8233")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "payloads") || strings.Contains(string(body), payloadcrypt.EncodingSealed) {
		t.Fatalf("decode as the UI calls it: HTTP %d %s", resp.StatusCode, body)
	}
}

func mustRing(t *testing.T, k *payloadKeys) *payloadcrypt.Keyring {
	t.Helper()
	r, err := payloadcrypt.NewKeyring(k.keys, k.active)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestEndToEndKeyRotation: a message starts under key k1 and waits for its
// receipt; the gateway restarts with k2 active and k1 kept to open; the
// message completes, its later payloads sealed with k2. `smsgw
// payload-keys` then reports both keys in use.
func TestEndToEndKeyRotation(t *testing.T) {
	g := startGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := g.primary.WaitBinds(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// The primary SMSC sends the receipt 2 s after the submit, and offers it
	// again every 500 ms while nobody is bound to take it.
	code, acc := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+447700900123","text":"across a key rotation"}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit: HTTP %d %v", code, acc)
	}
	id := acc["id"].(string)
	// Sent once the send activity completed, or the send from the process
	// holding the bind (the first local activity of a planned message) was
	// recorded; SENT is recorded later.
	for !slices.ContainsFunc(rawHistory(t, g.temporal, id), func(ev *historypb.HistoryEvent) bool {
		return ev.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED || ev.GetMarkerRecordedEventAttributes().GetMarkerName() == "LocalActivity"
	}) {
		if ctx.Err() != nil {
			t.Fatal("the message was never sent")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Sent: the SMSC goes away with the receipt, so the message waits for it
	// whatever the time the first smsgw takes to stop.
	g.primary.Stop()
	g.stop()
	g.keys.add(t, "k2")
	g.keys.active = "k2"
	g.stop = g.run(t, g.keys.flags()...)
	if err := g.primary.Start(); err != nil {
		t.Fatal(err)
	}
	if n := g.hook.waitFor(t, id, 60*time.Second); n["status"] != "DELIVERED" {
		t.Fatalf("webhook %v, want DELIVERED", n)
	}
	counts := keyCounts(t, rawHistory(t, g.temporal, id))
	if counts["k1"] == 0 || counts["k2"] == 0 || counts[payloadcrypt.Clear] != 0 {
		t.Fatalf("payloads per key %v: want the start under k1 and the end under k2, none in clear", counts)
	}

	var out, errOut bytes.Buffer
	env := func(string) string { return "" }
	if rc := run(ctx, append([]string{"payload-keys", "-temporal-address", g.temporal}, g.keys.flags()...), env, &out, &errOut); rc != 0 {
		t.Fatalf("smsgw payload-keys: exit %d\n%s", rc, errOut.String())
	}
	report := out.String()
	t.Logf("smsgw payload-keys:\n%s", report)
	for _, want := range []string{"k1 ", "k2 ", "active"} {
		if !strings.Contains(report, want) {
			t.Errorf("smsgw payload-keys report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "NOT HELD") || strings.Contains(report, payloadcrypt.Clear) {
		t.Errorf("smsgw payload-keys reports a key not held or clear payloads:\n%s", report)
	}
}

// TestEndToEndFailureMessagesSealed: an error that names the destination
// ("no route to +61…") reaches Temporal sealed. A message scheduled for
// later is replaced after its route was removed, so planning it again fails
// with NoRoute; the failure in its raw history reads "Encoded failure", and
// the number shows nowhere, while with the keys the failure reads whole.
func TestEndToEndFailureMessagesSealed(t *testing.T) {
	g := startGatewayWith(t, "", smppCustomer)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := smppBind(t, ctx, g, smppwire.BindTransceiver)
	id := smppSubmitLater(t, ctx, c, "in an hour")

	// No more route to +61: the gateway refuses new messages there once it
	// has read the new configuration.
	route := "  - {name: australia, prefixes: [\"+61\"], connectors: [sim]}\n"
	if !strings.Contains(g.cfg, route) {
		t.Fatalf("the test configuration has no line %q", route)
	}
	rewriteConfig(t, g, strings.Replace(g.cfg, route, "", 1), 1)
	for {
		code, _ := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+61412345679","text":"probe"}`)
		if code == http.StatusBadRequest {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the route is still there: HTTP %d", code)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Replaced: planned again, and refused for want of a route.
	if resp := smppCallUntilOK(t, ctx, c, replaceSM(id, "000000020000000R", "in two hours")); resp.Status != 0 {
		t.Fatalf("replace_sm_resp %+v", resp.Header)
	}
	opened := g.keys.client(t, g.temporal)
	var result workflows.MessageResult
	if err := opened.GetWorkflow(ctx, id, "").Get(ctx, &result); err != nil {
		t.Fatalf("the message's workflow: %v", err)
	}

	events := rawHistory(t, g.temporal, id)
	raw, _ := protojson.Marshal(&historypb.History{Events: events})
	if bytes.Contains(raw, []byte("412345678")) || bytes.Contains(raw, []byte("no route")) {
		t.Errorf("the raw history shows the number or the failure's text:\n%s", raw)
	}
	_, fc := payloadcrypt.Converters(mustRing(t, g.keys))
	var sealed, read []string
	for _, ev := range events {
		if f := ev.GetMarkerRecordedEventAttributes().GetFailure(); f != nil {
			sealed = append(sealed, f.GetMessage())
			read = append(read, fc.FailureToError(f).Error())
		}
	}
	if len(sealed) == 0 || slices.ContainsFunc(sealed, func(m string) bool { return m != "Encoded failure" }) {
		t.Errorf("failures in the raw history: %q, want each \"Encoded failure\"", sealed)
	}
	if !slices.ContainsFunc(read, func(m string) bool { return strings.Contains(m, "no route to +61412345678") }) {
		t.Errorf("failures read with the keys: %q, want the NoRoute one", read)
	}
}
