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
