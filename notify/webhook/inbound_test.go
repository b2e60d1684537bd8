package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
)

func TestInboundWebhookBodyAndHeaders(t *testing.T) {
	var event, sig string
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		event, sig = r.Header.Get(EventHeader), r.Header.Get(SignatureHeader)
		body, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	s := New(customerMap{"shop": {ID: "shop", WebhookURL: srv.URL, WebhookSecret: "k"}}, loopbackAllowed, prometheus.NewRegistry())
	// fixed date: ReceivedAt is only written into the body; the signature is stamped by the sender's clock
	received := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	err := s.Deliver(context.Background(), smsgw.Delivery{Channel: smsgw.ChannelWebhook, CustomerID: "shop",
		Inbound: &smsgw.InboundMessage{ID: "mo-1", From: "+61412345678", To: "12345", Text: "PIZZA large", Encoding: "GSM7", Parts: 2, Keyword: "PIZZA", ReceivedAt: received}})
	if err != nil {
		t.Fatal(err)
	}
	if event != "inbound" {
		t.Errorf("%s = %q, want inbound", EventHeader, event)
	}
	if err := Verify("k", sig, body, time.Now(), time.Minute); err != nil {
		t.Errorf("signature: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"id": "mo-1", "from": "+61412345678", "to": "12345", "text": "PIZZA large",
		"encoding": "GSM7", "parts": 2.0, "keyword": "PIZZA", "receivedAt": "2026-11-26T14:00:00Z"} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v (body %s)", k, got[k], want, body)
		}
	}
}

func TestStatusWebhookBodyAndRetryClasses(t *testing.T) {
	status := http.StatusOK
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	s := New(customerMap{"acme": {ID: "acme", WebhookURL: srv.URL}}, loopbackAllowed, prometheus.NewRegistry())
	d := smsgw.Delivery{Channel: smsgw.ChannelWebhook, CustomerID: "acme", Notification: &smsgw.Notification{
		MessageID: "m1", Status: smsgw.StatusUndeliverable, Seq: 9, OccurredAt: time.Now(), ErrorCode: "001", ErrorText: "absent subscriber", Parts: 2}}
	if err := s.Deliver(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"messageId", "status", "seq", "occurredAt", "errorCode", "errorText", "parts"} {
		if _, ok := got[k]; !ok {
			t.Errorf("body lacks %s: %s", k, body)
		}
	}
	// Timeouts and throttling are retried; other 4xx are not.
	for code, refused := range map[int]bool{408: false, 429: false, 502: false, 401: true, 410: true, 422: true} {
		status = code
		if err := s.Deliver(context.Background(), d); err == nil || errors.Is(err, smsgw.ErrRefused) != refused {
			t.Errorf("HTTP %d: err = %v, refused want %v", code, err, refused)
		}
	}
}
