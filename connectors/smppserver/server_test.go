package smppserver_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppserver"
	"github.com/smsgw/smsgw/connectors/smppserver/esme"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
	"github.com/smsgw/smsgw/connectors/smppwire/smppwiretest"
)

func TestBind(t *testing.T) {
	t.Parallel()
	f := start(t, smppserver.Config{SystemID: "our-smsc"}, smppserver.Deps{})
	for _, c := range []struct {
		name               string
		cmd                uint32
		systemID, password string
		want               uint32
	}{
		{"transmitter", smppwire.BindTransmitter, "acme", "secret", smppstatus.ESME_ROK},
		{"receiver", smppwire.BindReceiver, "acme", "secret", smppstatus.ESME_ROK},
		{"transceiver", smppwire.BindTransceiver, "acme", "secret", smppstatus.ESME_ROK},
		{"bcrypt password", smppwire.BindTransceiver, "hashed", "hashed-pw", smppstatus.ESME_ROK},
		{"allowed address", smppwire.BindTransmitter, "local", "pw", smppstatus.ESME_ROK},
		{"wrong password", smppwire.BindTransceiver, "acme", "guess", smppstatus.ESME_RBINDFAIL},
		{"wrong bcrypt password", smppwire.BindTransceiver, "hashed", "guess", smppstatus.ESME_RBINDFAIL},
		{"unknown system_id", smppwire.BindTransceiver, "nobody", "secret", smppstatus.ESME_RBINDFAIL},
		{"address not allowed", smppwire.BindTransceiver, "fenced", "pw", smppstatus.ESME_RBINDFAIL},
		{"empty system_id", smppwire.BindTransceiver, "", "", smppstatus.ESME_RBINDFAIL},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := f.dial(t)
			resp, err := cl.Bind(ctxFor(t), c.cmd, c.systemID, c.password)
			if err != nil {
				t.Fatal(err)
			}
			if resp.CommandID != c.cmd|smppwire.ResponseBit || resp.Status != c.want {
				t.Fatalf("bind answered 0x%08X %s, want 0x%08X %s", resp.CommandID, smppstatus.Name(resp.Status), c.cmd|smppwire.ResponseBit, smppstatus.Name(c.want))
			}
			if c.want != 0 {
				if len(resp.Body()) != 0 {
					t.Errorf("refusal carries a body: % x", resp.Body())
				}
				return
			}
			// system_id, then sc_interface_version (0x0210) = 0x34.
			want := append([]byte("our-smsc\x00"), 0x02, 0x10, 0x00, 0x01, 0x34)
			if !bytes.Equal(resp.Body(), want) {
				t.Fatalf("bind_resp body % x, want % x", resp.Body(), want)
			}
			again, err := cl.Bind(ctxFor(t), c.cmd, c.systemID, c.password)
			if err != nil || again.Status != smppstatus.ESME_RALYBND {
				t.Fatalf("second bind: %+v %v, want ESME_RALYBND", again.Header, err)
			}
			if err := cl.Unbind(ctxFor(t)); err != nil {
				t.Fatal(err)
			}
			<-cl.Done()
		})
	}
}

