package smpptest_test

import (
	"net"
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smpptest"
	"github.com/smsgw/smsgw/connectors/smppwire"
	"github.com/smsgw/smsgw/connectors/smppwire/smppwiretest"
)

// Each fault mode, seen on the wire by a bare ESME.

func TestThrottleEvery(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{ThrottleEvery: 3})
	e := smppwiretest.Dial(t, addr)
	bind(t, e, smppwire.BindTransceiver, "smsgw", "")
	var got []uint32
	for range 6 {
		seq := e.Send(submitSM("61412345678", 0, "hi"))
		f := e.Read()
		if f.CommandID != smppwire.SubmitSMResp || f.Seq != seq {
			t.Fatalf("got %+v", f.Header)
		}
		got = append(got, f.Status)
		if f.Status != 0 && len(f.Body()) != 0 {
			t.Errorf("a refusal with a body of %d octets", len(f.Body()))
		}
	}
	want := []uint32{0, 0, smppstatus.ESME_RTHROTTLED, 0, 0, smppstatus.ESME_RTHROTTLED}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("statuses %v, want %v", got, want)
		}
	}
	if subs := smsc.Submits(); subs[2].Status != smppstatus.ESME_RTHROTTLED || subs[2].UpstreamID != "" || !subs[2].Answered {
		t.Errorf("throttled submit recorded as %+v", subs[2])
	}
}

func TestRespDelay(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{RespDelay: 200 * time.Millisecond})
	e := smppwiretest.Dial(t, addr)
	bind(t, e, smppwire.BindTransceiver, "smsgw", "")
	start := time.Now()
	first := e.Send(submitSM("61412345678", 0, "one"))
	second := e.Send(submitSM("61412345678", 0, "two"))
	if err := smsc.WaitSubmits(ctxT(t), 2); err != nil {
		t.Fatal(err)
	}
	for _, s := range smsc.Submits() {
		if s.Answered {
			t.Errorf("answered before the delay: %+v", s)
		}
	}
	// Both wait at once: the reader went on while the first response was held.
	a, b := e.Read(), e.Read()
	if d := time.Since(start); d < 200*time.Millisecond || d > 390*time.Millisecond {
		t.Errorf("responses after %s, want both after about 200ms", d)
	}
	if a.Seq+b.Seq != first+second || a.Status != 0 || b.Status != 0 {
		t.Errorf("responses %+v %+v", a.Header, b.Header)
	}
}

func TestDropAfter(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{DropAfter: 3, RespDelay: 300 * time.Millisecond})
	e := smppwiretest.Dial(t, addr)
	bind(t, e, smppwire.BindTransceiver, "smsgw", "")
	for range 3 {
		e.Send(submitSM("61412345678", 1, "in the window"))
	}
	e.ExpectClosed() // no response, no receipt: the connection just ends
	if err := smsc.WaitSubmits(ctxT(t), 3); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // past the delay the responses would have had
	for _, s := range smsc.Submits() {
		if s.Answered {
			t.Errorf("a submit_sm on the dropped connection was answered: %+v", s)
		}
	}
	if n := len(smsc.ReceiptAttempts()); n != 0 {
		t.Errorf("%d receipts offered for unanswered submits", n)
	}

	// Only once: the next connection is served.
	again := smppwiretest.Dial(t, addr)
	bind(t, again, smppwire.BindTransceiver, "smsgw", "")
	again.Send(submitSM("61412345678", 0, "after"))
	if f := again.Read(); f.CommandID != smppwire.SubmitSMResp || f.Status != 0 {
		t.Fatalf("after the drop: %+v", f.Header)
	}
}

func TestDuplicateReceipts(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{DuplicateReceipts: true})
	e := smppwiretest.Dial(t, addr)
	bind(t, e, smppwire.BindTransceiver, "smsgw", "")
	e.Send(submitSM("61412345678", 1, "twice"))
	var ids []string
	for len(ids) < 2 {
		f := e.Read()
		if f.CommandID != smppwire.DeliverSM {
			continue
		}
		m, err := smppwire.DecodeMessage(smppwire.DeliverSM, f.Body())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, smppwire.TLVString(m.TLVs[smppwire.TagReceiptedMessageID]))
		e.Write(smppwire.MessageIDResp(smppwire.DeliverSMResp, 0, f.Seq, ""))
	}
	if ids[0] != ids[1] || ids[0] == "" {
		t.Errorf("receipts for %q", ids)
	}
	if err := smsc.WaitReceiptAttempts(ctxT(t), 2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	got := smsc.ReceiptAttempts()
	if len(got) != 2 || got[0].Duplicate || !got[1].Duplicate || got[1].Attempt != 1 {
		t.Errorf("attempts %+v, want the receipt and one duplicate", got)
	}
}

