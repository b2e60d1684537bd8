package smpptest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/linxGnu/gosmpp"
	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smpptest"
	"github.com/smsgw/smsgw/connectors/smppwire"
	"github.com/smsgw/smsgw/connectors/smppwire/smppwiretest"
)

const wait = 10 * time.Second

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func startSMSC(t *testing.T, cfg smpptest.Config) (*smpptest.SMSC, string) {
	t.Helper()
	if cfg.ReceiptDelay == 0 {
		cfg.ReceiptDelay = 10 * time.Millisecond
	}
	if cfg.ReceiptRetryInterval == 0 {
		cfg.ReceiptRetryInterval = 20 * time.Millisecond
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("test", t.Name())
	}
	smsc := smpptest.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- smsc.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return smsc, ln.Addr().String()
}

// bind binds e and returns the bind's command_status.
func bind(t *testing.T, e *smppwiretest.Peer, cmd uint32, systemID, password string) uint32 {
	t.Helper()
	types := map[uint32]pdu.BindingType{
		smppwire.BindTransceiver: pdu.Transceiver, smppwire.BindTransmitter: pdu.Transmitter, smppwire.BindReceiver: pdu.Receiver,
	}
	req := pdu.NewBindRequest(types[cmd])
	req.SystemID, req.Password = systemID, password
	seq := e.Send(smppwire.Encode(req, 0))
	f := e.Read()
	if f.CommandID != cmd|smppwire.ResponseBit || f.Seq != seq {
		t.Fatalf("bind answered with %+v", f.Header)
	}
	return f.Status
}

func submitSM(dest string, registered byte, text string) []byte {
	p := pdu.NewSubmitSM().(*pdu.SubmitSM)
	p.SourceAddr = pdu.NewAddressWithTonNpi(5, 0)
	_ = p.SourceAddr.SetAddress("SMSGW")
	p.DestAddr = pdu.NewAddressWithTonNpi(1, 1)
	_ = p.DestAddr.SetAddress(dest)
	p.RegisteredDelivery = registered
	p.Message, _ = smppwire.ShortMessage([]byte(text), 0)
	return smppwire.Encode(p, 0)
}

func TestBindCredentials(t *testing.T) {
	_, addr := startSMSC(t, smpptest.Config{SystemID: "smsgw", Password: "secret"})
	for _, tt := range []struct {
		systemID, password string
		want               uint32
	}{
		{"smsgw", "secret", smppstatus.ESME_ROK},
		{"smsgw", "wrong", smppstatus.ESME_RBINDFAIL},
		{"other", "secret", smppstatus.ESME_RBINDFAIL},
	} {
		for _, cmd := range []uint32{smppwire.BindTransceiver, smppwire.BindTransmitter, smppwire.BindReceiver} {
			e := smppwiretest.Dial(t, addr)
			if got := bind(t, e, cmd, tt.systemID, tt.password); got != tt.want {
				t.Errorf("bind 0x%X as %s/%s: %s, want %s", cmd, tt.systemID, tt.password, smppstatus.Name(got), smppstatus.Name(tt.want))
			}
			if tt.want != 0 {
				e.ExpectClosed()
			}
		}
	}
	e := smppwiretest.Dial(t, addr)
	bind(t, e, smppwire.BindTransceiver, "smsgw", "secret")
	if got := bind(t, e, smppwire.BindTransceiver, "smsgw", "secret"); got != smppstatus.ESME_RALYBND {
		t.Errorf("second bind: %s, want ESME_RALYBND", smppstatus.Name(got))
	}
}

