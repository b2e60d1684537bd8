package smppserver_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw/connectors/smppserver"
	"github.com/smsgw/smsgw/connectors/smppserver/esme"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// FuzzServerSession feeds arbitrary bytes to a server connection, as an
// ESME would send them, and checks that the session ends without a panic
// once its peer leaves.
func FuzzServerSession(f *testing.F) {
	submit := smppserver.EncodeMessage(smppwire.SubmitSM, 2, text("hello"))
	part := smppserver.EncodeMessage(smppwire.SubmitSM, 3, udhPart(1, 2, 1, "half"))
	data := smppserver.EncodeMessage(smppwire.DataSM, 4, text(""))
	session := bytes.Join([][]byte{
		esme.BindPDU(smppwire.BindTransceiver, "acme", "secret"),
		submit, part, data,
		queryPDU("msg-1"),
		smppwire.HeaderOnly(smppwire.EnquireLink, 0, 5),
		smppwire.MessageIDResp(smppwire.DeliverSMResp, 0, 1, ""),
		smppwire.HeaderOnly(smppwire.Unbind, 0, 6),
	}, nil)
	f.Add(session)
	f.Add(session[:len(session)-9])
	f.Add(append(esme.BindPDU(smppwire.BindReceiver, "acme", "secret"), smppwire.HeaderOnly(0x12345678, 0, 1)...))
	f.Add([]byte{0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add(append(esme.BindPDU(smppwire.BindTransmitter, "acme", "secret"), 0, 0, 0, 17, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0))

	reg := prometheus.NewRegistry()
	srv, err := smppserver.New(smppserver.Config{ConcatTimeout: 10 * time.Millisecond, BindTimeout: time.Second},
		smppserver.Deps{Config: testConfig(f), Submitter: &submitter{noop: true}, Messages: messages{}, Registerer: reg})
	if err != nil {
		f.Fatal(err)
	}
	fx := &fixture{reg: reg}
	f.Fuzz(func(t *testing.T, in []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		server, client := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.ServeConn(ctx, server)
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		_, _ = client.Write(in)
		_ = client.Close()
		select {
		case <-done:
		case <-ctx.Done():
			t.Fatal("the session did not end after its peer left")
		}
		if n := fx.metric(t, "smsgw_smpp_session_panics_total"); n != 0 {
			t.Fatalf("%v sessions panicked", n)
		}
	})
}
