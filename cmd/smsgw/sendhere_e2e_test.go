package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smpptest"
)

// TestEndToEndKilledWhileSendingFromHere runs `smsgw all`, built from this
// tree, as a process of its own: it sends each message from where its
// workflow runs, with no send activity (docs/connectors.md, Sends from
// here). It is killed with SIGKILL while sends are in flight (its SMSC
// answers each submit_sm 400 ms late) and started again. Every message
// accepted before the kill ends DELIVERED with its final webhook, and went
// upstream once, or more often only where its sent event records the
// resubmission of a part in doubt (the connector's inDoubt: resubmit).
func TestEndToEndKilledWhileSendingFromHere(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sim, simAddr := startSim(t, ctx, smpptest.Config{SystemID: "gw", Password: "pw", RespDelay: 400 * time.Millisecond,
		ReceiptDelay: 200 * time.Millisecond, ReceiptAttempts: 200, ReceiptRetryInterval: 300 * time.Millisecond})
	g := startGatewayWith(t, "", gatewayExtras{
		connectors: fmt.Sprintf("  - {id: slow, address: %q, systemId: gw, password: pw, windowSize: 50, inDoubt: resubmit}\n", simAddr),
		routes:     `  - {name: denmark, prefixes: ["+45"], connectors: [slow]}` + "\n",
	})
	g.stop() // from here on smsgw runs in processes of its own

	bin := buildSmsgw(t, ctx)
	var logs bytes.Buffer
	var logMu sync.Mutex
	start := func(name string) *exec.Cmd {
		t.Helper()
		cmd := exec.Command(bin, g.args(g.keys.flags()...)...)
		w := &lockedWriter{w: &logs, mu: &logMu}
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for {
			if resp, err := http.Get(g.base + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return cmd
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("%s not ready", name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			logMu.Lock()
			t.Logf("smsgw logs:\n%s", logs.String())
			logMu.Unlock()
		}
	})

	first := start("the first smsgw")
	if err := sim.WaitBinds(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Half the messages, answered upstream; then the other half, killed
	// while their submit_sm wait for their answers.
	const n = 40
	ids := make([]string, n)
	texts := map[string]string{} // message ID → its text
	submit := func(from, to int) {
		for i := from; i < to; i++ {
			text := fmt.Sprintf("killed while sending %d", i)
			code, acc := g.do(t, "POST", "/v1/messages", "acme-key", fmt.Sprintf(`{"from":"ACME","to":"+4531000%03d","text":%q}`, i, text))
			if code != http.StatusAccepted {
				t.Fatalf("submit %d: HTTP %d %v", i, code, acc)
			}
			ids[i] = acc["id"].(string)
			texts[ids[i]] = text
		}
	}
	answered := func() (yes, no int) {
		for _, s := range sim.Submits() {
			if s.Answered {
				yes++
			} else {
				no++
			}
		}
		return yes, no
	}
	submit(0, n/2)
	for yes, _ := answered(); yes < n/2; yes, _ = answered() {
		if ctx.Err() != nil {
			t.Fatalf("the first %d messages were not all answered upstream", n/2)
		}
		time.Sleep(20 * time.Millisecond)
	}
	submit(n/2, n)
	if err := sim.WaitSubmits(ctx, n/2+n/4); err != nil {
		t.Fatal(err)
	}
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	yes, no := answered()
	if no == 0 {
		t.Fatal("every submit_sm had its answer when smsgw was killed: the kill came after the sends")
	}
	t.Logf("killed with %d submit_sm answered and %d waiting for their answers", yes, no)

	second := start("the second smsgw")
	t.Cleanup(func() {
		_ = second.Process.Signal(syscall.SIGTERM)
		_ = second.Wait()
	})
	for _, id := range ids {
		if got := g.hook.waitFor(t, id, 2*time.Minute); got["status"] != "DELIVERED" {
			t.Errorf("%s: final webhook %v, want DELIVERED", id, got)
		}
	}

	// Upstream: each message once, but for the resubmissions its sent
	// events record.
	submits := map[string]int{}
	for _, s := range sim.Submits() {
		submits[string(s.ShortMessage)]++
	}
	resubmitted := 0
	for _, id := range ids {
		recorded := resubmissions(t, g, id)
		resubmitted += recorded
		if got := submits[texts[id]]; got < 1 || got > 1+recorded {
			t.Errorf("%s went upstream %d times, with %d resubmissions recorded", id, got, recorded)
		}
	}
	t.Logf("%d parts resubmitted in doubt, each recorded", resubmitted)

	// The sends went from here: no send activity in the histories.
	for _, id := range ids {
		if slices.ContainsFunc(rawHistory(t, g.temporal, id), func(e *historypb.HistoryEvent) bool {
			return e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == "Send"
		}) {
			t.Errorf("%s was sent through the connector's task queue", id)
		}
	}
}

// resubmissions counts the parts of message id that its sent events record
// as sent again while in doubt.
func resubmissions(t *testing.T, g *gateway, id string) int {
	t.Helper()
	code, out := g.do(t, "GET", "/v1/messages/"+id+"/events", "acme-key", "")
	if code != http.StatusOK {
		t.Fatalf("events of %s: HTTP %d %v", id, code, out)
	}
	n := 0
	events, _ := out["events"].([]any)
	for _, e := range events {
		ev, _ := e.(map[string]any)
		if ev["type"] != smsgw.EventSent {
			continue
		}
		var data struct {
			Resubmitted []int `json:"resubmitted"`
		}
		raw, _ := json.Marshal(ev["data"])
		_ = json.Unmarshal(raw, &data)
		n += len(data.Resubmitted)
	}
	return n
}
