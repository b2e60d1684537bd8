package smpptest

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/linxGnu/gosmpp/pdu"

	"github.com/smsgw/smsgw/connectors/smppwire"
)

// FuzzSession feeds arbitrary bytes to a simulator connection, as an ESME
// would send them, and checks the session ends without a panic once the
// bytes run out.
func FuzzSession(f *testing.F) {
	bind := pdu.NewBindRequest(pdu.Transceiver)
	bind.SystemID = "fuzz"
	submit := pdu.NewSubmitSM().(*pdu.SubmitSM)
	_ = submit.DestAddr.SetAddress("61412345678")
	submit.RegisteredDelivery = 1
	submit.EsmClass = 0x40
	submit.Message, _ = smppwire.ShortMessage([]byte{0x05, 0x00, 0x03, 0x01, 0x02, 0x01, 'h', 'i'}, 0x08)
	session := bytes.Join([][]byte{
		smppwire.Encode(bind, 1),
		smppwire.Encode(submit, 2),
		smppwire.HeaderOnly(smppwire.EnquireLink, 0, 3),
		smppwire.MessageIDResp(smppwire.DeliverSMResp, 0, 1, ""),
		smppwire.HeaderOnly(smppwire.Unbind, 0, 4),
	}, nil)
	f.Add(session)
	f.Add(session[:len(session)-7])
	f.Add(smppwire.HeaderOnly(0x12345678, 0, 1))
	f.Add([]byte{0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 0, 17, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0})

	smsc := New(Config{ReceiptDelay: time.Millisecond, ReceiptAttempts: 1, ResponseTimeout: 10 * time.Millisecond})
	f.Fuzz(func(t *testing.T, in []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		server, client := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			smsc.serveConn(ctx, server)
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		_, _ = client.Write(in)
		_ = client.Close()
		select {
		case <-done:
		case <-ctx.Done():
			t.Fatal("the session did not end after its peer left")
		}
	})
}

// FuzzDecodeMessage checks the message decoder refuses what it cannot read
// without panicking, and reads back what it decoded.
func FuzzDecodeMessage(f *testing.F) {
	submit := pdu.NewSubmitSM().(*pdu.SubmitSM)
	_ = submit.DestAddr.SetAddress("61412345678")
	submit.Message, _ = smppwire.ShortMessage([]byte("hello"), 0xF5)
	submit.RegisterOptionalParam(pdu.Field{Tag: pdu.Tag(smppwire.TagSarMsgRefNum), Data: []byte{1, 2}})
	raw := smppwire.Encode(submit, 1)
	f.Add(uint8(0), raw[smppwire.HeaderLen:])
	f.Add(uint8(1), raw[smppwire.HeaderLen:len(raw)-3])
	f.Add(uint8(1), []byte{0, 1, 1, 'a', 0, 1, 1, 'b', 0, 0x04, 0, 0})
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		cmd := smppwire.SubmitSM
		if kind%2 == 1 {
			cmd = smppwire.DataSM
		}
		m, err := smppwire.DecodeMessage(cmd, body)
		if err != nil {
			return
		}
		if len(m.ShortMessage) > 255 {
			t.Fatalf("short message of %d octets", len(m.ShortMessage))
		}
		// Whatever decoded must fit in the body it came from.
		size := len(m.ServiceType) + len(m.Source) + len(m.Dest) + len(m.ShortMessage)
		for _, v := range m.TLVs {
			size += 4 + len(v)
		}
		if size > len(body) {
			t.Fatalf("decoded %d octets from a body of %d", size, len(body))
		}
	})
}