func TestBindLimitPerCustomer(t *testing.T) {
	t.Parallel()
	f := start(t, smppserver.Config{}, smppserver.Deps{})
	var clients []*esme.Client
	for range 3 { // acme has maxBinds 3
		clients = append(clients, f.bound(t, smppwire.BindTransceiver, "acme", "secret"))
	}
	extra := f.dial(t)
	resp, err := extra.Bind(ctxFor(t), smppwire.BindTransmitter, "acme", "secret")
	if err != nil || resp.Status != smppstatus.ESME_RBINDFAIL {
		t.Fatalf("fourth bind: %+v %v, want ESME_RBINDFAIL", resp.Header, err)
	}
	<-extra.Done() // a refused bind closes the connection
	// Other customers are not limited by acme's binds.
	f.bound(t, smppwire.BindTransceiver, "other", "pw")
	if got := f.metric(t, "smsgw_smpp_bound_sessions", "acme", "transceiver"); got != 3 {
		t.Errorf("bound sessions gauge %v, want 3", got)
	}
	// Once one unbinds, there is room again.
	if err := clients[0].Unbind(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	<-clients[0].Done()
	eventually(t, func() bool {
		resp, err := f.dial(t).Bind(ctxFor(t), smppwire.BindTransmitter, "acme", "secret")
		return err == nil && resp.Status == 0
	})
}

func TestCommandsNeedTheRightBindState(t *testing.T) {
	t.Parallel()
	f := start(t, smppserver.Config{}, smppserver.Deps{})
	open := f.dial(t)
	rx := f.bound(t, smppwire.BindReceiver, "acme", "secret")
	for _, c := range []struct {
		name   string
		cl     *esme.Client
		pdu    []byte
		answer uint32
	}{
		{"submit_sm before bind", open, smppserver.EncodeMessage(smppwire.SubmitSM, 0, text("hi")), smppwire.SubmitSMResp},
		{"data_sm before bind", open, smppserver.EncodeMessage(smppwire.DataSM, 0, text("")), smppwire.DataSMResp},
		{"query_sm before bind", open, append(smppwire.HeaderOnly(smppwire.QuerySM, 0, 0), 'x', 0, 0, 0, 0), smppwire.QuerySM | smppwire.ResponseBit},
		{"submit_sm on a receiver", rx, smppserver.EncodeMessage(smppwire.SubmitSM, 0, text("hi")), smppwire.SubmitSMResp},
		{"cancel_sm on a receiver", rx, smppwire.HeaderOnly(smppwire.CancelSM, 0, 0), smppwire.CancelSM | smppwire.ResponseBit},
		{"submit_multi on a receiver", rx, smppwire.HeaderOnly(smppwire.SubmitMulti, 0, 0), smppwire.SubmitMulti | smppwire.ResponseBit},
	} {
		raw := c.pdu
		binary.BigEndian.PutUint32(raw, uint32(len(raw)))
		resp, err := c.cl.Call(ctxFor(t), raw)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if resp.CommandID != c.answer || resp.Status != smppstatus.ESME_RINVBNDSTS {
			t.Errorf("%s: answered 0x%08X %s, want 0x%08X ESME_RINVBNDSTS", c.name, resp.CommandID, smppstatus.Name(resp.Status), c.answer)
		}
	}
	// enquire_link works in every state.
	for _, cl := range []*esme.Client{open, rx} {
		resp, err := cl.Call(ctxFor(t), smppwire.HeaderOnly(smppwire.EnquireLink, 0, 0))
		if err != nil || resp.CommandID != smppwire.EnquireLinkResp || resp.Status != 0 {
			t.Errorf("enquire_link: %+v %v", resp.Header, err)
		}
	}
}

func TestSubmitIsAnsweredOnlyOnceAccepted(t *testing.T) {
	t.Parallel()
	sub := &submitter{hold: make(chan struct{}), entered: make(chan struct{}, 1)}
	f := start(t, smppserver.Config{}, smppserver.Deps{Submitter: sub})
	cl := f.bound(t, smppwire.BindTransceiver, "acme", "secret")

	m := text("")
	m.DataCoding = 0x08
	m.ShortMessage = []byte{0x00, 'G', 0x00, 'r', 0x00, 0xFC, 0x00, 0xDF, 0x00, 'e'}
	m.ValidityPeriod = "000001020000000R" // one day and two hours
	m.DestTON, m.Dest = 0, "+61 412 345 678"
	resp, err := cl.Start(smppserver.EncodeMessage(smppwire.SubmitSM, 0, m))
	if err != nil {
		t.Fatal(err)
	}
	<-sub.entered
	select {
	case r := <-resp:
		t.Fatalf("answered %+v before the Submitter returned", r.Header)
	case <-time.After(200 * time.Millisecond):
	}
	close(sub.hold)
	r := <-resp
	if r.Status != 0 || esme.MessageID(r) != "msg-1" {
		t.Fatalf("submit_sm_resp %+v id %q", r.Header, esme.MessageID(r))
	}
	got := sub.messages()
	want := smsgw.Message{
		ID: "msg-1", CustomerID: "acme", EntryPoint: smsgw.EntrySMPP, From: "ACME", To: "+61412345678",
		Text: "Grüße", Validity: 26 * time.Hour, ReceiptRequested: true,
	}
	// The submission is named by the session and the submit_sm's sequence
	// number, so a start tried again does not make a second message.
	if len(got) != 1 {
		t.Fatalf("submitted %+v, want one message", got)
	}
	session, seq, _ := strings.Cut(got[0].SubmissionRef, ":")
	if session == "" || seq != strconv.FormatUint(uint64(r.Seq), 10) {
		t.Fatalf("submitted %+v: its submission is not named by session and sequence number", got)
	}
	got[0].SubmissionRef = ""
	if got[0] != want {
		t.Fatalf("submitted %+v, want %+v", got, want)
	}

	// An international sender keeps its '+'; registered_delivery 0 asks for no receipt.
	m = text("no receipt")
	m.SourceTON, m.SourceNPI, m.Source = 1, 1, "61400000001"
	m.RegisteredDelivery = 0
	if status, id, err := cl.Submit(ctxFor(t), m); err != nil || status != 0 || id != "msg-2" {
		t.Fatalf("second submit: %d %q %v", status, id, err)
	}
	if got := sub.messages()[1]; got.From != "+61400000001" || got.ReceiptRequested || got.Validity != 0 {
		t.Fatalf("second message %+v", got)
	}

	// schedule_delivery_time in the relative form: sent no earlier than in two hours.
	m = text("later")
	m.ValidityPeriod, m.ScheduleDelivery = "000001000000000R", "000000020000000R"
	before := time.Now()
	select {
	case <-sub.entered: // the second submit's signal, so the third can give its own
	default:
	}
	if status, _, err := cl.Submit(ctxFor(t), m); err != nil || status != 0 {
		t.Fatalf("scheduled submit: %d %v", status, err)
	}
	if at := sub.messages()[2].ScheduleAt; at.Before(before.Add(2*time.Hour-time.Second)) || at.After(time.Now().Add(2*time.Hour+time.Second)) {
		t.Fatalf("scheduled at %s, want two hours from now", at)
	}
}

func TestDataSM(t *testing.T) {
	t.Parallel()
	f := start(t, smppserver.Config{}, smppserver.Deps{})
	cl := f.bound(t, smppwire.BindTransmitter, "acme", "secret")
	long := strings.Repeat("long text ", 40)
	m := text("")
	m.TLVs = map[uint16][]byte{smppwire.TagMessagePayload: []byte(long), 0x0017: {0, 0, 0x0E, 0x10}} // qos_time_to_live 3600 s
	r, err := cl.Call(ctxFor(t), smppserver.EncodeMessage(smppwire.DataSM, 0, m))
	if err != nil {
		t.Fatal(err)
	}
	if r.CommandID != smppwire.DataSMResp || r.Status != 0 || esme.MessageID(r) != "msg-1" {
		t.Fatalf("data_sm_resp %+v %q", r.Header, esme.MessageID(r))
	}
	if got := f.sub.messages(); len(got) != 1 || got[0].Text != long || got[0].Validity != time.Hour {
		t.Fatalf("submitted %+v", got)
	}
}

func TestSubmitRefusals(t *testing.T) {
	t.Parallel()
	sub := &submitter{failWith: func(m smsgw.Message) error {
		switch m.Text {
		case "down":
			return smsgw.Unavailable("workflow engine", errors.New("connection refused"))
		case "busy":
			return smsgw.Errorf(smsgw.ETHROTTLED, "over the limit")
		case "broke":
			return smsgw.InsufficientBalance("EUR", 50_000, 0)
		case "nowhere":
			return smsgw.Errorf(smsgw.EINVALID, "no route to %s", m.To)
		case "odd":
			return smsgw.Errorf(smsgw.EINVALID, "something else is wrong")
		}
		return nil
	}}
	f := start(t, smppserver.Config{}, smppserver.Deps{Submitter: sub})
	cl := f.bound(t, smppwire.BindTransceiver, "acme", "secret")
	with := func(change func(*smppwire.Message)) smppwire.Message {
		m := text("hello")
		change(&m)
		return m
	}
	for _, c := range []struct {
		name string
		m    smppwire.Message
		want uint32
	}{
		{"bad destination", with(func(m *smppwire.Message) { m.Dest = "12ab" }), smppstatus.ESME_RINVDSTADR},
		{"alphanumeric destination", with(func(m *smppwire.Message) { m.DestTON = 5 }), smppstatus.ESME_RINVDSTADR},
		{"no source", with(func(m *smppwire.Message) { m.Source = "" }), smppstatus.ESME_RINVSRCADR},
		{"invalid sender", with(func(m *smppwire.Message) { m.Source = "ACME!!" }), smppstatus.ESME_RINVSRCADR},
		{"unsupported data_coding", with(func(m *smppwire.Message) { m.DataCoding = 0x05 }), smppstatus.ESME_RINVDCS},
		{"binary data_coding", with(func(m *smppwire.Message) { m.DataCoding = 0x04 }), smppstatus.ESME_RINVDCS},
		{"empty message", with(func(m *smppwire.Message) { m.ShortMessage = nil }), smppstatus.ESME_RINVMSGLEN},
		{"both short_message and message_payload", with(func(m *smppwire.Message) {
			m.TLVs = map[uint16][]byte{smppwire.TagMessagePayload: []byte("x")}
		}), smppstatus.ESME_RINVMSGLEN},
		{"odd UCS-2", with(func(m *smppwire.Message) { m.DataCoding, m.ShortMessage = 0x08, []byte{0, 'a', 0} }), smppstatus.ESME_RINVMSGLEN},
		{"header longer than the message", with(func(m *smppwire.Message) { m.ESMClass, m.ShortMessage = 0x40, []byte{9, 0, 3} }), smppstatus.ESME_RINVMSGLEN},
		{"broken header element", with(func(m *smppwire.Message) {
			m.ESMClass, m.ShortMessage = 0x40, []byte{4, 0x00, 2, 1, 2, 'h', 'i'}
		}), smppstatus.ESME_RINVESMCLASS},
		{"port addressing header", with(func(m *smppwire.Message) {
			m.ESMClass, m.ShortMessage = 0x40, []byte{6, 0x05, 4, 0x0B, 0x84, 0x23, 0xF0, 'h', 'i'}
		}), smppstatus.ESME_RINVESMCLASS},
		{"esm_class of a receipt", with(func(m *smppwire.Message) { m.ESMClass = 0x04 }), smppstatus.ESME_RINVESMCLASS},
		{"text too long", with(func(m *smppwire.Message) {
			m.ShortMessage = nil
			m.TLVs = map[uint16][]byte{smppwire.TagMessagePayload: bytes.Repeat([]byte("x"), smsgw.MaxTextRunes+1)}
		}), smppstatus.ESME_RINVMSGLEN},
		{"validity in the past", with(func(m *smppwire.Message) { m.ValidityPeriod = "200101000000000+" }), smppstatus.ESME_RINVEXPIRY},
		{"unreadable validity", with(func(m *smppwire.Message) { m.ValidityPeriod = "tomorrow" }), smppstatus.ESME_RINVEXPIRY},
		{"scheduled after validity", with(func(m *smppwire.Message) {
			m.ValidityPeriod, m.ScheduleDelivery = "000000010000000R", "000001000000000R"
		}), smppstatus.ESME_RINVSCHED},
		{"unreadable schedule", with(func(m *smppwire.Message) { m.ScheduleDelivery = "soon" }), smppstatus.ESME_RINVSCHED},
		{"half a SAR", with(func(m *smppwire.Message) { m.TLVs = map[uint16][]byte{smppwire.TagSarMsgRefNum: {0, 1}} }), smppstatus.ESME_RINVOPTPARAMVAL},
		{"workflow engine down", with(func(m *smppwire.Message) { m.ShortMessage = []byte("down") }), smppstatus.ESME_RSYSERR},
		{"throttled by the gateway", with(func(m *smppwire.Message) { m.ShortMessage = []byte("busy") }), smppstatus.ESME_RTHROTTLED},
		{"balance too low", with(func(m *smppwire.Message) { m.ShortMessage = []byte("broke") }), smppstatus.ESME_RSUBMITFAIL},
		{"no route", with(func(m *smppwire.Message) { m.ShortMessage = []byte("nowhere") }), smppstatus.ESME_RINVDSTADR},
		{"other invalid", with(func(m *smppwire.Message) { m.ShortMessage = []byte("odd") }), smppstatus.ESME_RSUBMITFAIL},
		{"accepted", text("fine"), smppstatus.ESME_ROK},
	} {
		status, id, err := cl.Submit(ctxFor(t), c.m)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if status != c.want {
			t.Errorf("%s: %s, want %s", c.name, smppstatus.Name(status), smppstatus.Name(c.want))
		}
		if (status == 0) != (id != "") {
			t.Errorf("%s: message_id %q with status %s", c.name, id, smppstatus.Name(status))
		}
	}
	if got := sub.messages(); len(got) != 1 || got[0].Text != "fine" {
		t.Fatalf("accepted %+v, want only the last", got)
	}
	// A customer whose billing.smppStatus names another status for a
	// balance too low gets it; its other refusals keep theirs.
	retrier := f.bound(t, smppwire.BindTransmitter, "retrier", "pw")
	for text, want := range map[string]uint32{"broke": smppstatus.ESME_RTHROTTLED, "odd": smppstatus.ESME_RSUBMITFAIL, "down": smppstatus.ESME_RSYSERR} {
		if status, _, err := retrier.Submit(ctxFor(t), with(func(m *smppwire.Message) { m.ShortMessage = []byte(text) })); err != nil || status != want {
			t.Errorf("%q from a customer with billing.smppStatus 0x58: %s, %v; want %s", text, smppstatus.Name(status), err, smppstatus.Name(want))
		}
	}
}

func TestMalformedBodiesGetTheirOwnResponse(t *testing.T) {
	t.Parallel()
	f := start(t, smppserver.Config{}, smppserver.Deps{})
	cl := f.bound(t, smppwire.BindTransceiver, "acme", "secret")
	full := smppserver.EncodeMessage(smppwire.SubmitSM, 0, text("hello"))
	truncated := bytes.Clone(full[:30])
	noNUL := append(smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0), bytes.Repeat([]byte("x"), 40)...)
	overrun := append(bytes.Clone(full), 0x04, 0x24, 0x00, 0x10, 'a') // message_payload claims 16 octets, has 1
	for name, raw := range map[string][]byte{"truncated": truncated, "no NUL": noNUL, "TLV overrun": overrun} {
		binary.BigEndian.PutUint32(raw, uint32(len(raw)))
		r, err := cl.Call(ctxFor(t), raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.CommandID != smppwire.SubmitSMResp || r.Status != smppstatus.ESME_RINVMSGLEN {
			t.Errorf("%s: answered 0x%08X %s", name, r.CommandID, smppstatus.Name(r.Status))
		}
	}
	// The session still works.
	if status, _, err := cl.Submit(ctxFor(t), text("still here")); err != nil || status != 0 {
		t.Fatalf("submit after bad PDUs: %d %v", status, err)
	}
}

func TestGarbageAndUnknownCommands(t *testing.T) {
	t.Parallel()
	f := start(t, smppserver.Config{}, smppserver.Deps{})
	good := f.bound(t, smppwire.BindTransceiver, "acme", "secret")

	// An unknown command and a PDU only an SMSC sends: generic_nack, and the session goes on.
	bad := f.bound(t, smppwire.BindTransceiver, "acme", "secret")
	for _, cmd := range []uint32{0x00001234, smppwire.DeliverSM, smppwire.Outbind} {
		r, err := bad.Call(ctxFor(t), smppwire.HeaderOnly(cmd, 0, 0))
		if err != nil || r.CommandID != smppwire.GenericNack || r.Status != smppstatus.ESME_RINVCMDID {
			t.Fatalf("command 0x%08X: %+v %v, want generic_nack ESME_RINVCMDID", cmd, r.Header, err)
		}
	}
	if r, err := bad.Call(ctxFor(t), smppwire.HeaderOnly(smppwire.EnquireLink, 0, 0)); err != nil || r.Status != 0 {
		t.Fatalf("enquire_link after unknown commands: %+v %v", r.Header, err)
	}

	// A command_length no PDU can have: generic_nack, then the connection closes.
	for _, length := range []uint32{4, 15, 64<<10 + 1, 0xFFFFFFFF} {
		peer := smppwiretest.Dial(t, f.addr)
		raw := smppwire.HeaderOnly(smppwire.EnquireLink, 0, 7)
		binary.BigEndian.PutUint32(raw, length)
		peer.Write(raw)
		if fr := peer.Read(); fr.CommandID != smppwire.GenericNack || fr.Status != smppstatus.ESME_RINVCMDLEN || fr.Seq != 7 {
			t.Fatalf("length %d: %+v", length, fr.Header)
		}
		peer.ExpectClosed()
	}
	// Random bytes on another connection.
	conn, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write([]byte("GET / HTTP/1.1\r\nHost: smsc\r\n\r\n"))
	conn.Close()

	// None of it touched the good session.
	if status, _, err := good.Submit(ctxFor(t), text("unaffected")); err != nil || status != 0 {
		t.Fatalf("submit on the good session: %d %v", status, err)
	}
	if got := f.metric(t, "smsgw_smpp_session_panics_total"); got != 0 {
		t.Fatalf("%v sessions panicked", got)
	}
}

func TestWindowAndThrottle(t *testing.T) {
	t.Parallel()
	sub := &submitter{hold: make(chan struct{})}
	f := start(t, smppserver.Config{Window: 2}, smppserver.Deps{Submitter: sub})
	cl := f.bound(t, smppwire.BindTransceiver, "acme", "secret")
	var waiting []<-chan smppwire.Frame
	for range 2 {
		ch, err := cl.Start(smppserver.EncodeMessage(smppwire.SubmitSM, 0, text("held")))
		if err != nil {
			t.Fatal(err)
		}
		waiting = append(waiting, ch)
	}
	status, _, err := cl.Submit(ctxFor(t), text("one too many"))
	if err != nil || status != smppstatus.ESME_RMSGQFUL {
		t.Fatalf("third outstanding submit: %s %v, want ESME_RMSGQFUL", smppstatus.Name(status), err)
	}
	if got := f.metric(t, "smsgw_smpp_window_in_use", "acme", "submit"); got != 2 {
		t.Errorf("window gauge %v, want 2", got)
	}
	close(sub.hold)
	for _, ch := range waiting {
		if r := <-ch; r.Status != 0 {
			t.Fatalf("held submit answered %s", smppstatus.Name(r.Status))
		}
	}

	// "slow" may submit 2 per second: a burst of 6 gets 2 through.
	slow := f.bound(t, smppwire.BindTransmitter, "slow", "pw")
	var ok, throttled int
	for range 6 {
		status, _, err := slow.Submit(ctxFor(t), text("burst"))
		if err != nil {
			t.Fatal(err)
		}
		switch status {
		case 0:
			ok++
		case smppstatus.ESME_RTHROTTLED:
			throttled++
		default:
			t.Fatalf("burst submit answered %s", smppstatus.Name(status))
		}
	}
	if ok < 2 || ok > 3 || throttled != 6-ok {
		t.Fatalf("%d accepted and %d throttled out of 6 at 2/s", ok, throttled)
	}
	if got := f.metric(t, "smsgw_smpp_throttled_total", "slow"); got != float64(throttled) {
		t.Errorf("throttled counter %v, want %d", got, throttled)
	}
}

func TestSlowWorkflowEngineAnswersQueueFull(t *testing.T) {
	t.Parallel()
	sub := &submitter{hold: make(chan struct{})} // never released: Submit ends with its context
	f := start(t, smppserver.Config{SubmitTimeout: 100 * time.Millisecond}, smppserver.Deps{Submitter: sub})
	cl := f.bound(t, smppwire.BindTransceiver, "acme", "secret")
	begin := time.Now()
	status, _, err := cl.Submit(ctxFor(t), text("stuck"))
	if err != nil || status != smppstatus.ESME_RMSGQFUL {
		t.Fatalf("submit: %s %v, want ESME_RMSGQFUL", smppstatus.Name(status), err)
	}
	if d := time.Since(begin); d < 100*time.Millisecond || d > 5*time.Second {
		t.Fatalf("answered after %s", d)
	}
}

func TestEnquireLinkKeepsAliveAndSilenceCloses(t *testing.T) {
	t.Parallel()
	f := start(t, smppserver.Config{EnquireLink: 100 * time.Millisecond, MissedEnquireLinks: 2, ResponseTimeout: 50 * time.Millisecond},
		smppserver.Deps{})
	// An ESME that answers enquire_link stays bound however quiet it is.
	alive := f.bound(t, smppwire.BindTransceiver, "acme", "secret")
	if _, err := alive.WaitFor(ctxFor(t), func(fr smppwire.Frame) bool { return fr.CommandID == smppwire.EnquireLink }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if r, err := alive.Call(ctxFor(t), smppwire.HeaderOnly(smppwire.EnquireLink, 0, 0)); err != nil || r.Status != 0 {
		t.Fatalf("answering ESME was dropped: %v", err)
	}

	// One that answers nothing gets enquire_link twice, then unbind, then the connection ends.
	silent := smppwiretest.Dial(t, f.addr)
	silent.Write(esme.BindPDU(smppwire.BindTransceiver, "acme", "secret"))
	cmds := silent.ReadAll()
	want := []uint32{smppwire.BindTransceiverResp, smppwire.EnquireLink, smppwire.EnquireLink, smppwire.Unbind}
	if len(cmds) != len(want) {
		t.Fatalf("silent ESME got %x, want %x", cmds, want)
	}
	for i := range want {
		if cmds[i] != want[i] {
			t.Fatalf("silent ESME got %x, want %x", cmds, want)
		}
	}
}

func TestUnboundConnectionIsClosed(t *testing.T) {
	t.Parallel()
	f := start(t, smppserver.Config{BindTimeout: 100 * time.Millisecond}, smppserver.Deps{})
	cl := f.dial(t)
	select {
	case <-cl.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a connection that never bound was kept open")
	}
}

func TestUnbindByTheESME(t *testing.T) {
	t.Parallel()
	f := start(t, smppserver.Config{}, smppserver.Deps{})
	cl := f.bound(t, smppwire.BindTransceiver, "acme", "secret")
	if err := cl.Unbind(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cl.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the server kept the connection after unbind_resp")
	}
	eventually(t, func() bool {
		return f.metric(t, "smsgw_smpp_bound_sessions", "acme", "transceiver") == 0
	})
}

func TestDrainFinishesWorkThenUnbinds(t *testing.T) {
	t.Parallel()
	sub := &submitter{hold: make(chan struct{}), entered: make(chan struct{}, 1)}
	f := start(t, smppserver.Config{}, smppserver.Deps{Submitter: sub})
	cl := f.bound(t, smppwire.BindTransceiver, "acme", "secret")
	inFlight, err := cl.Start(smppserver.EncodeMessage(smppwire.SubmitSM, 0, text("in flight")))
	if err != nil {
		t.Fatal(err)
	}
	<-sub.entered
	f.cancel()

	// New connections are not served any more.
	eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", f.addr, time.Second)
		if err != nil {
			return true
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, err = c.Read(make([]byte, 1))
		return err != nil
	})
	// A submission arriving now is refused as temporary; the one in flight
	// is answered once accepted, and only then does the server unbind.
	if status, _, err := cl.Submit(ctxFor(t), text("too late")); err != nil || status != smppstatus.ESME_RSYSERR {
		t.Fatalf("submit during drain: %s %v, want ESME_RSYSERR", smppstatus.Name(status), err)
	}
	if got := cl.Received(); len(got) != 0 {
		t.Fatalf("the server sent %x before the window was empty", got[0].CommandID)
	}
	close(sub.hold)
	r, answered := <-inFlight
	if !answered {
		t.Fatal("the in-flight submit had no answer before the connection ended")
	}
	if r.Status != 0 || esme.MessageID(r) == "" {
		t.Fatalf("in-flight submit answered %+v", r.Header)
	}
	if _, err := cl.WaitFor(ctxFor(t), func(fr smppwire.Frame) bool { return fr.CommandID == smppwire.Unbind }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cl.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("connection still open after the drain")
	}
	select {
	case err := <-f.served:
		f.served <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the drain")
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	cert := selfSigned(t)
	f := start(t, smppserver.Config{}, smppserver.Deps{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn := tlsListener(ln, cert)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.srv.Serve(ctx, tlsLn); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	cl, err := esme.Dial(ctxFor(t), ln.Addr().String(), clientTLS(cert))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if r, err := cl.Bind(ctxFor(t), smppwire.BindTransceiver, "acme", "secret"); err != nil || r.Status != 0 {
		t.Fatalf("bind over TLS: %+v %v", r.Header, err)
	}
	if status, _, err := cl.Submit(ctxFor(t), text("over TLS")); err != nil || status != 0 {
		t.Fatalf("submit over TLS: %d %v", status, err)
	}
}

func eventually(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
