package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	_ "github.com/go-sql-driver/mysql"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// TestEndToEndRules runs the admission rules through the real binary, on
// every entry point: an MO STOP puts its sender on the opt-out list and a
// submission to it is refused (REST 403 OPTED_OUT, gRPC PERMISSION_DENIED
// with an ErrorInfo, SMPP the configured vendor status, SMTP 550) until an
// MO START takes it off; a destination outside the customer's allowed
// prefixes, a refused keyword and a velocity limit are refused the same
// way; a message a content rule holds is sent only when the operator
// releases it, and another is rejected; traffic to a prefix the customer
// never used before is refused by the pumping guard. None of the refused
// reaches the SMSC.
func TestEndToEndRules(t *testing.T) {
	g := startGatewayWith(t, "", gatewayExtras{
		customers: `  - id: ruled
    apiKeys: ["plain:ruled-key"]
    smpp: {systemId: ruled, password: "plain:ruled-pw"}
    emailIngress: {username: ruled-mail, password: "plain:mail-pw"}
    numbers: [{number: "+61400000009"}]
    rules:
      optOutScope: customer
      pumpingGuard: {factor: 2, minMessages: 2, prefixDigits: 2, minBaseline: 50, action: refuse}
      allowedDestinations: ["+61", "+64"]
      content:
        - {name: no-crypto, keywords: [bitcoin], action: refuse}
        - {name: review-links, regex: "https?://", action: hold, holdFor: 1h}
      velocity:
        - {prefix: "+6149", per: number, max: 2, window: 1h}
`,
		sections: "email: {domains: [sms.test]}\nrules:\n  smppStatus: {OPTED_OUT: \"0x00000450\"}\n" +
			"admin:\n  keys: [{name: ops, key: \"plain:admin-key\"}]\n",
		flags: []string{"-smtp-insecure-auth"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const key = "ruled-key"
	submit := func(to, text string) (int, map[string]any) {
		return g.do(t, "POST", "/v1/messages", key, fmt.Sprintf(`{"from":"RULED","to":%q,"text":%q}`, to, text))
	}
	// Yesterday the customer sent 100 messages, all to +61.
	db, err := sql.Open("mysql", g.mysqlDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	yesterday := time.Now().UTC().Truncate(time.Hour).Add(-24 * time.Hour)
	for _, prefix := range []string{"+61", "*"} {
		if _, err := db.ExecContext(ctx, "INSERT INTO traffic_counts (customer_id, hour_start, prefix, n, expire_at) VALUES (?, ?, ?, 100, ?)",
			"ruled", yesterday, prefix, yesterday.Add(8*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	esmeClient := smppBindAs(t, ctx, g, smppwire.BindTransmitter, "ruled", "ruled-pw")
	smppSubmit := func(dest, text string) uint32 {
		t.Helper()
		st, _, err := esmeClient.Submit(ctx, smppwire.Message{SourceTON: 5, Source: "RULED", DestTON: 1, DestNPI: 1, Dest: dest, ShortMessage: []byte(text)})
		if err != nil {
			t.Fatalf("submit_sm to %s: %v", dest, err)
		}
		return st
	}
	mail := func(to, text string) (int, string) {
		t.Helper()
		_, err := mailExchange(t, g.smtp, "ruled-mail", "mail-pw", "ops@ruled.test", []string{to + "@sms.test"}, "From: ops@ruled.test\nSubject: x\n\n"+text+"\n")
		var se *smtp.SMTPError
		switch {
		case err == nil:
			return 250, ""
		case errors.As(err, &se):
			return se.Code, se.Message
		}
		t.Fatalf("DATA: %v", err)
		return 0, ""
	}
	// refusedEverywhere checks one refusal on REST, SMPP and SMTP.
	refusedEverywhere := func(to, text string, httpCode int, reason string, smppWant uint32) {
		t.Helper()
		code, out := submit(to, text)
		if code != httpCode || reasonOf(out) != reason {
			t.Errorf("REST to %s %q: HTTP %d %v, want %d with reason %s", to, text, code, out, httpCode, reason)
		}
		if st := smppSubmit(strings.TrimPrefix(to, "+"), text); st != smppWant {
			t.Errorf("SMPP to %s %q: %s, want %s", to, text, smppstatus.Name(st), smppstatus.Name(smppWant))
		}
		if code, msg := mail(to, text); code != 550 || !strings.Contains(msg, reason) {
			t.Errorf("SMTP to %s %q: %d %q, want 550 naming %s", to, text, code, msg, reason)
		}
	}

	// STOP from a phone: the number is on the customer's list.
	if err := g.sim.InjectMO(ctx, "61412000001", "61400000009", 0, 0, []byte("Stop")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the MO STOP on the opt-out list", func() bool {
		_, out := g.do(t, "GET", "/v1/optouts", key, "")
		return strings.Contains(fmt.Sprint(out["optOuts"]), "+61412000001")
	})
	refusedEverywhere("+61412000001", "hello", http.StatusForbidden, "OPTED_OUT", 0x450)

	// gRPC: PERMISSION_DENIED with the reason in an ErrorInfo.
	conn, err := grpc.NewClient(g.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	_, err = smsgwv1.NewMessageServiceClient(conn).SubmitMessage(authed, &smsgwv1.SubmitMessageRequest{From: "RULED", To: "+61412000001", Text: "hello"})
	st, _ := grpcstatus.FromError(err)
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	if st.Code() != codes.PermissionDenied || info.GetReason() != "OPTED_OUT" {
		t.Errorf("gRPC to an opted-out number: %v %v, want PERMISSION_DENIED with ErrorInfo OPTED_OUT", err, st.Details())
	}

	// START: the number takes messages again.
	if err := g.sim.InjectMO(ctx, "61412000001", "61400000009", 0, 0, []byte("START")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the MO START off the opt-out list", func() bool {
		code, _ := submit("+61412000001", "welcome back")
		return code == http.StatusAccepted
	})

	// The list over the API: add, import, list, delete.
	if code, out := g.do(t, "POST", "/v1/optouts", key, `{"number":"0061412000002"}`); code != 200 || out["added"] != true {
		t.Fatalf("add an opt-out: HTTP %d %v", code, out)
	}
	if code, out := g.do(t, "POST", "/v1/optouts:import", key, `{"csv":"number,sender\n+61412000003\n61412000004,61400000009\n"}`); code != 200 || fmt.Sprint(out["added"]) != "2" {
		t.Fatalf("import opt-outs: HTTP %d %v", code, out)
	}
	if code, out := g.do(t, "POST", "/v1/optouts:import", key, `{"csv":"+61412000005\nnot a number\n"}`); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out), "line 2") {
		t.Errorf("import with a bad line: HTTP %d %v, want 400 naming line 2", code, out)
	}
	if code, out := submit("+61412000003", "hi"); code != http.StatusForbidden || reasonOf(out) != "OPTED_OUT" {
		t.Errorf("to an imported opt-out: HTTP %d %v", code, out)
	}
	if code, out := g.do(t, "DELETE", "/v1/optouts/+61412000002", key, ""); code != 200 || out["deleted"] != true {
		t.Errorf("delete an opt-out: HTTP %d %v", code, out)
	}
	if code, out := g.do(t, "GET", "/v1/optouts", "other-key", ""); code != 200 || len(jsonArray(out["optOuts"])) != 0 {
		t.Errorf("another customer's list: HTTP %d %v, want empty", code, out)
	}
	if _, out := g.do(t, "GET", "/v1/optouts", key, ""); len(jsonArray(out["optOuts"])) != 2 {
		t.Errorf("the customer's list: %v, want the two imported (the added one was deleted)", out)
	}

	// Geography, content and velocity.
	refusedEverywhere("+4412345678", "hello", http.StatusForbidden, "DESTINATION_NOT_ALLOWED", smppstatus.ESME_RSUBMITFAIL)
	refusedEverywhere("+61412000009", "cheap bitcoin", http.StatusForbidden, "CONTENT_REFUSED", smppstatus.ESME_RSUBMITFAIL)
	for i := range 2 {
		if code, out := submit("+61490000001", fmt.Sprintf("velocity %d", i)); code != http.StatusAccepted {
			t.Fatalf("within the velocity limit: HTTP %d %v", code, out)
		}
	}
	refusedEverywhere("+61490000001", "velocity 3", http.StatusTooManyRequests, "VELOCITY_LIMIT", smppstatus.ESME_RSUBMITFAIL)

	// Pumping guard: the customer's traffic over the last days went to +61
	// only (seeded at the start, before any submission: the guard reads a
	// customer's 7 days at most every 5 minutes); the second message of
	// this hour to +64 is refused.
	if code, out := submit("+64211000001", "first to +64"); code != http.StatusAccepted {
		t.Fatalf("first message to an unusual prefix: HTTP %d %v", code, out)
	}
	if code, out := submit("+64211000002", "second to +64"); code != http.StatusTooManyRequests || reasonOf(out) != "UNUSUAL_DESTINATION_TRAFFIC" {
		t.Errorf("second message to an unusual prefix: HTTP %d %v, want 429 UNUSUAL_DESTINATION_TRAFFIC", code, out)
	}

	// Hold for review: sent only once released; another rejected.
	hold := func(to, text string) string {
		t.Helper()
		code, out := submit(to, text)
		if code != http.StatusAccepted {
			t.Fatalf("a message to hold, to %s: HTTP %d %v", to, code, out)
		}
		return fmt.Sprint(out["id"])
	}
	held := hold("+61412000020", "see https://shop.test/offer")
	rejected := hold("+61412000021", "see http://shop.test/other")
	time.Sleep(2 * time.Second)
	if n := g.submitsTo("61412000020"); n != 0 {
		t.Fatalf("the held message reached the SMSC %d times before its release", n)
	}
	if code, out := g.do(t, "POST", "/v1/messages/"+held+":release", "other-key", `{}`); code != http.StatusNotFound {
		t.Errorf("release by another customer: HTTP %d %v, want 404", code, out)
	}
	if code, out := g.do(t, "POST", "/v1/messages/"+held+":release", key, `{"reason":"checked the link"}`); code != 200 {
		t.Fatalf("release: HTTP %d %v", code, out)
	}
	waitFor(t, ctx, "the released message delivered", func() bool {
		_, out := g.do(t, "GET", "/v1/messages/"+held, key, "")
		return statusName(out["status"]) == "DELIVERED"
	})
	if code, out := g.do(t, "POST", "/v1/messages/"+held+":release", key, `{}`); code != http.StatusConflict {
		t.Errorf("release of a message no longer held: HTTP %d %v, want 409", code, out)
	}
	if code, out := g.do(t, "POST", "/v1/messages/"+rejected+":reject", key, `{"reason":"phishing"}`); code != 200 {
		t.Fatalf("reject: HTTP %d %v", code, out)
	}
	waitFor(t, ctx, "the rejected message final", func() bool {
		_, out := g.do(t, "GET", "/v1/messages/"+rejected, key, "")
		return statusName(out["status"]) == "REJECTED" && strings.Contains(fmt.Sprint(out), "REVIEW_REJECTED")
	})
	if n := g.submitsTo("61412000021"); n != 0 {
		t.Errorf("the rejected message reached the SMSC %d times", n)
	}

	// An operator reviews any customer's held messages with an admin key:
	// one released with `smsgw ctl held release`, one rejected over REST.
	opReleased := hold("+61412000022", "see https://shop.test/third")
	opRejected := hold("+61412000023", "see https://shop.test/fourth")
	if code, out := g.do(t, "POST", "/v1/admin/messages/"+opRejected+":reject", key, `{}`); code != http.StatusForbidden {
		t.Errorf("operator reject with a customer's key: HTTP %d %v, want 403", code, out)
	}
	if code, out := g.do(t, "POST", "/v1/admin/messages/no-such-message:release", "admin-key", `{}`); code != http.StatusNotFound {
		t.Errorf("operator release of no message: HTTP %d %v, want 404", code, out)
	}
	if code, out := g.do(t, "POST", "/v1/admin/messages/"+opRejected+":reject", "admin-key", `{"reason":"phishing, says ops"}`); code != 200 || out["customerId"] != "ruled" {
		t.Fatalf("operator reject: HTTP %d %v, want 200 naming the customer ruled", code, out)
	}
	var ctlOut, ctlErr bytes.Buffer
	env := func(name string) string {
		if name == "SMSGW_ADMIN_KEY" {
			return "admin-key"
		}
		return ""
	}
	if code := run(ctx, []string{"ctl", "-addr", g.base, "held", "release", "-reason", "checked", opReleased}, env, &ctlOut, &ctlErr); code != 0 ||
		!strings.Contains(ctlOut.String(), opReleased+" released (customer ruled)") {
		t.Fatalf("smsgw ctl held release: exit %d\n%s%s", code, ctlOut.String(), ctlErr.String())
	}
	waitFor(t, ctx, "the message the operator released delivered", func() bool {
		_, out := g.do(t, "GET", "/v1/messages/"+opReleased, key, "")
		return statusName(out["status"]) == "DELIVERED"
	})
	waitFor(t, ctx, "the message the operator rejected final", func() bool {
		_, out := g.do(t, "GET", "/v1/messages/"+opRejected, key, "")
		return statusName(out["status"]) == "REJECTED"
	})
	if n := g.submitsTo("61412000023"); n != 0 {
		t.Errorf("the message the operator rejected reached the SMSC %d times", n)
	}

	// Nothing refused reached the SMSC; the refusals are counted.
	for _, dest := range []string{"61412000001", "4412345678", "61412000009", "61412000003"} {
		if dest == "61412000001" {
			continue // accepted once, after START
		}
		if n := g.submitsTo(dest); n != 0 {
			t.Errorf("a refused message to %s reached the SMSC %d times", dest, n)
		}
	}
	if got := g.submitsTo("61490000001"); got > 2 {
		t.Errorf("the SMSC got %d messages to the velocity-limited number, want at most 2", got)
	}
	resp, err := http.Get(g.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`smsgw_rule_refusals_total{customer="ruled",reason="OPTED_OUT"}`,
		`smsgw_rule_refusals_total{customer="ruled",reason="DESTINATION_NOT_ALLOWED"} 3`,
		`smsgw_rule_refusals_total{customer="ruled",reason="CONTENT_REFUSED"} 3`,
		`smsgw_rule_refusals_total{customer="ruled",reason="VELOCITY_LIMIT"} 3`,
		`smsgw_optout_changes_total{change="opt_out",source="mo"} 1`,
		`smsgw_pumping_guard_flags_total{action="refuse",customer="ruled"} 1`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// jsonArray is a JSON array, or nil.
func jsonArray(v any) []any {
	l, _ := v.([]any)
	return l
}

// reasonOf is the reason of the ErrorInfo detail of a REST error body.
func reasonOf(body map[string]any) string {
	details, _ := body["details"].([]any)
	for _, d := range details {
		if m, ok := d.(map[string]any); ok && strings.HasSuffix(fmt.Sprint(m["@type"]), "google.rpc.ErrorInfo") {
			return fmt.Sprint(m["reason"])
		}
	}
	return ""
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
