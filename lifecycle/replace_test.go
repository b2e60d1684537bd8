package lifecycle

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/smsgw/smsgw"
)

// Replace checks the new text against the message it replaces, read from
// the reporting row: the owner first, then its sender and destination and
// its customer's encoding options. Temporal is unreachable here, so a text
// that passes every check ends as EUNAVAILABLE when the update is sent.
func TestReplaceValidatesAgainstTheMessage(t *testing.T) {
	rows := &reports{}
	s := newServiceWith(t, closedAddr(t), func(o *Options) {
		o.Messages = &Reader{Reports: rows, Temporal: o.Temporal}
	})
	rows.set(smsgw.MessageRecord{ID: "m-acme", CustomerID: "acme", EntryPoint: smsgw.EntryREST, From: "ACME", To: "+61412345678", Status: smsgw.StatusAccepted})
	rows.set(smsgw.MessageRecord{ID: "m-narrow", CustomerID: "narrow", EntryPoint: smsgw.EntrySMPP, From: "NARROW", To: "+61412345678", Status: smsgw.StatusAccepted})
	// A row whose sender no submission could have had: the check uses the
	// message's own fields, not made-up ones.
	rows.set(smsgw.MessageRecord{ID: "m-bad-from", CustomerID: "acme", From: "A SENDER FAR TOO LONG", To: "+61412345678", Status: smsgw.StatusAccepted})

	twoParts := strings.Repeat("a", 161) // two GSM 7-bit parts
	later := time.Now().Add(time.Hour)
	for _, c := range []struct {
		name, customer, id, text string
		code, reason             string
		at                       time.Time
	}{
		{"another customer's message, even with a bad text", "narrow", "m-acme", "", smsgw.ENOTFOUND, "no message m-acme", time.Time{}},
		{"neither text nor schedule", "acme", "m-acme", "", smsgw.EINVALID, "a new text or a new schedule is required", time.Time{}},
		{"a new schedule alone keeps the text", "acme", "m-bad-from", "", smsgw.EUNAVAILABLE, "", later},
		{"text over the customer's segment limit", "narrow", "m-narrow", twoParts, smsgw.EINVALID, "segment", time.Time{}},
		{"the same text where the customer allows it", "acme", "m-acme", twoParts, smsgw.EUNAVAILABLE, "", time.Time{}},
		{"a message whose sender cannot be sent from", "acme", "m-bad-from", "hello", smsgw.EINVALID, "from \"A SENDER FAR TOO LONG\"", time.Time{}},
		{"a good text", "narrow", "m-narrow", "short and sweet", smsgw.EUNAVAILABLE, "", time.Time{}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := s.Replace(ctx, c.customer, c.id, c.text, c.at)
		cancel()
		if smsgw.ErrorCode(err) != c.code || !strings.Contains(smsgw.ErrorMessage(err), c.reason) {
			t.Errorf("%s: %v; want %s with %q", c.name, err, c.code, c.reason)
		}
	}
}

// A message without a client reference keeps the fingerprint it had before
// there were client references, so a retry under its idempotency key across
// an upgrade is still the same request.
func TestFingerprintWithoutClientRefIsUnchanged(t *testing.T) {
	m := smsgw.Message{CustomerID: "acme", IdempotencyKey: "k", From: "ACME", To: "+61412345678", Text: "hi", Validity: time.Hour}
	before, _ := json.Marshal(struct {
		From, To, Text, CallbackURL string
		Validity                    time.Duration
		ScheduleAt                  int64
		Receipt, FailureOnly        bool
	}{m.From, m.To, m.Text, m.CallbackURL, m.Validity, 0, false, false})
	mac := hmac.New(sha256.New, []byte("acme\x00k"))
	mac.Write(before)
	if got, want := fingerprint(m, m.IdempotencyKey), "v1:"+hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Errorf("fingerprint without clientRef = %s, want the one it had before: %s", got, want)
	}
	m.ClientRef = "order 7"
	if fingerprint(m, "k") == fingerprint(smsgw.Message{CustomerID: "acme", IdempotencyKey: "k", From: "ACME", To: "+61412345678", Text: "hi", Validity: time.Hour}, "k") {
		t.Error("a clientRef does not change the fingerprint")
	}
}