func TestCommandsOutsideABind(t *testing.T) {
	_, addr := startSMSC(t, smpptest.Config{})
	e := smppwiretest.Dial(t, addr)

	seq := e.Send(submitSM("61412345678", 1, "hi"))
	if f := e.Read(); f.CommandID != smppwire.SubmitSMResp || f.Status != smppstatus.ESME_RINVBNDSTS || f.Seq != seq {
		t.Errorf("submit_sm before bind answered with %+v", f.Header)
	}
	seq = e.Send(smppwire.HeaderOnly(smppwire.EnquireLink, 0, 0))
	if f := e.Read(); f.CommandID != smppwire.EnquireLinkResp || f.Status != 0 || f.Seq != seq {
		t.Errorf("enquire_link answered with %+v", f.Header)
	}
	seq = e.Send(smppwire.HeaderOnly(0x00000999, 0, 0))
	if f := e.Read(); f.CommandID != smppwire.GenericNack || f.Status != smppstatus.ESME_RINVCMDID || f.Seq != seq {
		t.Errorf("unknown command answered with %+v", f.Header)
	}
	seq = e.Send(smppwire.HeaderOnly(smppwire.QuerySM, 0, 0))
	if f := e.Read(); f.CommandID != smppwire.QuerySM|smppwire.ResponseBit || f.Status != smppstatus.ESME_RINVCMDID || f.Seq != seq {
		t.Errorf("query_sm answered with %+v", f.Header)
	}

	r := smppwiretest.Dial(t, addr)
	bind(t, r, smppwire.BindReceiver, "smsgw", "")
	seq = r.Send(submitSM("61412345678", 1, "hi"))
	if f := r.Read(); f.CommandID != smppwire.SubmitSMResp || f.Status != smppstatus.ESME_RINVBNDSTS || f.Seq != seq {
		t.Errorf("submit_sm on a receiver bind answered with %+v", f.Header)
	}
	seq = r.Send(smppwire.HeaderOnly(smppwire.Unbind, 0, 0))
	if f := r.Read(); f.CommandID != smppwire.UnbindResp || f.Seq != seq {
		t.Errorf("unbind answered with %+v", f.Header)
	}
	r.ExpectClosed()
}

func TestGarbageClosesOnlyThatConnection(t *testing.T) {
	_, addr := startSMSC(t, smpptest.Config{})
	for name, garbage := range map[string][]byte{
		"short command_length": {0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 9},
		"huge command_length":  {0x7F, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 9},
		"text":                 []byte("GET / HTTP/1.1\r\nHost: smsc\r\n\r\n"),
	} {
		e := smppwiretest.Dial(t, addr)
		e.Write(garbage)
		if f := e.Read(); f.CommandID != smppwire.GenericNack || f.Status != smppstatus.ESME_RINVCMDLEN {
			t.Errorf("%s answered with %+v", name, f.Header)
		}
		e.ExpectClosed()
	}

	// A submit_sm whose body does not parse is refused, and the bind stays.
	e := smppwiretest.Dial(t, addr)
	bind(t, e, smppwire.BindTransceiver, "smsgw", "")
	bad := smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0)
	bad = append(bad, "no NUL anywhere"...)
	bad[3] = byte(len(bad))
	seq := e.Send(bad)
	if f := e.Read(); f.CommandID != smppwire.GenericNack || f.Status != smppstatus.ESME_RINVCMDLEN || f.Seq != seq {
		t.Errorf("malformed submit_sm answered with %+v", f.Header)
	}
	seq = e.Send(submitSM("61412345678", 0, "still bound"))
	if f := e.Read(); f.CommandID != smppwire.SubmitSMResp || f.Status != 0 || f.Seq != seq {
		t.Errorf("submit_sm after a malformed one answered with %+v", f.Header)
	}
}

