package main

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smpptest"
	"github.com/smsgw/smsgw/internal/testenv"
)

// TestEndToEndEventStoreOutage takes the event store away while a message
// waits for its receipt. New submissions get 503 (nothing is accepted that
// cannot be kept); the receipt is refused upstream until the store is back,
// then the waiting message finishes DELIVERED.
func TestEndToEndEventStoreOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	addr, dir := freeAddr(t), t.TempDir()
	args := []string{"-mysql-addr", "", "-mongo-addr", addr, "-data", dir}
	db := testenv.StartDevDB(t, args...)
	g := startGatewayWith(t, db.MongoURI)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := g.primary.WaitBinds(ctx, 1); err != nil {
		t.Fatal(err)
	}

	// The primary SMSC sends receipts 2 s after each submit.
	code, acc := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+447700900001","text":"through an outage"}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit: HTTP %d %v", code, acc)
	}
	id := acc["id"].(string)
	// Sent upstream, its receipt still to come.
	for !slices.ContainsFunc(g.primary.Submits(), func(s smpptest.Submitted) bool { return string(s.ShortMessage) == "through an outage" }) {
		if ctx.Err() != nil {
			t.Fatal("the message never reached the SMSC")
		}
		time.Sleep(50 * time.Millisecond)
	}

	db.Stop()
	time.Sleep(1500 * time.Millisecond) // past the cached health check
	if code, out := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+447700900002","text":"refused"}`); code != http.StatusServiceUnavailable {
		t.Fatalf("submit with the event store down: HTTP %d %v, want 503", code, out)
	}
	if resp, err := http.Get(g.base + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the event store down: %v %v, want 503", resp, err)
	}
	time.Sleep(2 * time.Second) // the receipt arrives now and is refused upstream

	testenv.StartDevDB(t, args...) // back, same address and data
	n := g.hook.waitFor(t, id, 45*time.Second)
	if n["status"] != "DELIVERED" {
		t.Fatalf("webhook %v, want DELIVERED", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+447700900003","text":"accepted again"}`)
		if code == http.StatusAccepted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("submit after the store is back: HTTP %d %v", code, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
