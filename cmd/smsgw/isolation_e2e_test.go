package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw/notify/webhook"
)

// stuckEndpoint is a customer's webhook that takes requests and never
// answers them; it counts how many of the customer's it holds at once.
// It reads each body, so that the server notices when the gateway gives
// up on a call, and counts only calls signed with the customer's secret:
// another package's tests, run at the same time, may post to a port of
// theirs that nobody listens on any more and that this endpoint now holds.
type stuckEndpoint struct {
	url      string
	secret   string
	mu       sync.Mutex
	holding  int
	most     int
	received int
	strays   []string
}

func newStuckEndpoint(t *testing.T, secret string) *stuckEndpoint {
	e := &stuckEndpoint{secret: secret}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "http://" + ln.Addr().String() + "/hook"
	srv := &http.Server{Handler: http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			err = webhook.Verify(e.secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), time.Minute)
		}
		if err != nil {
			e.mu.Lock()
			e.strays = append(e.strays, fmt.Sprintf("%s %s from %s: %v", r.Method, r.URL.Path, r.RemoteAddr, err))
			e.mu.Unlock()
			return
		}
		e.mu.Lock()
		e.holding++
		e.received++
		e.most = max(e.most, e.holding)
		e.mu.Unlock()
		<-r.Context().Done() // until the gateway gives up, or the test ends
		e.mu.Lock()
		e.holding--
		e.mu.Unlock()
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return e
}

func (e *stuckEndpoint) counts() (holding, most, received int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.holding, e.most, e.received
}

// strayCalls are the requests that were not the customer's.
func (e *stuckEndpoint) strayCalls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.strays)
}

// One customer's webhook that never answers does not slow another
// customer's messages: it holds at most -webhook-max-in-flight of the
// worker's slots (here 4 of 16 local activity slots, while it has 40
// messages to hear about), its retries wait on the server, and the other
// customer's messages are notified at their usual pace, with the history
// of a message whose webhook answers at once.
func TestEndToEndDeadWebhookDoesNotSlowOthers(t *testing.T) {
	dead := newStuckEndpoint(t, "dead-secret")
	g := startGatewayWith(t, "", gatewayExtras{
		customers: fmt.Sprintf(`  - id: deadco
    apiKeys: ["plain:dead-key"]
    webhook: {url: %q, secret: dead-secret}
`, dead.url),
		flags: []string{"-local-activities", "16", "-webhook-max-in-flight", "4", "-webhook-timeout", "20s"},
	})

	for i := range 40 {
		code, acc := g.do(t, "POST", "/v1/messages", "dead-key", fmt.Sprintf(`{"from":"DEAD","to":"+614123460%02d","text":"nobody listens"}`, i))
		if code != http.StatusAccepted {
			t.Fatalf("deadco's submit %d: HTTP %d %v", i, code, acc)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if holding, _, _ := dead.counts(); holding >= 4 {
			break
		}
		if time.Now().After(deadline) {
			holding, _, _ := dead.counts()
			t.Fatalf("deadco's endpoint holds %d calls, want 4 (calls that were not deadco's: %q)", holding, dead.strayCalls())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// acme's messages, meanwhile: each notified within seconds, not after
	// the 20s a call to deadco's endpoint may take.
	var slowest time.Duration
	var ids []string
	for i := range 10 {
		began := time.Now()
		code, acc := g.do(t, "POST", "/v1/messages", "acme-key", fmt.Sprintf(`{"from":"ACME","to":"+614123470%02d","text":"are you there"}`, i))
		if code != http.StatusAccepted {
			t.Fatalf("acme's submit %d: HTTP %d %v", i, code, acc)
		}
		id := acc["id"].(string)
		if n := g.hook.waitFor(t, id, 60*time.Second); n["status"] != "DELIVERED" {
			t.Fatalf("acme's webhook %v", n)
		}
		slowest = max(slowest, time.Since(began))
		ids = append(ids, id)
	}
	holding, most, received := dead.counts()
	t.Logf("acme's slowest message took %v from submission to webhook; deadco's endpoint holds %d calls (at most %d at once, %d in all)",
		slowest, holding, most, received)
	if slowest > 10*time.Second {
		t.Errorf("acme's slowest message took %v to be notified while deadco's endpoint hung", slowest)
	}
	if strays := dead.strayCalls(); len(strays) > 0 {
		t.Logf("deadco's endpoint also heard %d calls that were not deadco's: %q", len(strays), strays)
	}
	if most > 4 {
		t.Errorf("deadco's endpoint held %d calls at once, want at most 4", most)
	}

	// acme's histories are those of a webhook that answered at once: no
	// version marker, and besides the local activity that records the end
	// and notifies, only the send: an activity on the connector's queue,
	// or a local activity from the process that holds the bind.
	tc, err := client.Dial(client.Options{HostPort: g.temporal})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range ids {
		it := tc.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		events, activities, local, markers := 0, 0, 0, 0
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			events++
			switch {
			case e.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
				activities++
			case e.GetMarkerRecordedEventAttributes().GetMarkerName() == "LocalActivity":
				local++
			case e.GetEventType() == enumspb.EVENT_TYPE_MARKER_RECORDED:
				markers++
			}
		}
		if activities+local != 2 || markers != 0 || events > 18 {
			t.Errorf("acme's message %s: %d events, %d activities, %d local activities, %d other markers; want at most 18, the send and the end only",
				id, events, activities, local, markers)
		}
	}
}
