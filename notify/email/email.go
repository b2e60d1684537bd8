// Package email sends notifications by email: delivery statuses, inbound
// messages and low-balance alerts, as plain text, through the SMTP relay in the
// configuration (smtp:), to the customer's notify.email recipients.
package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
)

// Configuration gives the configuration in force (config.Live does).
type Configuration interface {
	Config() *config.Config
}

// Options tune a Sender. The zero value is usable.
type Options struct {
	// Timeout bounds one delivery: connect, greet, send, quit. Default 30 s.
	Timeout time.Duration
	// TLSConfig is used for STARTTLS when smtp.startTls is set; by default
	// the relay's certificate is checked against the system roots.
	TLSConfig *tls.Config
	// Hostname is the name given in EHLO. Default "localhost".
	Hostname string
}

// Sender is the gateway's email channel (smsgw.ChannelEmail).
type Sender struct {
	config Configuration
	opts   Options
	now    func() time.Time
}

// New returns a Sender that reads the relay and recipients from cfg at each delivery.
func New(cfg Configuration, opts Options) *Sender {
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Hostname == "" {
		opts.Hostname = "localhost"
	}
	return &Sender{config: cfg, opts: opts, now: time.Now}
}

// Deliver implements activities.Channel. A 5xx answer from the relay, no
// relay or no recipients wrap smsgw.ErrRefused; 4xx answers and
// network errors are returned as they are, to be retried.
func (s *Sender) Deliver(ctx context.Context, d smsgw.Delivery) error {
	cfg := s.config.Config()
	relay := cfg.SMTP
	if relay.Address == "" {
		return fmt.Errorf("no smtp relay is configured: %w", smsgw.ErrRefused)
	}
	cu, _ := cfg.Customer(d.CustomerID)
	recipients := cu.Notify.Email
	if len(recipients) == 0 {
		return fmt.Errorf("customer %q has no notify.email recipients: %w", d.CustomerID, smsgw.ErrRefused)
	}
	msg, err := compose(relay.From, recipients, d, s.now())
	if err != nil {
		return fmt.Errorf("compose email: %w: %w", smsgw.ErrRefused, err)
	}
	if err := s.send(ctx, relay, envelope(recipients), msg); err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code >= 500 {
			return fmt.Errorf("smtp relay %s: %w: %w", relay.Address, smsgw.ErrRefused, err)
		}
		return fmt.Errorf("smtp relay %s: %w", relay.Address, err)
	}
	return nil
}

// send runs one SMTP transaction with the relay, bounded by ctx and the timeout.
func (s *Sender) send(ctx context.Context, relay config.SMTPRelay, to []string, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", relay.Address)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() }) // the client has no context of its own
	defer stop()

	var c *smtp.Client
	if relay.StartTLS {
		tc := s.opts.TLSConfig
		if tc == nil {
			host, _, _ := net.SplitHostPort(relay.Address)
			tc = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		if c, err = smtp.NewClientStartTLS(conn, tc); err != nil {
			conn.Close()
			return fmt.Errorf("starttls: %w", err)
		}
	} else {
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	left := time.Until(deadline(ctx))
	c.CommandTimeout, c.SubmissionTimeout = left, left
	if err := c.Hello(s.opts.Hostname); err != nil {
		return err
	}
	if relay.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", relay.Username, relay.Password)); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if err := c.SendMail(envelopeAddress(relay.From), to, bytes.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// compose writes the email: plain text, UTF-8, quoted-printable.
func compose(from string, to []string, d smsgw.Delivery, now time.Time) ([]byte, error) {
	subject, body, event, ref := content(d)
	if subject == "" {
		return nil, errors.New("the delivery has neither a notification, an inbound message nor a balance alert")
	}
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", from)
	header("To", strings.Join(to, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", subject))
	header("Date", now.UTC().Format(time.RFC1123Z))
	// The same delivery always has the same Message-ID, so a retry after a
	// lost answer can be recognised by the receiving side.
	sum := sha256.Sum256([]byte(d.Channel + "\x00" + ref + "\x00" + subject))
	header("Message-ID", "<"+hex.EncodeToString(sum[:12])+"@smsgw>")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("X-Smsgw-Event", event)
	header("X-Smsgw-Id", ref)
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n"))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// content is the subject and text of a delivery, the X-Smsgw-Event value
// ("status", "inbound" or "low_balance", as for webhooks) and the ID it is
// about.
func content(d smsgw.Delivery) (subject, body, event, ref string) {
	var b strings.Builder
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-11s %s\n", k+":", v)
		}
	}
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	switch {
	case d.Inbound != nil:
		m := d.Inbound
		subject = fmt.Sprintf("SMS from %s to %s", m.From, m.To)
		line("From", m.From)
		line("To", m.To)
		line("Received", stamp(m.ReceivedAt))
		parts := fmt.Sprintf("%d", m.Parts)
		if m.Partial {
			parts += " (some parts never arrived)"
		}
		line("Parts", parts)
		line("Encoding", m.Encoding)
		line("Keyword", m.Keyword)
		line("ID", m.ID)
		b.WriteString("\n" + m.Text + "\n")
		return subject, b.String(), "inbound", m.ID
	case d.Notification != nil:
		n := d.Notification
		subject = fmt.Sprintf("SMS to %s: %s", n.To, n.Status)
		if n.To == "" {
			subject = fmt.Sprintf("SMS %s: %s", n.MessageID, n.Status)
		}
		status := string(n.Status)
		if n.Stat != "" {
			status += " (receipt " + n.Stat + ")"
		}
		fmt.Fprintf(&b, "Message %s is %s.\n\n", n.MessageID, n.Status)
		line("Status", status)
		line("From", n.From)
		line("To", n.To)
		if n.ErrorCode != "" || n.ErrorText != "" {
			line("Error", strings.TrimSpace(n.ErrorCode+" "+n.ErrorText))
		}
		if n.Parts > 0 {
			line("Parts", fmt.Sprintf("%d", n.Parts))
		}
		line("Submitted", stamp(n.SubmittedAt))
		line("Occurred", stamp(n.OccurredAt))
		line("Sequence", fmt.Sprintf("%d", n.Seq))
		return subject, b.String(), "status", n.MessageID
	case d.Balance != nil:
		a := d.Balance
		subject = fmt.Sprintf("Low balance: %s %s available", a.Available, a.Currency)
		b.WriteString(a.Text() + "\n\n")
		line("Customer", a.CustomerID)
		line("Available", a.Available+" "+a.Currency)
		line("Threshold", a.Threshold+" "+a.Currency)
		line("Occurred", stamp(a.OccurredAt))
		line("ID", a.ID)
		return subject, b.String(), "low_balance", a.ID
	}
	return "", "", "", ""
}

// envelope returns the bare addresses of the recipients for RCPT TO.
func envelope(recipients []string) []string {
	out := make([]string, 0, len(recipients))
	for _, r := range recipients {
		out = append(out, envelopeAddress(r))
	}
	return out
}

func envelopeAddress(s string) string {
	if a, err := mail.ParseAddress(s); err == nil {
		return a.Address
	}
	return s
}
