package email_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/connectors/email"
	"github.com/smsgw/smsgw/internal/testenv"
)

// These tests speak SMTP over TCP with go-smtp's client to the ingress. The
// Submitter is a recorder standing in for the gateway's (the end-to-end
// tests use the real one) so that every answer it can give is reachable.

const ingressConfig = `
customers:
  - id: acme
    allowedSenders: [ACME]
    emailIngress: {username: acme-mail, password: "plain:s3cret"}
  - id: shop
    emailIngress: {allowedSenders: [orders@shop.example, "@branch.shop.example"], trustEnvelopeSender: true, prependSubject: true}
email:
  domains: [sms.example.com, SMS.example.net]
  maxSize: 4096
connectors:
  - {id: sim, address: "127.0.0.1:2776"}
routes:
  - {name: all, prefixes: ["+"], connectors: [sim]}
`

// recorder is a Submitter that keeps what it accepts; fail may refuse a
// recipient with an error.
type recorder struct {
	mu   sync.Mutex
	got  []smsgw.Message
	keys map[string]string // idempotency key → message ID
	fail func(to string) error
}

func (r *recorder) Submit(_ context.Context, m smsgw.Message) (smsgw.Accepted, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(m.To); err != nil {
			return smsgw.Accepted{}, err
		}
	}
	if id, ok := r.keys[m.IdempotencyKey]; ok {
		return smsgw.Accepted{ID: id, Status: smsgw.StatusAccepted, Existing: true}, nil
	}
	id := fmt.Sprintf("msg-%d", len(r.got)+1)
	r.keys[m.IdempotencyKey] = id
	r.got = append(r.got, m)
	return smsgw.Accepted{ID: id, Status: smsgw.StatusAccepted}, nil
}

func (r *recorder) setFail(f func(to string) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = f
}

func (r *recorder) messages() []smsgw.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]smsgw.Message(nil), r.got...)
}

type ingress struct {
	addr   string
	sub    *recorder
	client *tls.Config // trusts the ingress's certificate; nil without STARTTLS
}

