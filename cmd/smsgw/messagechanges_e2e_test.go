package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/smsgw/smsgw/store/mysqlstore"
)

// waitStatus waits for a notification of the message with the status.
func (h *hookRecorder) waitStatus(t *testing.T, id, status string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		for _, n := range h.got[id] {
			if n["status"] == status {
				h.mu.Unlock()
				return n
			}
		}
		h.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s webhook for %s within %s", status, id, timeout)
	return nil
}

// untilAnswered repeats a request while it is answered 409 (a message just
// accepted may not have reached its workflow's first step yet) and returns
// the last answer.
func (g *gateway) untilAnswered(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out := g.do(t, method, path, "acme-key", body)
		if code != http.StatusConflict || time.Now().After(deadline) {
			return code, out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sentTexts is every text the "sim" SMSC received for dest.
func (g *gateway) sentTexts(dest string) []string {
	var texts []string
	for _, s := range g.sim.Submits() {
		if s.DestAddr == dest {
			texts = append(texts, string(s.ShortMessage))
		}
	}
	return texts
}

// TestEndToEndRESTScheduleCancelReplaceBatch drives over REST what SMPP
// customers have: a scheduled message, a cancel, a replace, and a batch,
// with a client reference that comes back in the webhook and the reporting
// row.
func TestEndToEndRESTScheduleCancelReplaceBatch(t *testing.T) {
	g := startGateway(t)
	submit := func(body string) string {
		t.Helper()
		code, acc := g.do(t, "POST", "/v1/messages", "acme-key", body)
		id, _ := acc["id"].(string)
		if code != http.StatusAccepted || id == "" {
			t.Fatalf("submit %s: HTTP %d %v", body, code, acc)
		}
		return id
	}
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }

	// Scheduled a few seconds ahead, with a client reference.
	at := time.Now().Add(4 * time.Second).Truncate(time.Second)
	scheduled := submit(fmt.Sprintf(`{"from":"ACME","to":"+61412340001","text":"at its time","scheduleAt":%q,"clientRef":"order 4711 ✓"}`, rfc(at)))
	// Another hour ahead, to be cancelled; a third, to be replaced.
	later := rfc(time.Now().Add(time.Hour))
	cancelled := submit(fmt.Sprintf(`{"from":"ACME","to":"+61412340002","text":"never","scheduleAt":%q}`, later))
	replaced := submit(fmt.Sprintf(`{"from":"ACME","to":"+61412340003","text":"first draft","scheduleAt":%q}`, later))

	// A schedule after the end of validity is refused.
	if code, out := g.do(t, "POST", "/v1/messages", "acme-key", fmt.Sprintf(`{"from":"ACME","to":"+61412340009","text":"x","validitySeconds":60,"scheduleAt":%q}`, later)); code != http.StatusBadRequest ||
		!strings.Contains(fmt.Sprint(out["message"]), "not before the end of validity") {
		t.Errorf("schedule past validity: HTTP %d %v, want 400 with the reason", code, out)
	}

	// Cancel: answered 200, notified CANCELLED, never sent; then 409.
	if code, out := g.untilAnswered(t, "POST", "/v1/messages/"+cancelled+":cancel", ""); code != http.StatusOK {
		t.Fatalf("cancel: HTTP %d %v", code, out)
	}
	g.hook.waitStatus(t, cancelled, "CANCELLED", 30*time.Second)
	if code, out := g.do(t, "POST", "/v1/messages/"+cancelled+":cancel", "acme-key", ""); code != http.StatusConflict || out["message"] == "" {
		t.Errorf("cancel again: HTTP %d %v, want 409 with the reason", code, out)
	}
	// Another customer's message is not found.
	if code, _ := g.do(t, "POST", "/v1/messages/"+replaced+":replace", "other-key", `{"text":"hijack"}`); code != http.StatusNotFound {
		t.Errorf("replace another customer's message: HTTP %d, want 404", code)
	}

	// Replace: a new text, going in two seconds instead of an hour.
	body := fmt.Sprintf(`{"text":"final words","scheduleAt":%q}`, rfc(time.Now().Add(2*time.Second)))
	if code, out := g.untilAnswered(t, "POST", "/v1/messages/"+replaced+":replace", body); code != http.StatusOK {
		t.Fatalf("replace: HTTP %d %v", code, out)
	}
	g.hook.waitStatus(t, replaced, "DELIVERED", 60*time.Second)
	if texts := g.sentTexts("61412340003"); len(texts) != 1 || texts[0] != "final words" {
		t.Errorf("the SMSC got %q, want only the replaced text", texts)
	}
	if code, out := g.do(t, "POST", "/v1/messages/"+replaced+":replace", "acme-key", `{"text":"too late"}`); code != http.StatusConflict {
		t.Errorf("replace a delivered message: HTTP %d %v, want 409", code, out)
	}

	// The scheduled message went at its time, and its webhook, GET and
	// reporting row carry the client reference.
	n := g.hook.waitStatus(t, scheduled, "DELIVERED", 60*time.Second)
	if n["clientRef"] != "order 4711 ✓" {
		t.Errorf("webhook %v, want clientRef", n)
	}
	code, msg := g.do(t, "GET", "/v1/messages/"+scheduled, "acme-key", "")
	sentAt, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(msg["sentAt"]))
	if code != http.StatusOK || msg["clientRef"] != "order 4711 ✓" || sentAt.Before(at) {
		t.Errorf("GET: HTTP %d %v; want clientRef and sentAt not before %s", code, msg, at)
	}
	reports, err := mysqlstore.Open(context.Background(), g.mysqlDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer reports.Close()
	if row, err := reports.GetMessage(context.Background(), scheduled); err != nil || row.ClientRef != "order 4711 ✓" {
		t.Errorf("reporting row %+v, %v; want the clientRef", row, err)
	}
	if len(g.sentTexts("61412340002")) != 0 {
		t.Error("the cancelled message reached the SMSC")
	}

	// A batch with one invalid item: 200, a result per item, the valid
	// ones delivered; the same batch again names the same messages.
	batch := `{"messages":[
		{"from":"ACME","to":"+61412340011","text":"batch one","idempotencyKey":"batch-1","clientRef":"b1"},
		{"from":"ACME","to":"not a number","text":"batch two","idempotencyKey":"batch-2"},
		{"from":"ACME","to":"+61412340013","text":"batch three","idempotencyKey":"batch-3"}]}`
	first := submitBatch(t, g, batch)
	if first[1] != "" || first[0] == "" || first[2] == "" {
		t.Fatalf("batch IDs %q, want items 0 and 2 accepted and item 1 refused", first)
	}
	if n := g.hook.waitStatus(t, first[0], "DELIVERED", 60*time.Second); n["clientRef"] != "b1" {
		t.Errorf("batch item webhook %v, want clientRef b1", n)
	}
	g.hook.waitStatus(t, first[2], "DELIVERED", 60*time.Second)
	if again := submitBatch(t, g, batch); again != first {
		t.Errorf("the batch again: %q, want the same messages %q", again, first)
	}
	if n := len(g.sentTexts("61412340011")); n != 1 {
		t.Errorf("batch item sent %d times, want once", n)
	}
}

// submitBatch submits a batch of three and returns the accepted IDs, "" for
// an item refused with INVALID_ARGUMENT.
func submitBatch(t *testing.T, g *gateway, batch string) [3]string {
	t.Helper()
	code, out := g.do(t, "POST", "/v1/messages:batch", "acme-key", batch)
	results, _ := out["results"].([]any)
	if code != http.StatusOK || len(results) != 3 {
		t.Fatalf("batch: HTTP %d %v", code, out)
	}
	var ids [3]string
	for i, r := range results {
		r, _ := r.(map[string]any)
		acc, _ := r["accepted"].(map[string]any)
		switch {
		case acc != nil:
			ids[i], _ = acc["id"].(string)
		case r["errorCode"] != "INVALID_ARGUMENT" || !strings.Contains(fmt.Sprint(r["errorMessage"]), "not a number"):
			t.Errorf("batch item %d: %v, want accepted or INVALID_ARGUMENT with the reason", i, r)
		}
	}
	return ids
}
