package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// slowHook is a customer's webhook receiver that holds each call for a
// while before it answers, and notes every call it got and every call
// whose caller gave up before the answer.
type slowHook struct {
	url     string
	hold    time.Duration
	started chan string // the first calls' message IDs, as they come in

	mu       sync.Mutex
	calls    map[string]int // by message ID and status
	answered int            // calls over, answered or given up by the caller
	aborted  []string
}

func newSlowHook(t *testing.T, hold time.Duration) *slowHook {
	h := &slowHook{hold: hold, started: make(chan string, 16), calls: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var n struct {
			MessageID string `json:"messageId"`
			Status    string `json:"status"`
		}
		_ = json.Unmarshal(body, &n)
		key := n.MessageID + " " + n.Status
		h.mu.Lock()
		h.calls[key]++
		h.mu.Unlock()
		select {
		case h.started <- n.MessageID:
		default:
		}
		select {
		case <-time.After(h.hold):
			w.WriteHeader(http.StatusNoContent)
		case <-r.Context().Done():
			h.mu.Lock()
			h.aborted = append(h.aborted, key)
			h.mu.Unlock()
		}
		h.mu.Lock()
		h.answered++
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/hook"
	return h
}

// TestEndToEndWorkerStopFinishesNotificationsInFlight stops `smsgw all`
// (as SIGTERM does) while a message's final webhook call is under way,
// the customer's receiver taking six seconds to answer it (longer than
// the rest of the gateway takes to stop). The worker lets the call finish
// before it exits: the customer hears once, and the message's workflow,
// picked up by the gateway started again, ends without calling a second
// time. Were the call abandoned at the stop, the workflow task would run
// again on the next worker and call again.
func TestEndToEndWorkerStopFinishesNotificationsInFlight(t *testing.T) {
	flags := []string{"-webhook-timeout", "20s"}
	g := startGatewayWith(t, "", gatewayExtras{flags: flags})
	hook := newSlowHook(t, 6*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	code, acc := g.do(t, "POST", "/v1/messages", "acme-key",
		fmt.Sprintf(`{"from":"ACME","to":"+61412345002","text":"drained","callbackUrl":%q}`, hook.url))
	if code != http.StatusAccepted {
		t.Fatalf("submit: HTTP %d %v", code, acc)
	}
	id, _ := acc["id"].(string)
	select {
	case got := <-hook.started:
		if got != id {
			t.Fatalf("a webhook call for %q, not %q", got, id)
		}
	case <-ctx.Done():
		t.Fatal("no webhook call within 2 minutes")
	}

	g.stop()
	// The receiver learns of a call given up a moment after the caller.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		hook.mu.Lock()
		answered, aborted := hook.answered, append([]string(nil), hook.aborted...)
		hook.mu.Unlock()
		if len(aborted) > 0 {
			t.Fatalf("the stop abandoned webhook calls under way: %v", aborted)
		}
		if answered > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the webhook call under way at the stop neither ended nor was given up")
		}
	}

	g.stop = g.run(t, append(g.keys.flags(), flags...)...)
	if err := g.keys.client(t, g.temporal).GetWorkflow(ctx, id, "").Get(ctx, nil); err != nil {
		t.Fatalf("the message's workflow: %v", err)
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	for key, n := range hook.calls {
		if n != 1 {
			t.Errorf("%s: %d webhook calls, want 1", key, n)
		}
	}
	if len(hook.calls) == 0 {
		t.Error("no webhook calls recorded")
	}
}
