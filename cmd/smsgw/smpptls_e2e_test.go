package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smppserver/esme"
	"github.com/smsgw/smsgw/connectors/smppwire"
	"github.com/smsgw/smsgw/internal/testenv"
)

// SMPP over TLS in the binary: a customer binds over TLS and submits; a
// renewed certificate written over the old files is served to the next
// connection, without a restart.
func TestEndToEndSMPPOverTLSWithCertificateRenewal(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := testenv.SelfSignedCert(t)
	testenv.WritePEM(t, first, certFile, keyFile)
	tlsAddr := freeAddr(t)
	startGatewayWith(t, "", gatewayExtras{
		customers: smppCustomer.customers,
		flags:     []string{"-smpp-tls-addr", tlsAddr, "-smpp-tls-cert", certFile, "-smpp-tls-key", keyFile, "-smpp-tls-reload", "200ms"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// dial binds over TLS, trusting only want, and returns the client.
	dial := func(want *x509.Certificate) *esme.Client {
		t.Helper()
		roots := x509.NewCertPool()
		roots.AddCert(want)
		c, err := esme.Dial(ctx, tlsAddr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("TLS dial trusting certificate %v: %v", want.SerialNumber, err)
		}
		t.Cleanup(func() { c.Close() })
		resp, err := c.Bind(ctx, smppwire.BindTransceiver, "smppco", "smpp-pw")
		if err != nil || resp.Status != 0 {
			t.Fatalf("bind over TLS: %+v %v", resp.Header, err)
		}
		return c
	}
	c := dial(first.Leaf)
	id := smppSubmit(t, ctx, c, "Hello over TLS")
	waitReceipt(t, ctx, c, id)
	if err := c.Unbind(ctx); err != nil { // receipts go to any receiver bind of the customer: leave one
		t.Fatal(err)
	}

	second := testenv.SelfSignedCert(t)
	testenv.WritePEM(t, second, certFile, keyFile)
	for {
		roots := x509.NewCertPool()
		roots.AddCert(second.Leaf)
		conn, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		if err == nil {
			conn.Close()
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the renewed certificate is not served: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c2 := dial(second.Leaf)
	id2 := smppSubmit(t, ctx, c2, "Hello over TLS, renewed")
	waitReceipt(t, ctx, c2, id2)
}
