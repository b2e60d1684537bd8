package smpptest_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
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

// esme is a bare ESME speaking PDUs one by one, to see exactly what the simulator sends.
type esme struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	seq  uint32
}

func dial(t *testing.T, addr string) *esme {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &esme{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// send writes a PDU with the next sequence number and returns that number.
func (e *esme) send(raw []byte) uint32 {
	e.t.Helper()
	e.seq++
	smppwire.SetSeq(raw, e.seq)
	if _, err := e.conn.Write(raw); err != nil {
		e.t.Fatal(err)
	}
	return e.seq
}

func (e *esme) read() smppwire.Frame {
	e.t.Helper()
	_ = e.conn.SetReadDeadline(time.Now().Add(wait))
	f, err := smppwire.ReadFrame(e.r)
	if err != nil {
		e.t.Fatalf("reading a PDU: %v", err)
	}
	return f
}

// expectClosed checks that the simulator closes the connection without sending more.
func (e *esme) expectClosed() {
	e.t.Helper()
	_ = e.conn.SetReadDeadline(time.Now().Add(wait))
	if f, err := smppwire.ReadFrame(e.r); !errors.Is(err, io.EOF) {
		e.t.Fatalf("got %+v, %v; want the connection closed", f.Header, err)
	}
}

func (e *esme) bind(cmd uint32, systemID, password string) uint32 {
	e.t.Helper()
	types := map[uint32]pdu.BindingType{
		smppwire.BindTransceiver: pdu.Transceiver, smppwire.BindTransmitter: pdu.Transmitter, smppwire.BindReceiver: pdu.Receiver,
	}
	req := pdu.NewBindRequest(types[cmd])
	req.SystemID, req.Password = systemID, password
	seq := e.send(smppwire.Encode(req, 0))
	f := e.read()
	if f.CommandID != cmd|smppwire.ResponseBit || f.Seq != seq {
		e.t.Fatalf("bind answered with %+v", f.Header)
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
			e := dial(t, addr)
			if got := e.bind(cmd, tt.systemID, tt.password); got != tt.want {
				t.Errorf("bind 0x%X as %s/%s: %s, want %s", cmd, tt.systemID, tt.password, smppstatus.Name(got), smppstatus.Name(tt.want))
			}
			if tt.want != 0 {
				e.expectClosed()
			}
		}
	}
	e := dial(t, addr)
	e.bind(smppwire.BindTransceiver, "smsgw", "secret")
	if got := e.bind(smppwire.BindTransceiver, "smsgw", "secret"); got != smppstatus.ESME_RALYBND {
		t.Errorf("second bind: %s, want ESME_RALYBND", smppstatus.Name(got))
	}
}

func TestCommandsOutsideABind(t *testing.T) {
	_, addr := startSMSC(t, smpptest.Config{})
	e := dial(t, addr)

	seq := e.send(submitSM("61412345678", 1, "hi"))
	if f := e.read(); f.CommandID != smppwire.SubmitSMResp || f.Status != smppstatus.ESME_RINVBNDSTS || f.Seq != seq {
		t.Errorf("submit_sm before bind answered with %+v", f.Header)
	}
	seq = e.send(smppwire.HeaderOnly(smppwire.EnquireLink, 0, 0))
	if f := e.read(); f.CommandID != smppwire.EnquireLinkResp || f.Status != 0 || f.Seq != seq {
		t.Errorf("enquire_link answered with %+v", f.Header)
	}
	seq = e.send(smppwire.HeaderOnly(0x00000999, 0, 0))
	if f := e.read(); f.CommandID != smppwire.GenericNack || f.Status != smppstatus.ESME_RINVCMDID || f.Seq != seq {
		t.Errorf("unknown command answered with %+v", f.Header)
	}
	seq = e.send(smppwire.HeaderOnly(smppwire.QuerySM, 0, 0))
	if f := e.read(); f.CommandID != smppwire.QuerySM|smppwire.ResponseBit || f.Status != smppstatus.ESME_RINVCMDID || f.Seq != seq {
		t.Errorf("query_sm answered with %+v", f.Header)
	}

	r := dial(t, addr)
	r.bind(smppwire.BindReceiver, "smsgw", "")
	seq = r.send(submitSM("61412345678", 1, "hi"))
	if f := r.read(); f.CommandID != smppwire.SubmitSMResp || f.Status != smppstatus.ESME_RINVBNDSTS || f.Seq != seq {
		t.Errorf("submit_sm on a receiver bind answered with %+v", f.Header)
	}
	seq = r.send(smppwire.HeaderOnly(smppwire.Unbind, 0, 0))
	if f := r.read(); f.CommandID != smppwire.UnbindResp || f.Seq != seq {
		t.Errorf("unbind answered with %+v", f.Header)
	}
	r.expectClosed()
}

func TestGarbageClosesOnlyThatConnection(t *testing.T) {
	_, addr := startSMSC(t, smpptest.Config{})
	for name, garbage := range map[string][]byte{
		"short command_length": {0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 9},
		"huge command_length":  {0x7F, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 9},
		"text":                 []byte("GET / HTTP/1.1\r\nHost: smsc\r\n\r\n"),
	} {
		e := dial(t, addr)
		if _, err := e.conn.Write(garbage); err != nil {
			t.Fatal(err)
		}
		if f := e.read(); f.CommandID != smppwire.GenericNack || f.Status != smppstatus.ESME_RINVCMDLEN {
			t.Errorf("%s answered with %+v", name, f.Header)
		}
		e.expectClosed()
	}

	// A submit_sm whose body does not parse is refused, and the bind stays.
	e := dial(t, addr)
	e.bind(smppwire.BindTransceiver, "smsgw", "")
	bad := smppwire.HeaderOnly(smppwire.SubmitSM, 0, 0)
	bad = append(bad, "no NUL anywhere"...)
	bad[3] = byte(len(bad))
	seq := e.send(bad)
	if f := e.read(); f.CommandID != smppwire.GenericNack || f.Status != smppstatus.ESME_RINVCMDLEN || f.Seq != seq {
		t.Errorf("malformed submit_sm answered with %+v", f.Header)
	}
	seq = e.send(submitSM("61412345678", 0, "still bound"))
	if f := e.read(); f.CommandID != smppwire.SubmitSMResp || f.Status != 0 || f.Seq != seq {
		t.Errorf("submit_sm after a malformed one answered with %+v", f.Header)
	}
}

func TestReceiptOnTheWire(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{IDFormat: smsgw.UpstreamIDDecimal})
	e := dial(t, addr)
	e.bind(smppwire.BindTransceiver, "smsgw", "")
	seq := e.send(submitSM("61412345678", 1, "Hello there, this is longer than twenty"))
	resp := e.read()
	if resp.CommandID != smppwire.SubmitSMResp || resp.Status != 0 || resp.Seq != seq {
		t.Fatalf("submit_sm answered with %+v", resp.Header)
	}
	respID := smppwire.NewBodyReader(resp.Body()).CString(65, "message_id")
	n, err := strconv.ParseUint(respID, 16, 64)
	if err != nil || len(respID) != 16 {
		t.Fatalf("message_id %q is not 16 hex digits", respID)
	}

	f := e.read()
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
	_, _ = e.conn.Write(smppwire.MessageIDResp(smppwire.DeliverSMResp, smppstatus.ESME_RX_T_APPN, f.Seq, ""))
	again := e.read()
	if again.CommandID != smppwire.DeliverSM || again.Seq == f.Seq {
		t.Fatalf("expected the receipt again with a new sequence number, got %+v", again.Header)
	}
	_, _ = e.conn.Write(smppwire.MessageIDResp(smppwire.DeliverSMResp, 0, again.Seq, ""))
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
	e := dial(t, addr)
	e.bind(smppwire.BindTransceiver, "smsgw", "")
	seq := e.send(submitSM("61412345678", 1, "hi"))
	first, second := e.read(), e.read()
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
	e := dial(t, addr)
	e.bind(smppwire.BindTransceiver, "smsgw", "")
	e.send(submitSM("61412345678", 0, "no receipt"))
	e.send(submitSM("61412345678", 2, "failure receipts only, and it is delivered"))
	e.send(submitSM("61400000001", 2, "failure receipts only, and it fails"))
	var receipts []smppwire.Frame
	for len(receipts) == 0 {
		if f := e.read(); f.CommandID == smppwire.DeliverSM {
			receipts = append(receipts, f)
			_, _ = e.conn.Write(smppwire.MessageIDResp(smppwire.DeliverSMResp, 0, f.Seq, ""))
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
	tx := dial(t, addr)
	tx.bind(smppwire.BindTransmitter, "smsgw", "")
	tx.send(submitSM("61412345678", 1, "hi"))
	tx.read()
	if err := smsc.WaitReceiptAttempts(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	if a := smsc.ReceiptAttempts()[0]; !errors.Is(a.Err, smpptest.ErrNoReceiver) {
		t.Errorf("first attempt %+v, want ErrNoReceiver", a)
	}
	other := dial(t, addr)
	other.bind(smppwire.BindReceiver, "someone-else", "")
	rx := dial(t, addr)
	rx.bind(smppwire.BindReceiver, "smsgw", "")
	if f := rx.read(); f.CommandID != smppwire.DeliverSM {
		t.Fatalf("the receiver got %+v", f.Header)
	}
}

func TestInjectMO(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{})
	if err := smsc.InjectMO(ctxT(t), "61412345678", "12345", 0, 0, []byte("hi")); !errors.Is(err, smpptest.ErrNoReceiver) {
		t.Errorf("InjectMO without a receiver: %v", err)
	}
	e := dial(t, addr)
	e.bind(smppwire.BindReceiver, "smsgw", "")
	errs := make(chan error, 1)
	go func() { errs <- smsc.InjectMO(ctxT(t), "61412345678", "12345", 0x08, 0, []byte{0, 'h', 0, 'i'}) }()
	f := e.read()
	m, err := smppwire.DecodeMessage(smppwire.DeliverSM, f.Body())
	if err != nil || m.Source != "61412345678" || m.Dest != "12345" || m.DataCoding != 0x08 || string(m.ShortMessage) != "\x00h\x00i" || m.ESMClass != 0 {
		t.Errorf("MO %+v, %v", m, err)
	}
	_, _ = e.conn.Write(smppwire.MessageIDResp(smppwire.DeliverSMResp, smppstatus.ESME_RX_P_APPN, f.Seq, ""))
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