// startIngress runs the ingress with STARTTLS, as production does.
func startIngress(t *testing.T) *ingress {
	t.Helper()
	cert := testenv.SelfSignedCert(t)
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	in := startIngressWith(t, email.Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	in.client = &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	return in
}

func startIngressWith(t *testing.T, opts email.Options) *ingress {
	t.Helper()
	cfg, err := config.Parse([]byte(ingressConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	sub := &recorder{keys: map[string]string{}}
	opts.Hostname = "sms.example.com"
	srv, err := email.New(config.Static(cfg), sub, opts, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &ingress{addr: ln.Addr().String(), sub: sub}
}

// session dials the ingress, starts TLS when it offers it and, when user
// is set, authenticates.
func (in *ingress) session(t *testing.T, user, pass string) (*smtp.Client, error) {
	t.Helper()
	dial := smtp.Dial
	if in.client != nil {
		dial = func(addr string) (*smtp.Client, error) { return smtp.DialStartTLS(addr, in.client) }
	}
	c, err := dial(in.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if user != "" {
		if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
			return c, err
		}
	}
	return c, nil
}

// send runs MAIL, RCPT and DATA and returns the final answer's code and text.
func send(t *testing.T, c *smtp.Client, from string, to []string, mail string) (int, string) {
	t.Helper()
	if err := c.Mail(from, nil); err != nil {
		return codeOf(t, err)
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return codeOf(t, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return codeOf(t, err)
	}
	if _, err := w.Write([]byte(strings.ReplaceAll(mail, "\n", "\r\n"))); err != nil {
		return codeOf(t, err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return codeOf(t, err)
	}
	return 250, resp.StatusText
}

func codeOf(t *testing.T, err error) (int, string) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("not an SMTP answer: %v", err)
	}
	return se.Code, se.Message
}

const plainMail = `From: Ops <ops@acme.example>
Subject: ignored
Message-ID: <m-1@acme.example>

Server room temperature is 31 C.
Please check.

-- 
Ops team
`

func TestEmailToSMSWithAuth(t *testing.T) {
	in := startIngress(t)
	c, err := in.session(t, "acme-mail", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	code, text := send(t, c, "ops@acme.example", []string{"+61412345678@sms.example.com", "61400000001@SMS.EXAMPLE.NET", "0061412345678@sms.example.com"}, plainMail)
	if code != 250 || !strings.Contains(text, "+61412345678 accepted as message msg-1") || !strings.Contains(text, "+61400000001 accepted as message msg-2") {
		t.Fatalf("DATA answer %d %q", code, text)
	}
	got := in.sub.messages()
	if len(got) != 2 {
		t.Fatalf("submitted %d messages, want 2 (the third recipient is the first again)", len(got))
	}
	m := got[0]
	if m.CustomerID != "acme" || m.EntryPoint != smsgw.EntryEmail || m.From != "ACME" || m.To != "+61412345678" ||
		m.Text != "Server room temperature is 31 C.\nPlease check." || m.IdempotencyKey == "" || m.IdempotencyKey == got[1].IdempotencyKey {
		t.Fatalf("submitted %+v", m)
	}

	// The client sends the same mail again: nothing new is submitted.
	code, text = send(t, c, "ops@acme.example", []string{"+61412345678@sms.example.com"}, plainMail)
	if code != 250 || !strings.Contains(text, "msg-1") || len(in.sub.messages()) != 2 {
		t.Fatalf("resend: %d %q, %d submitted", code, text, len(in.sub.messages()))
	}
}

func TestEmailToSMSByAllowedSender(t *testing.T) {
	in := startIngress(t)
	c, _ := in.session(t, "", "")
	mail := "Subject: =?utf-8?q?Order_42_=E2=9C=93?=\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nK=F6ln, 3 Pizzen\n"
	code, text := send(t, c, "Orders@Shop.Example", []string{"61412345678@sms.example.com"}, mail)
	if code != 250 {
		t.Fatalf("DATA answer %d %q", code, text)
	}
	m := in.sub.messages()[0]
	if m.CustomerID != "shop" || m.From != "shop" || m.Text != "Order 42 ✓\nKöln, 3 Pizzen" {
		t.Fatalf("submitted %+v", m)
	}
	// Any address of an allowed domain.
	if code, text := send(t, c, "anyone@branch.shop.example", []string{"61412345678@sms.example.com"}, "\nhello\n"); code != 250 {
		t.Fatalf("domain sender: %d %q", code, text)
	}
}

func TestEmailIngressRefusals(t *testing.T) {
	in := startIngress(t)

	if _, err := in.session(t, "acme-mail", "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	} else if code, _ := codeOf(t, err); code != 535 {
		t.Fatalf("wrong password: %d, want 535", code)
	}
	if _, err := in.session(t, "nobody", "s3cret"); err == nil {
		t.Fatal("unknown user accepted")
	} else if code, _ := codeOf(t, err); code != 535 {
		t.Fatalf("unknown user: %d, want 535", code)
	}

	c, _ := in.session(t, "", "")
	if code, text := send(t, c, "stranger@evil.example", []string{"61412345678@sms.example.com"}, plainMail); code != 530 {
		t.Fatalf("stranger: %d %q, want 530", code, text)
	}

	c, _ = in.session(t, "acme-mail", "s3cret")
	if code, text := send(t, c, "ops@acme.example", []string{"61412345678@elsewhere.example"}, plainMail); code != 550 || !strings.Contains(text, "domain") {
		t.Fatalf("unknown domain: %d %q, want 550", code, text)
	}
	if code, text := send(t, c, "ops@acme.example", []string{"alice@sms.example.com"}, plainMail); code != 550 || !strings.Contains(text, "phone number") {
		t.Fatalf("invalid number: %d %q, want 550", code, text)
	}
	big := "Subject: big\n\n" + strings.Repeat("0123456789\n", 500)
	if code, text := send(t, c, "ops@acme.example", []string{"61412345678@sms.example.com"}, big); code != 552 {
		t.Fatalf("too large: %d %q, want 552", code, text)
	}
	image := "Content-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n"
	if code, text := send(t, c, "ops@acme.example", []string{"61412345678@sms.example.com"}, image); code != 554 || !strings.Contains(text, "no text") {
		t.Fatalf("no text: %d %q, want 554", code, text)
	}
	if len(in.sub.messages()) != 0 {
		t.Fatalf("refused mails were submitted: %+v", in.sub.messages())
	}
}

func TestEmailIngressSubmitterErrors(t *testing.T) {
	in := startIngress(t)
	c, _ := in.session(t, "acme-mail", "s3cret")

	// The gateway cannot take one recipient's message right now: 451, and
	// the answer names the one that was accepted.
	in.sub.setFail(func(to string) error {
		if to == "+61400000002" {
			return smsgw.Unavailable("workflow engine", errors.New("connection refused"))
		}
		return nil
	})
	to := []string{"61400000001@sms.example.com", "61400000002@sms.example.com"}
	code, text := send(t, c, "ops@acme.example", to, plainMail)
	if code != 451 || !strings.Contains(text, "+61400000002 not accepted: workflow engine is unavailable") || !strings.Contains(text, "+61400000001 accepted as message msg-1") {
		t.Fatalf("partial failure: %d %q, want 451 naming both", code, text)
	}
	// The client retries later: only the missing one is new.
	in.sub.setFail(nil)
	code, text = send(t, c, "ops@acme.example", to, plainMail)
	if code != 250 || len(in.sub.messages()) != 2 {
		t.Fatalf("retry: %d %q, %d submitted; want 250 and 2", code, text, len(in.sub.messages()))
	}

	// A text the Submitter refuses (too many segments): 554 with its reason.
	in.sub.setFail(func(string) error {
		return smsgw.Errorf(smsgw.EINVALID, "text: needs 12 segments, at most 10 are allowed")
	})
	code, text = send(t, c, "ops@acme.example", to[:1], "Subject: x\nMessage-ID: <long@x>\n\n"+strings.Repeat("long ", 300))
	if code != 554 || !strings.Contains(text, "at most 10") {
		t.Fatalf("too long: %d %q, want 554 with the reason", code, text)
	}

	// A balance that cannot cover the message: 552, with the reason.
	in.sub.setFail(func(string) error { return smsgw.InsufficientBalance("EUR", 50_000, 0) })
	code, text = send(t, c, "ops@acme.example", to[:1], "Subject: x\nMessage-ID: <broke@x>\n\nhello\n")
	if code != 552 || !strings.Contains(text, "insufficient balance") {
		t.Fatalf("balance too low: %d %q, want 552 with the reason", code, text)
	}
}

func TestEmailIngressStopsWithContext(t *testing.T) {
	cfg, _ := config.Parse([]byte(ingressConfig), func(string) (string, bool) { return "", false })
	srv, err := email.New(config.Static(cfg), &recorder{keys: map[string]string{}}, email.Options{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("still listening")
	}
}

// AUTH needs TLS: it is refused before STARTTLS, and on a server without
// STARTTLS unless InsecureAuth says the network is private.
func TestAuthNeedsTLS(t *testing.T) {
	in := startIngress(t)
	clear := in.client
	in.client = nil
	if _, err := in.session(t, "acme-mail", "s3cret"); err == nil {
		t.Fatal("AUTH accepted in the clear on a server with STARTTLS")
	} else if code, _ := codeOf(t, err); code != 523 {
		t.Fatalf("AUTH in the clear: %d, want 523", code)
	}
	in.client = clear
	if _, err := in.session(t, "acme-mail", "s3cret"); err != nil {
		t.Fatalf("AUTH after STARTTLS: %v", err)
	}

	plain := startIngressWith(t, email.Options{})
	if _, err := plain.session(t, "acme-mail", "s3cret"); err == nil {
		t.Fatal("AUTH accepted in the clear on a server without STARTTLS")
	} else if code, _ := codeOf(t, err); code != 523 {
		t.Fatalf("AUTH without STARTTLS: %d, want 523", code)
	}
	// Mail from a trusted envelope sender needs no AUTH, so no TLS either.
	c, _ := plain.session(t, "", "")
	if code, text := send(t, c, "orders@shop.example", []string{"61412345678@sms.example.com"}, "\nhello\n"); code != 250 {
		t.Fatalf("trusted sender without TLS: %d %q", code, text)
	}

	private := startIngressWith(t, email.Options{InsecureAuth: true})
	if _, err := private.session(t, "acme-mail", "s3cret"); err != nil {
		t.Fatalf("AUTH in the clear with InsecureAuth: %v", err)
	}
}

// A connection may fail AUTH a few times; the last failure allowed is
// answered 421 and the connection closes, so no more guesses go over it.
func TestAuthAttemptsPerConnection(t *testing.T) {
	in := startIngress(t)
	c, _ := in.session(t, "", "")
	for i, want := range []int{535, 535, 421} {
		err := c.Auth(sasl.NewPlainClient("", "acme-mail", fmt.Sprintf("guess-%d", i)))
		if err == nil {
			t.Fatalf("guess %d accepted", i+1)
		}
		if code, text := codeOf(t, err); code != want {
			t.Fatalf("guess %d: %d %q, want %d", i+1, code, text, want)
		}
	}
	if err := c.Auth(sasl.NewPlainClient("", "acme-mail", "s3cret")); err == nil {
		t.Fatal("the connection took another AUTH after the limit")
	}
	if err := c.Noop(); err == nil {
		t.Fatal("the connection is still open after the limit")
	}
	// A new connection starts again.
	if _, err := in.session(t, "acme-mail", "s3cret"); err != nil {
		t.Fatalf("AUTH on a new connection: %v", err)
	}
}

// The SMS sender a mail asks for in X-Smsgw-From must be one of the
// account's allowedSenders; an account without them cannot choose.
func TestSenderFromHeaderIsChecked(t *testing.T) {
	in := startIngress(t)
	c, err := in.session(t, "acme-mail", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	to := []string{"61412345678@sms.example.com"}
	if code, text := send(t, c, "ops@acme.example", to, "X-Smsgw-From: BANK\nMessage-ID: <h-1@acme>\n\nyour code is 1234\n"); code != 554 || !strings.Contains(text, "BANK") {
		t.Fatalf("a sender the account may not use: %d %q, want 554 naming it", code, text)
	}
	if code, text := send(t, c, "ops@acme.example", to, "X-Smsgw-From: ACME\nMessage-ID: <h-2@acme>\n\nyour order\n"); code != 250 {
		t.Fatalf("an allowed sender: %d %q", code, text)
	}
	shop, _ := in.session(t, "", "")
	if code, text := send(t, shop, "orders@shop.example", to, "X-Smsgw-From: SHOP\n\nhello\n"); code != 554 {
		t.Fatalf("a sender chosen by an account without allowedSenders: %d %q, want 554", code, text)
	}
	got := in.sub.messages()
	if len(got) != 1 || got[0].From != "ACME" {
		t.Fatalf("submitted %+v, want the ACME message only", got)
	}
}