func TestReceiptOtherBind(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{ReceiptOtherBind: true})
	first := smppwiretest.Dial(t, addr)
	bind(t, first, smppwire.BindTransceiver, "smsgw", "")
	other := smppwiretest.Dial(t, addr)
	bind(t, other, smppwire.BindTransceiver, "smsgw", "")
	stranger := smppwiretest.Dial(t, addr)
	bind(t, stranger, smppwire.BindReceiver, "someone-else", "")

	first.Send(submitSM("61412345678", 1, "hi"))
	if f := first.Read(); f.CommandID != smppwire.SubmitSMResp {
		t.Fatalf("got %+v", f.Header)
	}
	f := other.Read()
	if f.CommandID != smppwire.DeliverSM {
		t.Fatalf("the other bind got %+v, want the receipt", f.Header)
	}
	other.Write(smppwire.MessageIDResp(smppwire.DeliverSMResp, 0, f.Seq, ""))
	if err := smsc.WaitReceiptAttempts(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	sub, att := smsc.Submits()[0], smsc.ReceiptAttempts()[0]
	if sub.Bind != 1 || att.Bind != 2 || att.Status != 0 {
		t.Errorf("submitted on bind %d, receipt on bind %d (%+v)", sub.Bind, att.Bind, att)
	}
}

// With no other bind of the system_id, the receipt comes on the submitting one.
func TestReceiptOtherBindFallsBack(t *testing.T) {
	_, addr := startSMSC(t, smpptest.Config{ReceiptOtherBind: true})
	e := smppwiretest.Dial(t, addr)
	bind(t, e, smppwire.BindTransceiver, "smsgw", "")
	e.Send(submitSM("61412345678", 1, "hi"))
	e.Read()
	if f := e.Read(); f.CommandID != smppwire.DeliverSM {
		t.Fatalf("got %+v, want the receipt on the only bind", f.Header)
	}
}

func TestStopAndStart(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{})
	e := smppwiretest.Dial(t, addr)
	bind(t, e, smppwire.BindTransceiver, "smsgw", "")
	if smsc.Sessions() != 1 || smsc.Addr() != addr {
		t.Fatalf("%d sessions on %s", smsc.Sessions(), smsc.Addr())
	}

	smsc.Stop()
	e.ExpectClosed()
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatal("a stopped simulator accepted a connection")
	}
	if err := smsc.Start(); err != nil {
		t.Fatal(err)
	}
	if err := smsc.Start(); err != nil {
		t.Errorf("Start while up: %v", err)
	}
	back := smppwiretest.Dial(t, addr)
	if status := bind(t, back, smppwire.BindTransceiver, "smsgw", ""); status != 0 {
		t.Fatalf("bind after Start: %s", smppstatus.Name(status))
	}
	back.Send(smppwire.HeaderOnly(smppwire.Unbind, 0, 0))
	if f := back.Read(); f.CommandID != smppwire.UnbindResp {
		t.Fatalf("got %+v", f.Header)
	}
	if err := smsc.WaitUnbinds(ctxT(t), 1); err != nil || smsc.Unbinds() != 1 {
		t.Errorf("unbinds %d, %v", smsc.Unbinds(), err)
	}
	if smsc.Binds() != 2 {
		t.Errorf("%d binds, want 2", smsc.Binds())
	}
}

func TestStartBeforeServe(t *testing.T) {
	if err := smpptest.New(smpptest.Config{}).Start(); err == nil {
		t.Error("Start before Serve succeeded")
	}
}

// Fault modes switched while the simulator runs take effect for the next
// submit_sm: throttled, then unanswered (in doubt), then answered again.
func TestSetFaults(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{})
	e := smppwiretest.Dial(t, addr)
	bind(t, e, smppwire.BindTransceiver, "smsgw", "")

	smsc.SetFaults(smpptest.Faults{Throttle: true})
	e.Send(submitSM("61412345678", 0, "throttled"))
	if f := e.Read(); f.Status != smppstatus.ESME_RTHROTTLED {
		t.Fatalf("throttled: %+v", f.Header)
	}
	smsc.SetFaults(smpptest.Faults{Silent: true})
	e.Send(submitSM("61412345678", 1, "unanswered"))
	if err := smsc.WaitSubmits(ctxT(t), 2); err != nil {
		t.Fatal(err)
	}
	smsc.SetFaults(smpptest.Faults{})
	seq := e.Send(submitSM("61412345678", 0, "answered"))
	if f := e.Read(); f.Seq != seq || f.Status != 0 {
		t.Fatalf("after the faults: %+v, want the answer of submit_sm %d (the silent one never answered)", f.Header, seq)
	}
	subs := smsc.Submits()
	if len(subs) != 3 || subs[1].Answered || !subs[2].Answered || smsc.Faults().ReceiptDelay <= 0 {
		t.Errorf("submits %+v", subs)
	}
}
