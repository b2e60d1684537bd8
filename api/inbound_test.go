package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	smsgw "github.com/smsgw/smsgw"
)

// inboundBook serves inbound messages and failed notifications from memory,
// per customer, and records redeliveries.
type inboundBook struct {
	mu          sync.Mutex
	queries     []smsgw.InboundQuery
	redelivered []string
}

// fixed date: the fake store returns it and the API only formats it; the API reads the clock only to time requests
var receivedAt = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

func (b *inboundBook) ListInbound(_ context.Context, q smsgw.InboundQuery) (smsgw.InboundPage, error) {
	b.mu.Lock()
	b.queries = append(b.queries, q)
	b.mu.Unlock()
	if q.PageToken == "bad" {
		return smsgw.InboundPage{}, smsgw.Errorf(smsgw.EINVALID, "pageToken is not one this gateway gave out")
	}
	if q.CustomerID != "alice" {
		return smsgw.InboundPage{}, nil
	}
	return smsgw.InboundPage{NextPageToken: "next", Messages: []smsgw.InboundRecord{{
		InboundMessage: smsgw.InboundMessage{ID: "mo-1", From: "+61412345678", To: "12345", Text: "PIZZA large",
			Encoding: "GSM7", Parts: 2, Partial: true, Keyword: "PIZZA", Connector: "telco-a", ReceivedAt: receivedAt},
		CustomerID: "alice", Status: smsgw.InboundDelivered,
	}}}, nil
}

func (b *inboundBook) ListFailedNotifications(_ context.Context, customerID, _ string, _ int) ([]smsgw.FailedNotification, string, error) {
	if customerID != "alice" {
		return nil, "", nil
	}
	delivered := receivedAt.Add(time.Hour)
	return []smsgw.FailedNotification{
		{ID: "ZmFpbGVk", Subject: "msg-9", What: "DELIVERED", Channel: "webhook", Reason: "webhook answered 410 Gone", FailedAt: receivedAt},
		{ID: "b3RoZXI", Subject: "mo-1", What: "inbound", Channel: "email", Reason: "550", FailedAt: receivedAt, DeliveredAt: &delivered},
	}, "", nil
}

func (b *inboundBook) Redeliver(_ context.Context, customerID, id string) (string, error) {
	if customerID != "alice" || id != "ZmFpbGVk" {
		return "", smsgw.Errorf(smsgw.ENOTFOUND, "failed notification %q not found", id)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.redelivered = append(b.redelivered, id)
	return "redeliver-msg-9", nil
}

func startInboundServer(t *testing.T) (string, *inboundBook) {
	t.Helper()
	book := &inboundBook{}
	srv, err := New(Config{}, Deps{
		Submitter: &recordingSubmitter{},
		Messages:  recordReader{},
		Customers: customerList{
			{ID: "alice", APIKeyHashes: []string{smsgw.HashAPIKey(aliceKey)}},
			{ID: "bob", APIKeyHashes: []string{smsgw.HashAPIKey(bobKey)}},
		},
		Inbound: &InboundDeps{Inbound: book, Failed: book, Redeliverer: book},
	})
	if err != nil {
		t.Fatal(err)
	}
	grpcLn, _ := net.Listen("tcp", "127.0.0.1:0")
	httpLn, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, grpcLn, httpLn) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "http://" + httpLn.Addr().String(), book
}

func call(t *testing.T, method, url, key string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(map[bool]string{true: "{}", false: ""}[method == http.MethodPost]))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: HTTP %d, body %q", method, url, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func TestListInboundOverREST(t *testing.T) {
	base, book := startInboundServer(t)

	code, out := call(t, "GET", base+"/v1/inbound?pageSize=10&pageToken=abc&since=2026-11-26T08:00:00Z", aliceKey)
	if code != 200 || out["nextPageToken"] != "next" {
		t.Fatalf("HTTP %d %v", code, out)
	}
	msgs := out["messages"].([]any)
	m := msgs[0].(map[string]any)
	for k, want := range map[string]any{"id": "mo-1", "from": "+61412345678", "to": "12345", "text": "PIZZA large", "encoding": "GSM7",
		"parts": 2.0, "partial": true, "keyword": "PIZZA", "receivedAt": "2026-11-26T09:00:00Z", "status": "INBOUND_STATUS_DELIVERED"} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	if _, leaked := m["connector"]; leaked {
		t.Error("the upstream connector is shown to the customer")
	}
	q := book.queries[0]
	if q.CustomerID != "alice" || q.PageSize != 10 || q.PageToken != "abc" || !q.Since.Equal(receivedAt.Add(-time.Hour)) {
		t.Errorf("query %+v", q)
	}

	// Bob sees only his own (none); no key, a bad token and a bad page size are refused.
	if code, out := call(t, "GET", base+"/v1/inbound", bobKey); code != 200 || len(out["messages"].([]any)) != 0 {
		t.Errorf("bob: HTTP %d %v", code, out)
	}
	if code, _ := call(t, "GET", base+"/v1/inbound", ""); code != 401 {
		t.Errorf("no key: HTTP %d, want 401", code)
	}
	if code, out := call(t, "GET", base+"/v1/inbound?pageToken=bad", aliceKey); code != 400 || !strings.Contains(fmt.Sprint(out["message"]), "pageToken") {
		t.Errorf("bad token: HTTP %d %v, want 400", code, out)
	}
	if code, _ := call(t, "GET", base+"/v1/inbound?pageSize=-1", aliceKey); code != 400 {
		t.Errorf("negative page size: HTTP %d, want 400", code)
	}
	if call(t, "GET", base+"/v1/inbound?pageSize=100000", aliceKey); book.queries[len(book.queries)-1].PageSize != maxPageSize {
		t.Errorf("page size not capped: %+v", book.queries[len(book.queries)-1])
	}
}

func TestFailedNotificationsAndRedeliveryOverREST(t *testing.T) {
	base, book := startInboundServer(t)
	code, out := call(t, "GET", base+"/v1/notifications/failed", aliceKey)
	if code != 200 {
		t.Fatalf("HTTP %d %v", code, out)
	}
	list := out["notifications"].([]any)
	first, second := list[0].(map[string]any), list[1].(map[string]any)
	if first["id"] != "ZmFpbGVk" || first["messageId"] != "msg-9" || first["subject"] != "DELIVERED" || first["channel"] != "webhook" ||
		first["reason"] != "webhook answered 410 Gone" || first["deliveredAt"] != nil {
		t.Errorf("first %v", first)
	}
	if second["deliveredAt"] != "2026-11-26T10:00:00Z" {
		t.Errorf("second %v", second)
	}

	code, out = call(t, "POST", base+"/v1/notifications/ZmFpbGVk:redeliver", aliceKey)
	if code != 200 || out["workflowId"] != "redeliver-msg-9" || out["id"] != "ZmFpbGVk" || len(book.redelivered) != 1 {
		t.Fatalf("redeliver: HTTP %d %v", code, out)
	}
	if code, _ := call(t, "POST", base+"/v1/notifications/ZmFpbGVk:redeliver", bobKey); code != 404 {
		t.Errorf("bob redelivering alice's: HTTP %d, want 404", code)
	}
	if code, _ := call(t, "POST", base+"/v1/notifications/nope:redeliver", aliceKey); code != 404 {
		t.Errorf("unknown id: HTTP %d, want 404", code)
	}
}
