package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/notify/webhook"
	"github.com/smsgw/smsgw/payloadcrypt"
	"github.com/smsgw/smsgw/store/mongostore"
)

// gatewayExtras adds to the configuration startGatewayWith writes.
type gatewayExtras struct {
	customers  string   // more items of the customers list, indented as they are
	connectors string   // more items of the connectors list
	routes     string   // more items of the routes list
	sections   string   // more top-level sections, such as smtp: and email:
	flags      []string // more command-line flags of `smsgw all`
}

// eventHook is a customer's webhook endpoint that keeps every call with its
// X-Smsgw-Event header, checks signatures, and fails as told.
type eventHook struct {
	secret string
	url    string
	mu     sync.Mutex
	calls  []hookCall
	bad    []string
	fails  int  // answer 503 to this many calls first
	down   bool // answer 503 to every call
	tries  int
}

type hookCall struct {
	event string
	body  map[string]any
}

func newEventHook(t *testing.T, secret string) *eventHook {
	h := &eventHook{secret: secret}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.url = "http://" + ln.Addr().String() + "/hook"
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.tries++
		if h.down || h.fails > 0 {
			h.fails--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if err := webhook.Verify(h.secret, r.Header.Get(webhook.SignatureHeader), raw, time.Now(), time.Minute); err != nil {
			h.bad = append(h.bad, err.Error())
		}
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			h.bad = append(h.bad, err.Error())
		}
		h.calls = append(h.calls, hookCall{event: r.Header.Get(webhook.EventHeader), body: body})
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return h
}

// waitFor returns the calls that match once there are at least n of them.
func (h *eventHook) waitFor(t *testing.T, n int, match func(hookCall) bool) []hookCall {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h.mu.Lock()
		var got []hookCall
		for _, c := range h.calls {
			if match(c) {
				got = append(got, c)
			}
		}
		bad := append([]string(nil), h.bad...)
		h.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("bad webhook calls: %v", bad)
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d matching webhook calls within 30s, want %d", len(got), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func inbound(text string) func(hookCall) bool {
	return func(c hookCall) bool { return c.event == "inbound" && c.body["text"] == text }
}

func status(messageID string) func(hookCall) bool {
	return func(c hookCall) bool { return c.event == "status" && c.body["messageId"] == messageID }
}

// mailbox is an SMTP relay on loopback that keeps the mails it is given.
type mailbox struct {
	addr  string
	mu    sync.Mutex
	mails []*mail.Message
	raw   []string
}

func newMailbox(t *testing.T) *mailbox {
	mb := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailboxSession{mb: mb}, nil }))
	srv.Domain = "relay.test"
	srv.ErrorLog = discardLog{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return mb
}

func (mb *mailbox) waitFor(t *testing.T, subject string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mb.mu.Lock()
		for i, m := range mb.mails {
			if m.Header.Get("Subject") == subject {
				raw := mb.raw[i]
				mb.mu.Unlock()
				return raw
			}
		}
		mb.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no mail with subject %q within 30s", subject)
	return ""
}

type mailboxSession struct{ mb *mailbox }

func (s *mailboxSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mailboxSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *mailboxSession) Reset()                               {}
func (s *mailboxSession) Logout() error                        { return nil }
func (s *mailboxSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	s.mb.mu.Lock()
	defer s.mb.mu.Unlock()
	s.mb.mails = append(s.mb.mails, m)
	s.mb.raw = append(s.mb.raw, string(raw))
	return nil
}

type discardLog struct{}

func (discardLog) Printf(string, ...any) {}
func (discardLog) Println(...any)        {}

// sendMail submits a mail over SMTP with AUTH PLAIN and returns the final answer's text.
func sendMail(t *testing.T, addr, user, pass string, to []string, body string) string {
	t.Helper()
	resp, err := mailExchange(t, addr, user, pass, "ops@shop.test", to, body)
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	return resp.StatusText
}

// mailExchange authenticates, sends one mail from from to the recipients and
// returns how its data was answered; any earlier refusal fails the test.
func mailExchange(t *testing.T, addr, user, pass, from string, to []string, body string) (*smtp.DataResponse, error) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := c.Mail(from, nil); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatalf("RCPT %s: %v", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, strings.ReplaceAll(body, "\n", "\r\n")); err != nil {
		t.Fatal(err)
	}
	return w.CloseWithResponse()
}

