package main

import (
	"bytes"
	"context"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLoadTool runs the load tool against the gateway in both modes: every
// message accepted, finally notified once, none lost.
func TestLoadTool(t *testing.T) {
	g := startGatewayWith(t, "", smppCustomer)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, args := range [][]string{
		{"-mode", "rest", "-url", g.base, "-key", "acme-key", "-to-prefix", "+6141"},
		{"-mode", "smpp", "-smpp-addr", g.smpp, "-system-id", "smppco", "-password", "smpp-pw", "-to-prefix", "+6142"},
	} {
		var out, errOut bytes.Buffer
		err := loadtest(ctx, append(args, "-n", "40", "-concurrency", "8", "-window", "8", "-wait", "60s"), &out, &errOut)
		if err != nil {
			t.Fatalf("loadtest %v: %v\n%s%s", args, err, out.String(), errOut.String())
		}
		for _, want := range []string{"accepted 40, failed 0", "40 DELIVERED", "lost           0", "duplicated     0"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("loadtest %v: report lacks %q:\n%s", args[:2], want, out.String())
			}
		}
	}
}

// TestLoadToolRetriesRefusals runs the load tool for a customer whose
// backlog bound is smaller than the tool's concurrency: submissions are
// refused with 429 and Retry-After, the tool sends them again, and every
// message is still accepted once and delivered once.
func TestLoadToolRetriesRefusals(t *testing.T) {
	g := startGatewayWith(t, "", gatewayExtras{customers: `  - id: tight
    apiKeys: ["plain:tight-key"]
    maxBacklog: 2
`})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err := loadtest(ctx, []string{"-mode", "rest", "-url", g.base, "-key", "tight-key", "-to-prefix", "+6143",
		"-n", "6", "-concurrency", "6", "-wait", "60s"}, &out, &errOut)
	if err != nil {
		t.Fatalf("loadtest: %v\n%s%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"accepted 6, failed 0", "6 DELIVERED", "lost           0", "duplicated     0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	m := regexp.MustCompile(`retried (\d+) times`).FindStringSubmatch(out.String())
	if m == nil || m[1] == "0" {
		t.Errorf("6 submitters against a backlog of 2 were never refused:\n%s", out.String())
	}
}

func TestFirstAndLastRates(t *testing.T) {
	r := &loadReport{}
	// 3,000 finals: the first 2,000 at 100/s, the last 1,000 at 50/s.
	for i := 1; i <= 3000; i++ {
		at := time.Duration(i) * 10 * time.Millisecond
		if i > 2000 {
			at = 20*time.Second + time.Duration(i-2000)*20*time.Millisecond
		}
		r.finalAt = append(r.finalAt, at)
	}
	first, last, k := r.firstAndLast()
	if k != 1000 || math.Abs(first-100) > 0.5 || math.Abs(last-50) > 0.5 {
		t.Fatalf("first %.2f/s last %.2f/s over %d, want 100/s and 50/s over 1000", first, last, k)
	}
	r.finalAt = r.finalAt[:150]
	if _, _, k := r.firstAndLast(); k != 0 {
		t.Fatalf("150 finals gave windows of %d, want none", k)
	}
}

// With -in-flight, a message is submitted only when fewer than the bound
// are accepted and not yet final: a final notification or a failed
// submission gives its place back, a duplicate final does not.
func TestTrackerHoldsInFlightBound(t *testing.T) {
	tr := newTracker(3, 2)
	ctx := context.Background()
	for i := range 2 {
		if !tr.enter(ctx, time.Second) {
			t.Fatalf("place %d refused", i)
		}
	}
	tr.accepted("a", time.Now(), time.Millisecond)
	tr.accepted("b", time.Now(), time.Millisecond)
	if n := len(tr.inFlight); n != 2 {
		t.Fatalf("%d in flight, want 2", n)
	}
	tr.final("a", "DELIVERED")
	tr.final("a", "DELIVERED") // a duplicate gives nothing back
	if n := len(tr.inFlight); n != 1 {
		t.Fatalf("%d in flight after a final and its duplicate, want 1", n)
	}
	tr.final("c", "DELIVERED") // final before its acceptance
	if !tr.enter(ctx, time.Second) {
		t.Fatal("place refused")
	}
	tr.accepted("c", time.Now(), time.Millisecond)
	if !tr.enter(ctx, time.Second) {
		t.Fatal("place refused")
	}
	tr.failed("d refused")
	if n := len(tr.inFlight); n != 1 {
		t.Fatalf("%d in flight with b alone not final, want 1", n)
	}
}
