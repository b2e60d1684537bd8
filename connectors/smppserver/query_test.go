package smppserver_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppserver"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// messages is a reporting store with a few rows.
type messages map[string]smsgw.MessageRecord

func (m messages) GetMessage(_ context.Context, id string) (smsgw.MessageRecord, error) {
	if r, ok := m[id]; ok {
		return r, nil
	}
	return smsgw.MessageRecord{}, smsgw.Errorf(smsgw.ENOTFOUND, "no message %s", id)
}

func queryPDU(id string) []byte {
	b := smppwire.HeaderOnly(smppwire.QuerySM, 0, 0)
	b = append(b, id...)
	b = append(b, 0, 5, 0)
	b = append(b, "ACME"...)
	return fix(append(b, 0))
}

func cancelPDU(id string) []byte {
	b := smppwire.HeaderOnly(smppwire.CancelSM, 0, 0)
	b = append(b, 0)
	b = append(b, id...)
	b = append(b, 0, 5, 0, 'A', 0, 1, 1)
	b = append(b, "61412345678"...)
	return fix(append(b, 0))
}

func replacePDU(id string) []byte {
	b := smppwire.HeaderOnly(smppwire.ReplaceSM, 0, 0)
	b = append(b, id...)
	b = append(b, 0, 5, 0, 'A', 0, 0, 0, 1, 0, 2, 'h', 'i')
	return fix(b)
}

func fix(b []byte) []byte {
	n := len(b)
	b[0], b[1], b[2], b[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return b
}

func TestQueryCancelReplace(t *testing.T) {
	t.Parallel()
	// fixed date: query_sm only formats DoneAt with FormatTime; nothing compares it with the clock
	done := time.Date(2026, 11, 26, 14, 3, 58, 0, time.UTC)
	store := messages{
		"delivered": {ID: "delivered", CustomerID: "acme", Status: smsgw.StatusDelivered, DoneAt: &done},
		"failed":    {ID: "failed", CustomerID: "acme", Status: smsgw.StatusUndeliverable, ErrorCode: "34", DoneAt: &done},
		"queued":    {ID: "queued", CustomerID: "acme", Status: smsgw.StatusAccepted},
		"sent":      {ID: "sent", CustomerID: "acme", Status: smsgw.StatusSent},
		"theirs":    {ID: "theirs", CustomerID: "other", Status: smsgw.StatusDelivered},
	}
	f := start(t, smppserver.Config{}, smppserver.Deps{Messages: store})
	cl := f.bound(t, smppwire.BindTransceiver, "acme", "secret")
	call := func(raw []byte) smppwire.Frame {
		r, err := cl.Call(ctxFor(t), raw)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	r := call(queryPDU("delivered"))
	want := append([]byte("delivered\x00261126140358000+\x00"), smppserver.StateDelivered, 0)
	if r.CommandID != smppwire.QuerySM|smppwire.ResponseBit || r.Status != 0 || !bytes.Equal(r.Body(), want) {
		t.Fatalf("query_sm_resp %+v %q, want %q", r.Header, r.Body(), want)
	}
	r = call(queryPDU("failed"))
	if want := append([]byte("failed\x00261126140358000+\x00"), smppserver.StateUndeliverable, 34); !bytes.Equal(r.Body(), want) {
		t.Fatalf("query of an undeliverable message: %q, want %q", r.Body(), want)
	}
	r = call(queryPDU("queued"))
	if want := append([]byte("queued\x00\x00"), smppserver.StateEnroute, 0); !bytes.Equal(r.Body(), want) {
		t.Fatalf("query of a queued message: %q, want %q", r.Body(), want)
	}
	for _, id := range []string{"theirs", "unknown", ""} {
		if r := call(queryPDU(id)); r.Status != smppstatus.ESME_RINVMSGID {
			t.Errorf("query of %q: %s, want ESME_RINVMSGID", id, smppstatus.Name(r.Status))
		}
	}
	for _, id := range []string{"queued", "sent", "delivered"} {
		if r := call(cancelPDU(id)); r.CommandID != smppwire.CancelSM|smppwire.ResponseBit || r.Status != smppstatus.ESME_RCANCELFAIL {
			t.Errorf("cancel of %s: %+v", id, r.Header)
		}
		if r := call(replacePDU(id)); r.CommandID != smppwire.ReplaceSM|smppwire.ResponseBit || r.Status != smppstatus.ESME_RREPLACEFAIL {
			t.Errorf("replace of %s: %+v", id, r.Header)
		}
	}
	if r := call(cancelPDU("theirs")); r.Status != smppstatus.ESME_RINVMSGID {
		t.Errorf("cancel of another customer's message: %s", smppstatus.Name(r.Status))
	}
	if r := call(fix(append(smppwire.HeaderOnly(smppwire.QuerySM, 0, 0), 'x'))); r.Status != smppstatus.ESME_RINVMSGLEN {
		t.Errorf("truncated query_sm: %s", smppstatus.Name(r.Status))
	}
}