func TestReceiptOnTheWire(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{IDFormat: smsgw.UpstreamIDDecimal})
	e := smppwiretest.Dial(t, addr)
	bind(t, e, smppwire.BindTransceiver, "smsgw", "")
	seq := e.Send(submitSM("61412345678", 1, "Hello there, this is longer than twenty"))
	resp := e.Read()
	if resp.CommandID != smppwire.SubmitSMResp || resp.Status != 0 || resp.Seq != seq {
		t.Fatalf("submit_sm answered with %+v", resp.Header)
	}
	respID := smppwire.NewBodyReader(resp.Body()).CString(65, "message_id")
	n, err := strconv.ParseUint(respID, 16, 64)
	if err != nil || len(respID) != 16 {
		t.Fatalf("message_id %q is not 16 hex digits", respID)
	}

	f := e.Read()
	if f.CommandID != smppwire.DeliverSM {
		t.Fatalf("expected deliver_sm, got %+v", f.Header)
	}
	m, err := smppwire.DecodeMessage(smppwire.DeliverSM, f.Body())
	if err != nil {
		t.Fatal(err)
	}
	if m.ESMClass != 0x04 || m.Source != "61412345678" || m.SourceTON != 1 || m.Dest != "SMSGW" || m.DestTON != 5 {
		t.Errorf("receipt %+v", m)
	}
	rt, err := smsgw.ParseReceiptText(string(m.ShortMessage))
	if err != nil {
		t.Fatal(err)
	}
	wantID := fmt.Sprint(n)
	if rt.ID != wantID || rt.Stat != "DELIVRD" || rt.Err != "000" || rt.Sub != "001" || rt.Dlvrd != "001" ||
		rt.Text != "Hello there, this is" || rt.SubmitDate.IsZero() || rt.DoneDate.IsZero() {
		t.Errorf("receipt text %q parsed as %+v, want id %s", m.ShortMessage, rt, wantID)
	}
	if got := smppwire.TLVString(m.TLVs[smppwire.TagReceiptedMessageID]); got != wantID {
		t.Errorf("receipted_message_id %q, want %q", got, wantID)
	}
	if got := m.TLVs[smppwire.TagMessageState]; len(got) != 1 || got[0] != 2 {
		t.Errorf("message_state %v, want [2]", got)
	}
	if smsgw.NormalizeUpstreamID(respID, smsgw.UpstreamIDHex) != smsgw.NormalizeUpstreamID(rt.ID, smsgw.UpstreamIDDecimal) {
		t.Errorf("hex %q and decimal %q do not normalise alike", respID, rt.ID)
	}

	// Refuse it once; it comes again.
	e.Write(smppwire.MessageIDResp(smppwire.DeliverSMResp, smppstatus.ESME_RX_T_APPN, f.Seq, ""))
	again := e.Read()
	if again.CommandID != smppwire.DeliverSM || again.Seq == f.Seq {
		t.Fatalf("expected the receipt again with a new sequence number, got %+v", again.Header)
	}
	e.Write(smppwire.MessageIDResp(smppwire.DeliverSMResp, 0, again.Seq, ""))
	if err := smsc.WaitReceiptAttempts(ctxT(t), 2); err != nil {
		t.Fatal(err)
	}
	got := smsc.ReceiptAttempts()
	if len(got) != 2 || got[0].Status != smppstatus.ESME_RX_T_APPN || got[1].Status != 0 || got[1].Attempt != 2 || got[1].ReceiptID != wantID {
		t.Errorf("receipt attempts %+v", got)
	}
	subs := smsc.Submits()
	if len(subs) != 1 || subs[0].UpstreamID != respID || subs[0].ReceiptID != wantID || subs[0].SystemID != "smsgw" {
		t.Errorf("submits %+v", subs)
	}
}

func TestReceiptBeforeRespOnTheWire(t *testing.T) {
	_, addr := startSMSC(t, smpptest.Config{ReceiptBeforeResp: true})
	e := smppwiretest.Dial(t, addr)
	bind(t, e, smppwire.BindTransceiver, "smsgw", "")
	seq := e.Send(submitSM("61412345678", 1, "hi"))
	first, second := e.Read(), e.Read()
	if first.CommandID != smppwire.DeliverSM || second.CommandID != smppwire.SubmitSMResp || second.Seq != seq {
		t.Fatalf("got %+v then %+v; want the receipt first", first.Header, second.Header)
	}
	m, _ := smppwire.DecodeMessage(smppwire.DeliverSM, first.Body())
	id := smppwire.NewBodyReader(second.Body()).CString(65, "message_id")
	if got := smppwire.TLVString(m.TLVs[smppwire.TagReceiptedMessageID]); got != id {
		t.Errorf("receipt for %q, response with %q", got, id)
	}
}

func TestReceiptOnlyWhenRequested(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{Outcome: func(dest string) (string, string) {
		if dest == "61400000001" {
			return "UNDELIV", "005"
		}
		return "DELIVRD", "000"
	}})
	e := smppwiretest.Dial(t, addr)
	bind(t, e, smppwire.BindTransceiver, "smsgw", "")
	e.Send(submitSM("61412345678", 0, "no receipt"))
	e.Send(submitSM("61412345678", 2, "failure receipts only, and it is delivered"))
	e.Send(submitSM("61400000001", 2, "failure receipts only, and it fails"))
	var receipts []smppwire.Frame
	for len(receipts) == 0 {
		if f := e.Read(); f.CommandID == smppwire.DeliverSM {
			receipts = append(receipts, f)
			e.Write(smppwire.MessageIDResp(smppwire.DeliverSMResp, 0, f.Seq, ""))
		}
	}
	m, _ := smppwire.DecodeMessage(smppwire.DeliverSM, receipts[0].Body())
	if rt, err := smsgw.ParseReceiptText(string(m.ShortMessage)); err != nil || rt.Stat != "UNDELIV" || rt.Err != "005" || rt.Dlvrd != "000" {
		t.Errorf("receipt %q: %+v, %v", m.ShortMessage, rt, err)
	}
	if err := smsc.WaitReceiptAttempts(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(smsc.ReceiptAttempts()); n != 1 {
		t.Errorf("%d receipts offered, want 1", n)
	}
}

