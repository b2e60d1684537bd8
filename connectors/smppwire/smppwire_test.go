package smppwire_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/linxGnu/gosmpp/pdu"

	"github.com/smsgw/smsgw/connectors/smppwire"
)

// A message goes through encoding and decoding exactly: a data_coding gosmpp
// has no codec for and a User Data Header it cannot parse survive.
func TestMessageRoundTrip(t *testing.T) {
	sm := []byte{0x07, 0x99, 0x05, 1, 2, 3, 4, 5, 0xAA, 0xBB} // UDH with an unknown, overlong IE
	p := pdu.NewSubmitSM().(*pdu.SubmitSM)
	p.SourceAddr = pdu.NewAddressWithTonNpi(5, 0)
	_ = p.SourceAddr.SetAddress("SMSGW")
	p.DestAddr = pdu.NewAddressWithTonNpi(1, 1)
	_ = p.DestAddr.SetAddress("61412345678")
	p.EsmClass = smppwire.ESMClassUDHI
	p.RegisteredDelivery = 1
	p.ValidityPeriod = "000002000000000R"
	var err error
	if p.Message, err = smppwire.ShortMessage(sm, 0xF6); err != nil {
		t.Fatal(err)
	}
	p.RegisterOptionalParam(pdu.Field{Tag: pdu.Tag(smppwire.TagSarMsgRefNum), Data: []byte{0x12, 0x34}})
	raw := smppwire.Encode(p, 42)

	f, err := smppwire.ReadFrame(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if f.CommandID != smppwire.SubmitSM || f.Seq != 42 || int(f.Length) != len(raw) || f.IsResponse() {
		t.Fatalf("header %+v", f.Header)
	}
	m, err := smppwire.DecodeMessage(f.CommandID, f.Body())
	if err != nil {
		t.Fatal(err)
	}
	if m.Source != "SMSGW" || m.SourceTON != 5 || m.Dest != "61412345678" || m.DestTON != 1 || m.DestNPI != 1 ||
		m.ESMClass != 0x40 || m.RegisteredDelivery != 1 || m.ValidityPeriod != "000002000000000R" ||
		m.DataCoding != 0xF6 || !bytes.Equal(m.ShortMessage, sm) || !bytes.Equal(m.TLVs[smppwire.TagSarMsgRefNum], []byte{0x12, 0x34}) {
		t.Errorf("decoded %+v", m)
	}
	// gosmpp's own decoding knows no codec for 0xF6 and forgets it.
	if g, err := smppwire.Decode(f); err == nil && g.(*pdu.SubmitSM).Message.Encoding() != nil {
		t.Log("gosmpp now keeps unknown data_coding values")
	}
}

func TestReadFrameRejectsBadLengths(t *testing.T) {
	for _, length := range []uint32{0, 15, smppwire.MaxPDULen + 1} {
		h := smppwire.HeaderOnly(smppwire.EnquireLink, 0, 7)
		h[0], h[1], h[2], h[3] = byte(length>>24), byte(length>>16), byte(length>>8), byte(length)
		f, err := smppwire.ReadFrame(bytes.NewReader(h))
		if !errors.Is(err, smppwire.ErrBadLength) || f.Seq != 7 {
			t.Errorf("length %d: %v, seq %d", length, err, f.Seq)
		}
	}
	short := smppwire.MessageIDResp(smppwire.SubmitSMResp, 0, 1, "abc")
	if _, err := smppwire.ReadFrame(bytes.NewReader(short[:len(short)-1])); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated body: %v", err)
	}
}

func TestReadFrameMax(t *testing.T) {
	resp := smppwire.MessageIDResp(smppwire.SubmitSMResp, 0, 9, "abc")
	if f, err := smppwire.ReadFrameMax(bytes.NewReader(resp), uint32(len(resp))); err != nil || f.Seq != 9 {
		t.Fatalf("a PDU of the limit's length: %+v %v", f.Header, err)
	}
	f, err := smppwire.ReadFrameMax(bytes.NewReader(resp), uint32(len(resp)-1))
	if !errors.Is(err, smppwire.ErrBadLength) || f.Seq != 9 {
		t.Fatalf("a PDU over the limit: %+v %v, want ErrBadLength with the header", f.Header, err)
	}
}

func TestDecodeMessageErrors(t *testing.T) {
	for name, body := range map[string][]byte{
		"empty":                 {},
		"no NUL":                []byte("abc"),
		"long service_type":     []byte("ABCDEFGH\x00"),
		"short_message overrun": {0, 1, 1, 'a', 0, 1, 1, 'b', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 'x'},
		"stray TLV octets":      {0, 1, 1, 'a', 0, 1, 1, 'b', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02},
		"TLV overrun":           {0, 1, 1, 'a', 0, 1, 1, 'b', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0x24, 0, 9, 'x'},
	} {
		if _, err := smppwire.DecodeMessage(smppwire.DeliverSM, body); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestMessageIDResp(t *testing.T) {
	raw := smppwire.MessageIDResp(smppwire.DeliverSMResp, 0x64, 9, "")
	want := []byte{0, 0, 0, 17, 0x80, 0, 0, 5, 0, 0, 0, 0x64, 0, 0, 0, 9, 0}
	if !bytes.Equal(raw, want) {
		t.Errorf("% x, want % x", raw, want)
	}
}

func TestMessageStates(t *testing.T) {
	for v, s := range smppwire.MessageStates {
		if smppwire.MessageState(s) != v {
			t.Errorf("MessageState(%s) = %d, want %d", s, smppwire.MessageState(s), v)
		}
	}
	if smppwire.MessageState("NOPE") != 0 {
		t.Error("unknown state word has a value")
	}
}

func TestCommandNames(t *testing.T) {
	for cmd, want := range map[uint32]string{
		smppwire.SubmitSM:        "submit_sm",
		smppwire.QuerySMResp:     "query_sm_resp",
		smppwire.SubmitMultiResp: "submit_multi_resp",
		0x00001234:               "unknown",
	} {
		if got := smppwire.CommandName(cmd); got != want {
			t.Errorf("CommandName(0x%08X) = %q, want %q", cmd, got, want)
		}
		if smppwire.KnownCommand(cmd) != (want != "unknown") {
			t.Errorf("KnownCommand(0x%08X) = %v", cmd, smppwire.KnownCommand(cmd))
		}
	}
	for cmd, want := range map[uint32]bool{
		smppwire.SubmitSM: true, smppwire.EnquireLink: true, smppwire.Unbind: true,
		smppwire.AlertNotification: false, smppwire.Outbind: false, smppwire.SubmitSMResp: false, smppwire.GenericNack: false,
	} {
		if got := smppwire.ExpectsResponse(cmd); got != want {
			t.Errorf("ExpectsResponse(%s) = %v", smppwire.CommandName(cmd), got)
		}
	}
}

func TestHeaderOf(t *testing.T) {
	h, ok := smppwire.HeaderOf(smppwire.MessageIDResp(smppwire.SubmitSMResp, 0x58, 7, "id"))
	if !ok || h != (smppwire.Header{Length: 19, CommandID: smppwire.SubmitSMResp, Status: 0x58, Seq: 7}) {
		t.Errorf("HeaderOf = %+v, %v", h, ok)
	}
	if _, ok := smppwire.HeaderOf(make([]byte, smppwire.HeaderLen-1)); ok {
		t.Error("a header read from 15 octets")
	}
}
