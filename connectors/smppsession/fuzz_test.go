package smppsession_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/linxGnu/gosmpp/pdu"

	"github.com/smsgw/smsgw/connectors/smppsession"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// seeds are PDUs of every kind a session meets, one after the other.
func seeds() [][]byte {
	bind := pdu.NewBindRequest(pdu.Transceiver)
	bind.SystemID, bind.Password = "fuzz", "pw"
	submit := pdu.NewSubmitSM().(*pdu.SubmitSM)
	_ = submit.DestAddr.SetAddress("61412345678")
	submit.RegisteredDelivery = 1
	submit.EsmClass = smppwire.ESMClassUDHI
	submit.Message, _ = smppwire.ShortMessage([]byte{0x05, 0x00, 0x03, 0x01, 0x02, 0x01, 'h', 'i'}, 0x08)
	submit.RegisterOptionalParam(pdu.Field{Tag: pdu.Tag(smppwire.TagSarMsgRefNum), Data: []byte{1, 2}})
	return [][]byte{
		smppwire.Encode(bind, 1),
		smppwire.Encode(submit, 2),
		smppwire.HeaderOnly(smppwire.EnquireLink, 0, 3),
		smppwire.MessageIDResp(smppwire.DeliverSMResp, 0, 1, ""),
		smppwire.HeaderOnly(smppwire.AlertNotification, 0, 4),
		smppwire.HeaderOnly(0x12345678, 0, 5),
		smppwire.HeaderOnly(smppwire.Unbind, 0, 6),
	}
}

// FuzzReadFrame splits arbitrary bytes into PDUs and decodes each: nothing
// panics, every frame is as long as its command_length says, and a decoded
// message never holds more than the body it came from.
func FuzzReadFrame(f *testing.F) {
	stream := bytes.Join(seeds(), nil)
	f.Add(stream)
	f.Add(stream[:len(stream)-7])
	f.Add([]byte{0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 0, 17, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0})
	f.Add(append(smppwire.HeaderOnly(smppwire.DataSM, 0, 1), 0, 1, 1, 'a', 0, 1, 1, 'b', 0, 0x04, 0, 0))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for {
			fr, err := smppwire.ReadFrame(r)
			if errors.Is(err, smppwire.ErrBadLength) {
				if fr.Length >= smppwire.HeaderLen && fr.Length <= smppwire.MaxPDULen {
					t.Fatalf("command_length %d refused", fr.Length)
				}
				return
			}
			if err != nil {
				return
			}
			if int(fr.Length) != len(fr.Raw) || len(fr.Body()) != len(fr.Raw)-smppwire.HeaderLen {
				t.Fatalf("frame of %d octets says %d", len(fr.Raw), fr.Length)
			}
			_, _ = smppwire.Decode(fr) // gosmpp's parser, its panics turned into errors
			switch fr.CommandID {
			case smppwire.SubmitSM, smppwire.DeliverSM, smppwire.DataSM:
				checkMessage(t, fr.CommandID, fr.Body())
			}
		}
	})
}

// FuzzDecodeMessage checks the message decoder on bodies alone: it refuses
// what it cannot read without panicking, and reads back what it decoded.
func FuzzDecodeMessage(f *testing.F) {
	raw := seeds()[1]
	f.Add(uint8(0), raw[smppwire.HeaderLen:])
	f.Add(uint8(1), raw[smppwire.HeaderLen:len(raw)-3])
	f.Add(uint8(1), []byte{0, 1, 1, 'a', 0, 1, 1, 'b', 0, 0x04, 0, 0})
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		cmd := smppwire.SubmitSM
		if kind%2 == 1 {
			cmd = smppwire.DataSM
		}
		checkMessage(t, cmd, body)
	})
}

// checkMessage decodes a message body, and checks that whatever decoded
// fits in the body it came from.
func checkMessage(t *testing.T, cmd uint32, body []byte) {
	m, err := smppwire.DecodeMessage(cmd, body)
	if err != nil {
		return
	}
	if len(m.ShortMessage) > 255 {
		t.Fatalf("short message of %d octets", len(m.ShortMessage))
	}
	size := len(m.ServiceType) + len(m.Source) + len(m.Dest) + len(m.ShortMessage)
	for _, v := range m.TLVs {
		size += 4 + len(v)
	}
	if size > len(body) {
		t.Fatalf("decoded %d octets from a body of %d", size, len(body))
	}
}

// FuzzSession feeds arbitrary bytes to a session, as a peer would send
// them, with a Handler that answers some requests at once and others
// later: nothing panics, and the session ends once the peer leaves.
func FuzzSession(f *testing.F) {
	stream := bytes.Join(seeds(), nil)
	f.Add(stream)
	f.Add(stream[:len(stream)-9])
	f.Add([]byte{0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte("GET / HTTP/1.1\r\nHost: smsc\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ours, theirs := net.Pipe()
		var s *smppsession.Session
		s = smppsession.New(ours, smppsession.Config{ResponseTimeout: 50 * time.Millisecond, EnquireLink: 10 * time.Millisecond},
			smppsession.HandlerFunc(func(ctx context.Context, req smppwire.Frame) {
				resp := smppwire.HeaderOnly(req.CommandID|smppwire.ResponseBit, smppstatus.ESME_ROK, req.Seq)
				if req.Seq%2 == 0 {
					_ = s.Respond(resp)
					return
				}
				go func() { _ = s.Respond(resp) }()
			}))
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			_ = s.Run(context.Background())
		}()
		go func() { _, _ = io.Copy(io.Discard, theirs) }()
		_, _ = theirs.Write(in)
		_ = theirs.Close()
		select {
		case <-ended:
		case <-time.After(5 * time.Second):
			t.Fatal("the session did not end after its peer left")
		}
	})
}
