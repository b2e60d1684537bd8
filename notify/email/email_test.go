package email_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/notify/email"
)

// relay is an SMTP server on loopback that keeps what it receives and
// answers as told.
type relay struct {
	addr string
	mu   sync.Mutex
	got  []received
	// rcptErr and dataErr, when set, answer RCPT TO and the end of DATA.
	rcptErr, dataErr *smtp.SMTPError
	user, pass       string // AUTH PLAIN required when set
}

type received struct {
	from string
	to   []string
	data []byte
	tls  bool
}

// mails returns what the relay has received so far.
func (r *relay) mails() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func startRelay(t *testing.T, tlsConfig *tls.Config, configure func(*relay)) *relay {
	t.Helper()
	r := &relay{}
	if configure != nil {
		configure(r)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &relaySession{r: r, tls: isTLS, conn: c}, nil
	}))
	srv.Domain = "relay.test"
	srv.AllowInsecureAuth = true
	srv.TLSConfig = tlsConfig
	srv.ErrorLog = quietLog{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return r
}

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}
func (quietLog) Println(...any)        {}

type relaySession struct {
	r      *relay
	conn   *smtp.Conn
	tls    bool
	authed bool
	cur    received
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *relaySession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.r.user || pass != s.r.pass {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	if s.r.user != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.cur = received{from: from}
	return nil
}

func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.r.rcptErr != nil {
		return s.r.rcptErr
	}
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *relaySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.r.dataErr != nil {
		return s.r.dataErr
	}
	_, s.cur.tls = s.conn.TLSConnectionState()
	s.cur.data = b
	s.r.mu.Lock()
	s.r.got = append(s.r.got, s.cur)
	s.r.mu.Unlock()
	return nil
}

func (s *relaySession) Reset()        {}
func (s *relaySession) Logout() error { return nil }

type staticConfig struct{ cfg *config.Config }

func (s staticConfig) Config() *config.Config { return s.cfg }

func configFor(addr string, relayed func(*config.SMTPRelay)) staticConfig {
	cfg := &config.Config{
		SMTP: config.SMTPRelay{Address: addr, From: "smsgw <noreply@smsgw.test>"},
		Customers: []config.Customer{
			{ID: "acme", Notify: config.Notify{Channels: []string{"email"}, Email: []string{"Ops <ops@acme.test>", "night@acme.test"}}},
			{ID: "mute"},
		},
	}
	if relayed != nil {
		relayed(&cfg.SMTP)
	}
	return staticConfig{cfg}
}

// fixed date: t0 is only written into the mail body; the Date header and the timeouts use the sender's clock
var t0 = time.Date(2026, 11, 26, 14, 3, 58, 0, time.UTC)

