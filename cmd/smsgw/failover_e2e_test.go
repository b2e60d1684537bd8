package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEndToEndFailover stops the primary SMSC of a route mid-run. Messages
// it already accepted get their receipts when it comes back; messages sent
// while it is down go through the backup. Every message ends DELIVERED and
// none reaches an SMSC twice.
func TestEndToEndFailover(t *testing.T) {
	g := startGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	submit := func(from, n int) []string {
		ids := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, acc := g.do(t, "POST", "/v1/messages", "acme-key", fmt.Sprintf(`{"from":"ACME","to":"+4477009%05d","text":"failover %d"}`, from+i, from+i))
				if code != http.StatusAccepted {
					t.Errorf("submit: HTTP %d %v", code, acc)
					return
				}
				ids[i] = acc["id"].(string)
			}()
		}
		wg.Wait()
		return ids
	}

	// Wait until both connectors are bound, then send a first batch through the primary.
	if err := g.primary.WaitBinds(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := g.backup.WaitBinds(ctx, 1); err != nil {
		t.Fatal(err)
	}
	first := submit(0, 10)
	if err := g.primary.WaitSubmits(ctx, 10); err != nil {
		t.Fatalf("primary got %d submits: %v", len(g.primary.Submits()), err)
	}
	// Take the primary down before its receipts (2 s after each submit) go out.
	g.primary.Stop()
	second := submit(100, 10)
	// The second batch fails over to the backup once no bound primary has
	// taken it for 2 s; the primary comes back after that.
	if err := g.backup.WaitSubmits(ctx, 10); err != nil {
		t.Fatalf("backup got %d submits: %v", len(g.backup.Submits()), err)
	}
	if err := g.primary.Start(); err != nil {
		t.Fatal(err)
	}

	for _, id := range append(first, second...) {
		if id == "" {
			t.Fatal("a submission failed")
		}
		n := g.hook.waitFor(t, id, 60*time.Second)
		if n["status"] != "DELIVERED" {
			t.Errorf("message %s ended %v", id, n["status"])
		}
	}
	seen := map[string]int{}
	for _, s := range append(g.primary.Submits(), g.backup.Submits()...) {
		if strings.HasPrefix(s.DestAddr, "4477009") && s.UpstreamID != "" {
			seen[s.DestAddr]++
		}
	}
	if len(seen) != 20 {
		t.Fatalf("%d destinations reached an SMSC, want 20", len(seen))
	}
	for dest, n := range seen {
		if n != 1 {
			t.Errorf("%s was accepted upstream %d times", dest, n)
		}
	}
	var viaBackup int
	for _, s := range g.backup.Submits() {
		if strings.HasPrefix(s.DestAddr, "4477009") {
			viaBackup++
		}
	}
	if viaBackup != 10 {
		t.Errorf("%d messages went through the backup, want the 10 sent while the primary was down", viaBackup)
	}
}