func TestEndToEndInboundAndEmail(t *testing.T) {
	relay := newMailbox(t)
	shop := newEventHook(t, "shop-secret")
	g := startGatewayWith(t, "", gatewayExtras{
		customers: fmt.Sprintf(`  - id: shop
    apiKeys: ["plain:shop-key"]
    allowedSenders: [SHOP]
    webhook: {url: %q, secret: shop-secret}
    notify: {channels: [webhook, email], email: ["Shop Ops <ops@shop.test>"]}
    numbers: [{number: "+61400000001"}, {number: "12345", keyword: PIZZA}]
    emailIngress: {username: shop-mail, password: "plain:mail-pw"}
`, shop.url),
		sections: fmt.Sprintf("smtp: {address: %q, from: \"smsgw@gw.test\"}\nemail: {domains: [sms.test]}\n", relay.addr),
		flags:    []string{"-smtp-insecure-auth"}, // AUTH over loopback without STARTTLS (see TestEndToEndSMTPStartTLS)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Email to SMS: the SMSC gets the text; the receipt comes back by webhook and by email.
	answer := sendMail(t, g.smtp, "shop-mail", "mail-pw", []string{"+61412345601@sms.test"},
		"From: ops@shop.test\nSubject: ignored\nMessage-ID: <alarm-1@shop.test>\n\nDoor open at site 4.\n")
	id := regexp.MustCompile(`accepted as message (\w+)`).FindStringSubmatch(answer)
	if id == nil {
		t.Fatalf("SMTP answer %q names no message", answer)
	}
	if err := g.sim.WaitSubmits(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var seen int
	for _, s := range g.sim.Submits() {
		if s.DestAddr == "61412345601" {
			seen++
			if string(s.ShortMessage) != "Door open at site 4." || s.SourceAddr != "SHOP" {
				t.Errorf("submit at the SMSC: from %q text %q", s.SourceAddr, s.ShortMessage)
			}
		}
	}
	if seen != 1 {
		t.Fatalf("the SMSC got the mail's SMS %d times, want 1", seen)
	}
	if got := shop.waitFor(t, 1, status(id[1])); got[0].body["status"] != "DELIVERED" {
		t.Errorf("status webhook %v", got[0].body)
	}
	relay.waitFor(t, "SMS to +61412345601: DELIVERED")
	// The client sends the same mail again: the SMSC does not get it twice.
	again := sendMail(t, g.smtp, "shop-mail", "mail-pw", []string{"+61412345601@sms.test"},
		"From: ops@shop.test\nSubject: ignored\nMessage-ID: <alarm-1@shop.test>\n\nDoor open at site 4.\n")
	if !strings.Contains(again, id[1]) {
		t.Errorf("resent mail answered %q, want the first message %s", again, id[1])
	}

	// MO to the shop's number: a signed inbound webhook and an email.
	if err := g.sim.InjectMO(ctx, "61412345678", "61400000001", 0, 0, []byte("Hello shop")); err != nil {
		t.Fatal(err)
	}
	mo := shop.waitFor(t, 1, inbound("Hello shop"))[0].body
	for k, want := range map[string]any{"from": "61412345678", "to": "61400000001", "encoding": "GSM7", "parts": 1.0} {
		if mo[k] != want {
			t.Errorf("inbound webhook %s = %v, want %v", k, mo[k], want)
		}
	}
	if _, err := time.Parse(time.RFC3339, fmt.Sprint(mo["receivedAt"])); err != nil {
		t.Errorf("receivedAt %v: %v", mo["receivedAt"], err)
	}
	if raw := relay.waitFor(t, "SMS from 61412345678 to 61400000001"); !strings.Contains(raw, "Hello shop") {
		t.Errorf("inbound email lacks the text:\n%s", raw)
	}
	// The same words from the same number, after the first was answered:
	// the person sent them twice, and the shop hears of both.
	if err := g.sim.InjectMO(ctx, "61412345678", "61400000001", 0, 0, []byte("Hello shop")); err != nil {
		t.Fatal(err)
	}
	if twice := shop.waitFor(t, 2, inbound("Hello shop")); twice[0].body["id"] == twice[1].body["id"] {
		t.Errorf("two MO with the same words are one message: %v", twice[1].body)
	}

	// Concatenated MO, parts out of order, to the keyword on the short code.
	part := func(seq byte, text string) []byte { return append([]byte{0x05, 0x00, 0x03, 0x2A, 0x02, seq}, text...) }
	if err := g.sim.InjectMO(ctx, "61412345679", "12345", 0, 0x40, part(2, "with olives")); err != nil {
		t.Fatal(err)
	}
	if err := g.sim.InjectMO(ctx, "61412345679", "12345", 0, 0x40, part(1, "PIZZA large ")); err != nil {
		t.Fatal(err)
	}
	whole := shop.waitFor(t, 1, inbound("PIZZA large with olives"))[0].body
	if whole["parts"] != 2.0 || whole["keyword"] != "PIZZA" || whole["partial"] != nil {
		t.Errorf("reassembled webhook %v", whole)
	}

	// MO to a number nobody owns: kept, and listed for the operator.
	if err := g.sim.InjectMO(ctx, "61412345680", "61499999999", 0, 0, []byte("anybody there?")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "anybody there?") {
		if time.Now().After(deadline) {
			t.Fatalf("smsgw inbound -unrouted does not list the message:\n%s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
		out.Reset()
		if code := run(ctx, []string{"inbound", "-unrouted", "-mongodb-uri", g.mongoURI, "-mongodb-database", g.mongoDB, "-log-level", "error"},
			func(string) string { return "" }, &out, io.Discard); code != 0 {
			t.Fatalf("smsgw inbound exited %d", code)
		}
	}
	if !strings.Contains(out.String(), "unrouted") || !strings.Contains(out.String(), "61499999999") {
		t.Errorf("operator listing:\n%s", out.String())
	}

	// The customer lists its inbound messages over REST, newest first.
	code, list := g.do(t, "GET", "/v1/inbound", "shop-key", "")
	msgs, _ := list["messages"].([]any)
	if code != 200 || len(msgs) != 3 {
		t.Fatalf("GET /v1/inbound: HTTP %d %v, want the shop's three messages", code, list)
	}
	if first := msgs[0].(map[string]any); first["text"] != "PIZZA large with olives" || first["status"] != "INBOUND_STATUS_DELIVERED" {
		t.Errorf("newest inbound %v", first)
	}
	if code, list := g.do(t, "GET", "/v1/inbound", "acme-key", ""); code != 200 || len(list["messages"].([]any)) != 0 {
		t.Errorf("another customer sees %v", list)
	}

	// Nothing was delivered twice: each of the two messages once.
	time.Sleep(500 * time.Millisecond)
	if n := len(shop.waitFor(t, 2, inbound("Hello shop"))); n != 2 {
		t.Errorf("the two identical MO reached the webhook %d times, want once each", n)
	}
}

func TestEndToEndWebhookRetriesAndRedelivery(t *testing.T) {
	flaky := newEventHook(t, "flaky-secret")
	flaky.fails = 2
	gone := newEventHook(t, "gone-secret")
	gone.down = true
	g := startGatewayWith(t, "", gatewayExtras{customers: fmt.Sprintf(`  - id: flaky
    apiKeys: ["plain:flaky-key"]
    webhook: {url: %q, secret: flaky-secret}
    notify: {statuses: all, retryFor: 1m}
  - id: gone
    apiKeys: ["plain:gone-key"]
    webhook: {url: %q, secret: gone-secret}
    notify: {retryFor: 2s}
`, flaky.url, gone.url)})

	// The endpoint fails twice, then takes everything: each status once, in order, signed.
	code, acc := g.do(t, "POST", "/v1/messages", "flaky-key", `{"from":"FLAKY","to":"+61412345690","text":"in order please"}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit: HTTP %d %v", code, acc)
	}
	id := acc["id"].(string)
	calls := flaky.waitFor(t, 2, status(id))
	time.Sleep(time.Second)
	calls = flaky.waitFor(t, 2, status(id))
	if len(calls) != 2 || calls[0].body["status"] != "SENT" || calls[1].body["status"] != "DELIVERED" ||
		calls[0].body["seq"].(float64) >= calls[1].body["seq"].(float64) {
		t.Fatalf("webhook calls %v, want SENT then DELIVERED, once each", calls)
	}

	// Temporal's history shows the attempts: the first notification took
	// three, one in a local activity and two in the activity that retried it.
	tc := g.keys.client(t, g.temporal)
	dc, _ := payloadcrypt.Converters(mustRing(t, g.keys))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var attempts, retries []int32
	notifyRetry := map[int64]bool{} // scheduled event IDs of Notify activities
	iter := tc.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "Notify" {
			notifyRetry[ev.GetEventId()] = true
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && notifyRetry[a.GetScheduledEventId()] {
			retries = append(retries, a.GetAttempt())
		}
		m := ev.GetMarkerRecordedEventAttributes()
		if m == nil {
			continue
		}
		var data struct {
			ActivityType string
			Attempt      int32
		}
		if err := dc.FromPayloads(m.GetDetails()["data"], &data); err == nil && (data.ActivityType == "Notify" || data.ActivityType == "RecordAndNotify") {
			attempts = append(attempts, data.Attempt)
		}
	}
	if fmt.Sprint(attempts) != "[1 1]" || fmt.Sprint(retries) != "[2]" {
		t.Errorf("Notify attempts in the history: %v local, %v retried; want [1 1] and [2]", attempts, retries)
	}

	// An endpoint that stays down past the retry period: a failed notification,
	// listed, redelivered once the endpoint is back.
	code, acc = g.do(t, "POST", "/v1/messages", "gone-key", `{"from":"GONE","to":"+61412345691","text":"will you get this"}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit: HTTP %d %v", code, acc)
	}
	goneID := acc["id"].(string)
	var failed map[string]any
	deadline := time.Now().Add(30 * time.Second)
	for failed == nil {
		if time.Now().After(deadline) {
			t.Fatal("no failed notification listed within 30s")
		}
		time.Sleep(200 * time.Millisecond)
		_, list := g.do(t, "GET", "/v1/notifications/failed", "gone-key", "")
		for _, n := range asList(list["notifications"]) {
			if n["messageId"] == goneID {
				failed = n
			}
		}
	}
	if failed["subject"] != "DELIVERED-DELIVRD" || failed["channel"] != "webhook" || failed["deliveredAt"] != nil ||
		!strings.Contains(fmt.Sprint(failed["reason"]), "503") {
		t.Errorf("failed notification %v", failed)
	}
	events, err := mongostore.Open(ctx, g.mongoURI, g.mongoDB)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close(ctx)
	evs, _ := events.Events(ctx, goneID)
	if !hasEvent(evs, "notify_failed") {
		t.Errorf("no notify_failed event among %v", evs)
	}
	if code, _ := g.do(t, "GET", "/v1/notifications/failed", "flaky-key", ""); code != 200 {
		t.Errorf("flaky's list: HTTP %d", code)
	}
	if code, _ := g.do(t, "POST", "/v1/notifications/"+fmt.Sprint(failed["id"])+":redeliver", "flaky-key", "{}"); code != 404 {
		t.Errorf("another customer's redelivery: HTTP %d, want 404", code)
	}

	gone.mu.Lock()
	gone.down = false
	gone.mu.Unlock()
	code, re := g.do(t, "POST", "/v1/notifications/"+fmt.Sprint(failed["id"])+":redeliver", "gone-key", "{}")
	if code != 200 || re["workflowId"] == "" {
		t.Fatalf("redeliver: HTTP %d %v", code, re)
	}
	if got := gone.waitFor(t, 1, status(goneID)); got[0].body["status"] != "DELIVERED" {
		t.Errorf("redelivered %v", got[0].body)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, list := g.do(t, "GET", "/v1/notifications/failed", "gone-key", "")
		if l := asList(list["notifications"]); len(l) == 1 && l[0]["deliveredAt"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the failed notification is not marked delivered: %v", list)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func asList(v any) []map[string]any {
	var out []map[string]any
	for _, x := range v.([]any) {
		out = append(out, x.(map[string]any))
	}
	return out
}

func hasEvent(evs []smsgw.Event, typ string) bool {
	for _, e := range evs {
		if e.Type == typ {
			return true
		}
	}
	return false
}