func statusDelivery() smsgw.Delivery {
	return smsgw.Delivery{Channel: smsgw.ChannelEmail, CustomerID: "acme", Notification: &smsgw.Notification{
		MessageID: "0190abc", Status: smsgw.StatusUndeliverable, Stat: "UNDELIV", Seq: 7, OccurredAt: t0,
		ErrorCode: "001", Parts: 2, From: "ACME", To: "+61412345678", SubmittedAt: t0.Add(-time.Minute),
	}}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// readMail parses a received message and decodes its quoted-printable body.
func readMail(t *testing.T, raw []byte) (*mail.Message, string) {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("received mail does not parse: %v\n%s", err, raw)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	return m, strings.ReplaceAll(string(body), "\r\n", "\n")
}

func TestStatusByEmail(t *testing.T) {
	r := startRelay(t, nil, nil)
	s := email.New(configFor(r.addr, nil), email.Options{})
	if err := s.Deliver(ctxT(t), statusDelivery()); err != nil {
		t.Fatal(err)
	}
	mails := r.mails()
	if len(mails) != 1 {
		t.Fatalf("relay got %d mails", len(mails))
	}
	got := mails[0]
	if got.from != "noreply@smsgw.test" || fmt.Sprint(got.to) != "[ops@acme.test night@acme.test]" {
		t.Errorf("envelope from %q to %v", got.from, got.to)
	}
	m, body := readMail(t, got.data)
	if m.Header.Get("Subject") != "SMS to +61412345678: UNDELIVERABLE" || m.Header.Get("X-Smsgw-Event") != "status" ||
		!strings.HasPrefix(m.Header.Get("Content-Type"), "text/plain") || m.Header.Get("Message-Id") == "" {
		t.Errorf("headers %v", m.Header)
	}
	for _, want := range []string{"Message 0190abc is UNDELIVERABLE.", "UNDELIVERABLE (receipt UNDELIV)", "Error:      001", "Sequence:   7", "Occurred:   2026-11-26T14:03:58Z"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}

	// The same delivery again keeps its Message-ID.
	if err := s.Deliver(ctxT(t), statusDelivery()); err != nil {
		t.Fatal(err)
	}
	again, _ := readMail(t, r.mails()[1].data)
	if again.Header.Get("Message-Id") != m.Header.Get("Message-Id") {
		t.Error("a repeated delivery got another Message-ID")
	}
}

func TestInboundByEmail(t *testing.T) {
	r := startRelay(t, nil, nil)
	s := email.New(configFor(r.addr, nil), email.Options{})
	d := smsgw.Delivery{Channel: smsgw.ChannelEmail, CustomerID: "acme", Inbound: &smsgw.InboundMessage{
		ID: "mo-1", From: "+61412345678", To: "12345", Text: "Grüße 👋 — a long line " + strings.Repeat("x", 100), Encoding: "UCS2",
		Parts: 2, Partial: true, Keyword: "PIZZA", ReceivedAt: t0,
	}}
	if err := s.Deliver(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	m, body := readMail(t, r.mails()[0].data)
	if m.Header.Get("Subject") != "SMS from +61412345678 to 12345" || m.Header.Get("X-Smsgw-Event") != "inbound" {
		t.Errorf("headers %v", m.Header)
	}
	for _, want := range []string{d.Inbound.Text, "Keyword:    PIZZA", "some parts never arrived", "Received:   2026-11-26T14:03:58Z"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}

func TestLowBalanceByEmail(t *testing.T) {
	r := startRelay(t, nil, nil)
	s := email.New(configFor(r.addr, nil), email.Options{})
	d := smsgw.Delivery{Channel: smsgw.ChannelEmail, CustomerID: "acme", Balance: &smsgw.BalanceAlert{
		ID: "lowbalance-acme-EUR-10000000-m1-reserve", CustomerID: "acme", Currency: "EUR",
		Threshold: "10.00", Available: "9.95", ThresholdMicros: 10_000_000, AvailableMicros: 9_950_000, OccurredAt: t0,
	}}
	if err := s.Deliver(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	mails := r.mails()
	if len(mails) != 1 || fmt.Sprint(mails[0].to) != "[ops@acme.test night@acme.test]" {
		t.Fatalf("relay got %d mails", len(mails))
	}
	m, body := readMail(t, mails[0].data)
	if m.Header.Get("Subject") != "Low balance: 9.95 EUR available" || m.Header.Get("X-Smsgw-Event") != "low_balance" ||
		m.Header.Get("X-Smsgw-Id") != d.Balance.ID {
		t.Errorf("headers %v", m.Header)
	}
	for _, want := range []string{"Low balance: 9.95 EUR available, below your threshold of 10.00 EUR.", "Threshold:  10.00 EUR",
		"Available:  9.95 EUR", "Occurred:   2026-11-26T14:03:58Z", "ID:         " + d.Balance.ID} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}

func TestRelayAnswersAreClassified(t *testing.T) {
	for _, c := range []struct {
		name    string
		set     func(*relay)
		refused bool
	}{
		{"550 at RCPT", func(r *relay) { r.rcptErr = &smtp.SMTPError{Code: 550, Message: "no such user"} }, true},
		{"554 at DATA", func(r *relay) { r.dataErr = &smtp.SMTPError{Code: 554, Message: "spam"} }, true},
		{"451 at RCPT", func(r *relay) { r.rcptErr = &smtp.SMTPError{Code: 451, Message: "greylisted"} }, false},
		{"452 at DATA", func(r *relay) { r.dataErr = &smtp.SMTPError{Code: 452, Message: "disk full"} }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := startRelay(t, nil, c.set)
			err := email.New(configFor(r.addr, nil), email.Options{}).Deliver(ctxT(t), statusDelivery())
			if err == nil || errors.Is(err, smsgw.ErrRefused) != c.refused {
				t.Fatalf("err = %v, refused want %v", err, c.refused)
			}
		})
	}

	// Nobody listening: retry later.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	err := email.New(configFor(addr, nil), email.Options{Timeout: time.Second}).Deliver(ctxT(t), statusDelivery())
	if err == nil || errors.Is(err, smsgw.ErrRefused) {
		t.Fatalf("closed relay: err = %v, want a retryable error", err)
	}

	// Nothing to send to, or nothing to send through: refused.
	r := startRelay(t, nil, nil)
	mute := statusDelivery()
	mute.CustomerID = "mute"
	if err := email.New(configFor(r.addr, nil), email.Options{}).Deliver(ctxT(t), mute); !errors.Is(err, smsgw.ErrRefused) {
		t.Errorf("no recipients: err = %v, want refused", err)
	}
	if err := email.New(configFor("", nil), email.Options{}).Deliver(ctxT(t), statusDelivery()); !errors.Is(err, smsgw.ErrRefused) {
		t.Errorf("no relay: err = %v, want refused", err)
	}
}

func TestRelayWithAuthAndStartTLS(t *testing.T) {
	serverTLS, clientTLS := testCertificates(t)
	r := startRelay(t, serverTLS, func(r *relay) { r.user, r.pass = "gw", "secret" })

	good := email.New(configFor(r.addr, func(s *config.SMTPRelay) { s.StartTLS, s.Username, s.Password = true, "gw", "secret" }),
		email.Options{TLSConfig: clientTLS})
	if err := good.Deliver(ctxT(t), statusDelivery()); err != nil {
		t.Fatal(err)
	}
	if mails := r.mails(); len(mails) != 1 || !mails[0].tls {
		t.Fatalf("relay got %+v, want one mail over TLS", mails)
	}

	bad := email.New(configFor(r.addr, func(s *config.SMTPRelay) { s.StartTLS, s.Username, s.Password = true, "gw", "wrong" }),
		email.Options{TLSConfig: clientTLS})
	if err := bad.Deliver(ctxT(t), statusDelivery()); !errors.Is(err, smsgw.ErrRefused) || !strings.Contains(err.Error(), "535") {
		t.Fatalf("wrong password: err = %v, want a refusal with 535", err)
	}
}

// testCertificates returns a server TLS config with a fresh self-signed
// certificate for 127.0.0.1 and a client config that trusts it.
func testCertificates(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	cert := testenv.SelfSignedCert(t, "relay.test")
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return &tls.Config{Certificates: []tls.Certificate{cert}}, &tls.Config{RootCAs: pool, ServerName: "relay.test"}
}
