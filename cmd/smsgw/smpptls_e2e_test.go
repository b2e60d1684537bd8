package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smppserver/esme"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with the given
// serial number, and its key, as PEM files; it returns the certificate.
func writeCert(t *testing.T, certFile, keyFile string, serial int64) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "smsgw test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// The key first: the server reads the pair when the certificate's file changes.
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// SMPP over TLS in the binary: a customer binds over TLS and submits; a
// renewed certificate written over the old files is served to the next
// connection, without a restart.
func TestEndToEndSMPPOverTLSWithCertificateRenewal(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := writeCert(t, certFile, keyFile, 1)
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
	c := dial(first)
	id := smppSubmit(t, ctx, c, "Hello over TLS")
	waitReceipt(t, ctx, c, id)
	if err := c.Unbind(ctx); err != nil { // receipts go to any receiver bind of the customer: leave one
		t.Fatal(err)
	}

	second := writeCert(t, certFile, keyFile, 2)
	for {
		roots := x509.NewCertPool()
		roots.AddCert(second)
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
	c2 := dial(second)
	id2 := smppSubmit(t, ctx, c2, "Hello over TLS, renewed")
	waitReceipt(t, ctx, c2, id2)
}