func TestReceiptWaitsForAReceiver(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{ReceiptRetryInterval: 50 * time.Millisecond, ReceiptAttempts: 50})
	tx := smppwiretest.Dial(t, addr)
	bind(t, tx, smppwire.BindTransmitter, "smsgw", "")
	tx.Send(submitSM("61412345678", 1, "hi"))
	tx.Read()
	if err := smsc.WaitReceiptAttempts(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	if a := smsc.ReceiptAttempts()[0]; !errors.Is(a.Err, smpptest.ErrNoReceiver) {
		t.Errorf("first attempt %+v, want ErrNoReceiver", a)
	}
	other := smppwiretest.Dial(t, addr)
	bind(t, other, smppwire.BindReceiver, "someone-else", "")
	rx := smppwiretest.Dial(t, addr)
	bind(t, rx, smppwire.BindReceiver, "smsgw", "")
	if f := rx.Read(); f.CommandID != smppwire.DeliverSM {
		t.Fatalf("the receiver got %+v", f.Header)
	}
}

func TestInjectMO(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{})
	if err := smsc.InjectMO(ctxT(t), "61412345678", "12345", 0, 0, []byte("hi")); !errors.Is(err, smpptest.ErrNoReceiver) {
		t.Errorf("InjectMO without a receiver: %v", err)
	}
	e := smppwiretest.Dial(t, addr)
	bind(t, e, smppwire.BindReceiver, "smsgw", "")
	errs := make(chan error, 1)
	go func() { errs <- smsc.InjectMO(ctxT(t), "61412345678", "12345", 0x08, 0, []byte{0, 'h', 0, 'i'}) }()
	f := e.Read()
	m, err := smppwire.DecodeMessage(smppwire.DeliverSM, f.Body())
	if err != nil || m.Source != "61412345678" || m.Dest != "12345" || m.DataCoding != 0x08 || string(m.ShortMessage) != "\x00h\x00i" || m.ESMClass != 0 {
		t.Errorf("MO %+v, %v", m, err)
	}
	e.Write(smppwire.MessageIDResp(smppwire.DeliverSMResp, smppstatus.ESME_RX_P_APPN, f.Seq, ""))
	var se *smpptest.StatusError
	if err := <-errs; !errors.As(err, &se) || se.Status != smppstatus.ESME_RX_P_APPN {
		t.Errorf("InjectMO: %v, want ESME_RX_P_APPN", err)
	}
}

func TestWaitSubmitsHonoursContext(t *testing.T) {
	smsc, _ := startSMSC(t, smpptest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := smsc.WaitSubmits(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitSubmits: %v", err)
	}
}

// gosmpp's own client binds, submits and takes the receipt.
func TestGosmppClient(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{SystemID: "gosmpp", Password: "pw"})
	receipts := make(chan *pdu.DeliverSM, 1)
	responses := make(chan *pdu.SubmitSMResp, 1)
	sess, err := gosmpp.NewSession(
		gosmpp.TRXConnector(gosmpp.NonTLSDialer, gosmpp.Auth{SMSC: addr, SystemID: "gosmpp", Password: "pw"}),
		gosmpp.Settings{
			ReadTimeout: 5 * time.Second,
			OnAllPDU: func(p pdu.PDU) (pdu.PDU, bool) {
				switch p := p.(type) {
				case *pdu.SubmitSMResp:
					responses <- p
				case *pdu.DeliverSM:
					receipts <- p
					return p.GetResponse(), false
				}
				return nil, false
			},
		}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	p := pdu.NewSubmitSM().(*pdu.SubmitSM)
	_ = p.DestAddr.SetAddress("61412345678")
	_ = p.SourceAddr.SetAddress("GOSMPP")
	p.RegisteredDelivery = 1
	_ = p.Message.SetMessageWithEncoding("Hello", data.ASCII)
	if err := sess.Transceiver().Submit(p); err != nil {
		t.Fatal(err)
	}
	var id string
	select {
	case r := <-responses:
		id = r.MessageID
	case <-time.After(wait):
		t.Fatal("no submit_sm_resp")
	}
	select {
	case d := <-receipts:
		f := d.OptionalParameters[pdu.TagReceiptedMessageID]
		if got := f.String(); got != id || d.EsmClass != 0x04 {
			t.Errorf("receipt for %q with esm_class 0x%X, want %q", got, d.EsmClass, id)
		}
	case <-time.After(wait):
		t.Fatal("no receipt")
	}
	if err := smsc.WaitReceiptAttempts(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	if a := smsc.ReceiptAttempts()[0]; a.Status != 0 || a.Err != nil {
		t.Errorf("receipt attempt %+v", a)
	}
	if s := smsc.Submits(); len(s) != 1 || string(s[0].ShortMessage) != "Hello" {
		t.Errorf("submits %+v", s)
	}
}
