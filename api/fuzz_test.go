package api

import (
	"bytes"
	"net/http"
	"testing"
)

// FuzzSubmitMessageBody sends arbitrary bytes as a REST submission: the
// answer is always 202 or a client error with a reason, never a 5xx.
func FuzzSubmitMessageBody(f *testing.F) {
	for _, seed := range []string{
		validBody,
		`{}`,
		`{"from":"Shop","to":"+61412345678","text":"héllo ✓","idempotencyKey":"k"}`,
		`{"from":"Shop","to":"+61412345678","text":"hi","validitySeconds":"3600"}`,
		`{"from":null,"to":1,"text":[]}`,
		`{"from":"Shop",`,
		"\xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	ts := startServer(f, Config{MaxBodyBytes: 4096}, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		code, resp := ts.do(t, "POST", "/v1/messages", aliceKey, bytes.NewReader(body), nil)
		switch {
		case code == http.StatusAccepted:
			if resp["id"] == "" {
				t.Fatalf("202 without an id: %v", resp)
			}
		case code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge:
			if msg, _ := resp["message"].(string); msg == "" {
				t.Fatalf("%d without a reason: %v", code, resp)
			}
		default:
			t.Fatalf("body %q: status %d, %v", body, code, resp)
		}
	})
}

// FuzzSubmitBatchBody sends arbitrary bytes as a REST batch: the answer is
// 200 with a result for every item, or a client error with a reason, never
// a 5xx.
func FuzzSubmitBatchBody(f *testing.F) {
	for _, seed := range []string{
		`{"messages":[` + validBody + `]}`,
		`{"messages":[]}`,
		`{"messages":[{"from":"Shop","to":"x","text":"hi","clientRef":"r"},{"scheduleAt":"2026-01-01T00:00:00Z"}]}`,
		`{"messages":[{"scheduleAt":"not a time"}]}`,
		`{"messages":{}}`,
		`[]`,
	} {
		f.Add([]byte(seed))
	}
	ts := startServer(f, Config{MaxBatchBodyBytes: 8192}, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		code, resp := ts.do(t, "POST", "/v1/messages:batch", aliceKey, bytes.NewReader(body), nil)
		switch {
		case code == http.StatusOK:
			results, _ := resp["results"].([]any)
			if len(results) == 0 {
				t.Fatalf("200 without results: %v", resp)
			}
			for _, r := range results {
				r, _ := r.(map[string]any)
				if r["accepted"] == nil && (r["errorCode"] == "" || r["errorMessage"] == "") {
					t.Fatalf("an item neither accepted nor refused with a reason: %v", r)
				}
			}
		case code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge:
			if msg, _ := resp["message"].(string); msg == "" {
				t.Fatalf("%d without a reason: %v", code, resp)
			}
		default:
			t.Fatalf("body %q: status %d, %v", body, code, resp)
		}
	})
}
