package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smppserver/esme"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// TestEndToEndLowBalanceOnEveryChannel runs a prepaid customer whose
// notifications go to its webhook, its SMPP receiver bind and by email.
// When a reservation takes its available balance below its threshold, it
// is told once on each: a signed low_balance webhook, an email, and a
// deliver_sm from its billing.lowBalanceFrom with the amounts. The
// customer is not bound when it happens, and the gateway is restarted
// before it binds: the notice waits in the SMPP outbox and reaches the
// receiver bind when it comes. Messages that follow cross nothing and
// tell nothing more.
func TestEndToEndLowBalanceOnEveryChannel(t *testing.T) {
	relay := newMailbox(t)
	hook := newEventHook(t, "lb-secret")
	flags := []string{"-billing-operator-key", "plain:operator-key"}
	g := startGatewayWith(t, "", gatewayExtras{
		customers: fmt.Sprintf(`  - id: lowbal
    apiKeys: ["plain:lowbal-key"]
    webhook: {url: %q, secret: lb-secret}
    smpp: {systemId: lowbal, password: "plain:lowbal-pw"}
    notify: {channels: [webhook, smpp, email], email: ["Ops <ops@lowbal.test>"]}
    billing: {mode: prepaid, lowBalance: ["0.10"], lowBalanceFrom: FUNDS}
`, hook.url),
		sections: fmt.Sprintf("smtp: {address: %q, from: \"smsgw@gw.test\"}\n", relay.addr) +
			"priceLists:\n  - {id: retail, currency: EUR, customers: [lowbal], rates: [{prefix: \"+61\", price: 0.05}]}\n",
		flags: flags,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	if code, out := g.do(t, "POST", "/v1/billing/customers/lowbal:topUp", "operator-key", `{"amount":"0.20","reference":"inv-1"}`); code != http.StatusOK {
		t.Fatalf("top-up: HTTP %d %v", code, out)
	}
	submit := func(i int) {
		t.Helper()
		if code, out := g.do(t, "POST", "/v1/messages", "lowbal-key", fmt.Sprintf(`{"from":"LOWBAL","to":"+6140000050%d","text":"m %d"}`, i, i)); code != http.StatusAccepted {
			t.Fatalf("submission %d: HTTP %d %v", i, code, out)
		}
	}
	// 0.20 → 0.15 → 0.10 → 0.05: the third crosses 0.10.
	for i := 1; i <= 3; i++ {
		submit(i)
	}
	isAlert := func(c hookCall) bool { return c.event == "low_balance" }
	if a := hook.waitFor(t, 1, isAlert)[0].body; a["threshold"] != "0.10" || a["available"] != "0.05" || a["currency"] != "EUR" {
		t.Errorf("low-balance webhook %v", a)
	}
	const subject = "Low balance: 0.05 EUR available"
	const text = "Low balance: 0.05 EUR available, below your threshold of 0.10 EUR. Top up to keep sending."
	if raw := relay.waitFor(t, subject); !strings.Contains(raw, "X-Smsgw-Event: low_balance") || !strings.Contains(strings.ReplaceAll(raw, "=\r\n", ""), text) {
		t.Errorf("low-balance email:\n%s", raw)
	}

	// The notice waits for the receiver bind, across a restart.
	g.stop()
	g.stop = g.run(t, append(g.keys.flags(), flags...)...)
	rx := smppBindAs(t, ctx, g, smppwire.BindReceiver, "lowbal", "lowbal-pw")
	isNotice := func(f smppwire.Frame) bool {
		m, err := esme.DecodeDeliver(f)
		return err == nil && m.Source == "FUNDS"
	}
	fr, err := rx.WaitFor(ctx, isNotice)
	if err != nil {
		t.Fatalf("no low-balance deliver_sm on the receiver bind: %v", err)
	}
	if m, _ := esme.DecodeDeliver(fr); string(m.ShortMessage) != text || m.ESMClass != 0 || m.SourceTON != 5 {
		t.Errorf("low-balance deliver_sm %+v, text %q", m, m.ShortMessage)
	}

	// 0.05 → 0.00 crosses nothing: still one of each.
	submit(4)
	waitFor(t, ctx, "the fourth message settled", func() bool {
		_, out := g.do(t, "GET", "/v1/balance", "lowbal-key", "")
		b, _ := out["balance"].(map[string]any)
		return b["balance"] == "0.00" && b["reserved"] == "0.00"
	})
	time.Sleep(2 * time.Second)
	if n := len(hook.waitFor(t, 1, isAlert)); n != 1 {
		t.Errorf("%d low-balance webhooks, want 1", n)
	}
	relay.mu.Lock()
	mails := 0
	for _, m := range relay.mails {
		if strings.HasPrefix(m.Header.Get("Subject"), "Low balance") {
			mails++
		}
	}
	relay.mu.Unlock()
	if mails != 1 {
		t.Errorf("%d low-balance emails, want 1", mails)
	}
	notices := 0
	for _, f := range rx.Received() {
		if isNotice(f) {
			notices++
		}
	}
	if notices != 1 {
		t.Errorf("%d low-balance deliver_sm, want 1", notices)
	}
}
