package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/smsgw/smsgw/connectors/smppserver/esme"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
	"github.com/smsgw/smsgw/internal/testenv"
)

// The public entry points of the binary, attacked as strangers would.

// An idle flood from one address is shed while a customer at that address
// binds and gets its receipt; guessed passwords lock their source out, not
// the customer.
func TestEndToEndSMPPEntryLimits(t *testing.T) {
	g := startGatewayWith(t, "", gatewayExtras{
		customers: smppCustomer.customers,
		flags: []string{"-smpp-max-unbound-per-source", "8", "-smpp-first-pdu-timeout", "2s",
			"-smpp-bind-slow-after", "1", "-smpp-bind-delay", "50ms", "-smpp-bind-max-delay", "100ms",
			"-smpp-bind-lockout-after", "3", "-smpp-bind-lockout", "1m"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const flood = 300
	idle := make([]net.Conn, 0, flood)
	t.Cleanup(func() {
		for _, c := range idle {
			c.Close()
		}
	})
	for range flood {
		c, err := net.DialTimeout("tcp", g.smpp, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	c := smppBind(t, ctx, g, smppwire.BindTransceiver)
	waitReceipt(t, ctx, c, smppSubmit(t, ctx, c, "Hello through the flood"))
	// Every idle connection is closed: most to make room for newer ones,
	// the last 8 at the first-PDU deadline.
	deadline := time.Now().Add(20 * time.Second)
	for i, conn := range idle {
		_ = conn.SetReadDeadline(deadline)
		if _, err := conn.Read(make([]byte, 16)); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			t.Fatalf("idle connection %d of %d not closed by the server: %v", i+1, flood, err)
		}
	}

	bindFrom := func(src, password string) uint32 {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		conn, err := d.DialContext(ctx, "tcp", g.smpp)
		if err != nil {
			t.Fatal(err)
		}
		cl := esme.New(conn)
		t.Cleanup(func() { cl.Close() })
		resp, err := cl.Bind(ctx, smppwire.BindTransmitter, "smppco", password)
		if err != nil {
			t.Fatalf("bind from %s: %v", src, err)
		}
		return resp.Status
	}
	for i := range 3 {
		if status := bindFrom("127.0.0.2", fmt.Sprintf("guess-%d", i)); status != smppstatus.ESME_RBINDFAIL {
			t.Fatalf("guess %d: %s", i+1, smppstatus.Name(status))
		}
	}
	if status := bindFrom("127.0.0.2", "smpp-pw"); status != smppstatus.ESME_RBINDFAIL {
		t.Fatalf("the right password from the locked-out address: %s, want ESME_RBINDFAIL", smppstatus.Name(status))
	}
	if status := bindFrom("127.0.0.3", "smpp-pw"); status != smppstatus.ESME_ROK {
		t.Fatalf("the customer from its own address: %s, want ESME_ROK", smppstatus.Name(status))
	}
}

// isReset reports whether err is a connection reset: a server that closes
// a connection with unread data resets it.
func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// The SMTP ingress offers STARTTLS with a certificate from files, renewed
// without a restart; AUTH is refused before it, and a connection that keeps
// guessing is closed.
func TestEndToEndSMTPStartTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := testenv.SelfSignedCert(t)
	testenv.WritePEM(t, first, certFile, keyFile)
	g := startGatewayWith(t, "", gatewayExtras{
		customers: `  - id: mailco
    allowedSenders: [MAILCO]
    emailIngress: {username: mailco, password: "plain:mail-pw"}
`,
		sections: "email: {domains: [sms.test]}\n",
		flags:    []string{"-smtp-tls-cert", certFile, "-smtp-tls-key", keyFile, "-smtp-tls-reload", "200ms"},
	})
	trusting := func(cert *x509.Certificate) *tls.Config {
		roots := x509.NewCertPool()
		roots.AddCert(cert)
		return &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}
	login := sasl.NewPlainClient("", "mailco", "mail-pw")

	clear, err := smtp.Dial(g.smtp)
	if err != nil {
		t.Fatal(err)
	}
	defer clear.Close()
	var se *smtp.SMTPError
	if err := clear.Auth(login); !errors.As(err, &se) || se.Code != 523 {
		t.Fatalf("AUTH in the clear: %v, want 523", err)
	}

	c, err := smtp.DialStartTLS(g.smtp, trusting(first.Leaf))
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	defer c.Close()
	if err := c.Auth(login); err != nil {
		t.Fatalf("AUTH after STARTTLS: %v", err)
	}
	if err := c.SendMail("ops@mailco.test", []string{"+61412345602@sms.test"}, strings.NewReader("Subject: x\r\n\r\nover TLS\r\n")); err != nil {
		t.Fatalf("mail over TLS: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for g.submitsTo("61412345602") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the mail sent over TLS did not reach the SMSC")
		}
		time.Sleep(100 * time.Millisecond)
	}

	guesser, err := smtp.DialStartTLS(g.smtp, trusting(first.Leaf))
	if err != nil {
		t.Fatal(err)
	}
	defer guesser.Close()
	for i, want := range []int{535, 535, 421} {
		err := guesser.Auth(sasl.NewPlainClient("", "mailco", fmt.Sprintf("guess-%d", i)))
		if !errors.As(err, &se) || se.Code != want {
			t.Fatalf("guess %d: %v, want %d", i+1, err, want)
		}
	}
	if err := guesser.Noop(); err == nil {
		t.Fatal("the guessing connection is still open")
	}

	second := testenv.SelfSignedCert(t)
	testenv.WritePEM(t, second, certFile, keyFile)
	deadline = time.Now().Add(30 * time.Second)
	for {
		c, err := smtp.DialStartTLS(g.smtp, trusting(second.Leaf))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the renewed certificate is not served: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
