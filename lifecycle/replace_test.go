package lifecycle

import (
	"context"
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
	for _, c := range []struct {
		name, customer, id, text string
		code, reason             string
	}{
		{"another customer's message, even with a bad text", "narrow", "m-acme", "", smsgw.ENOTFOUND, "no message m-acme"},
		{"empty text", "acme", "m-acme", "", smsgw.EINVALID, "text is required"},
		{"text over the customer's segment limit", "narrow", "m-narrow", twoParts, smsgw.EINVALID, "segment"},
		{"the same text where the customer allows it", "acme", "m-acme", twoParts, smsgw.EUNAVAILABLE, ""},
		{"a message whose sender cannot be sent from", "acme", "m-bad-from", "hello", smsgw.EINVALID, "from \"A SENDER FAR TOO LONG\""},
		{"a good text", "narrow", "m-narrow", "short and sweet", smsgw.EUNAVAILABLE, ""},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := s.Replace(ctx, c.customer, c.id, c.text, time.Time{})
		cancel()
		if smsgw.ErrorCode(err) != c.code || !strings.Contains(smsgw.ErrorMessage(err), c.reason) {
			t.Errorf("%s: %v; want %s with %q", c.name, err, c.code, c.reason)
		}
	}
}
