// Package email is the email-to-SMS entry point: an SMTP server on which
// mail to <msisdn>@<configured domain> becomes one SMS per recipient.
//
// A customer is identified by SMTP AUTH PLAIN (emailIngress.username and
// password), which needs STARTTLS unless Options.InsecureAuth, or else, where
// its configuration trusts envelope senders, by the envelope sender being one
// of its emailIngress.allowedSenders. Every error is answered in SMTP; a mail
// is answered 250 only once every recipient's message was accepted by the
// Submitter, so nothing accepted is dropped.
package email

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxRecipients   = 50
	DefaultSubmitTimeout   = 30 * time.Second
	DefaultIdleTimeout     = 5 * time.Minute
	DefaultMaxAuthAttempts = 3
	maxReplyLines          = 20
)

// Configuration gives the configuration in force (config.Live does).
type Configuration interface {
	Config() *config.Config
}

// Options tune the server. The zero value is usable.
type Options struct {
	// Hostname is the name in the greeting. Default "localhost".
	Hostname string
	// TLS enables STARTTLS; AUTH is refused before it.
	TLS *tls.Config
	// InsecureAuth accepts AUTH PLAIN without TLS, passwords in the clear:
	// only fit for loopback, a private network or a TLS-terminating proxy.
	InsecureAuth bool
	// MaxAuthAttempts is how many failed AUTHs a connection may make; the
	// last is answered 421 and the connection closed (default 3).
	MaxAuthAttempts int
	// MaxRecipients caps the recipients of one mail (default 50).
	MaxRecipients int
	// SubmitTimeout bounds one recipient's submission (default 30 s).
	SubmitTimeout time.Duration
	// IdleTimeout closes a connection that sends nothing (default 5 min).
	IdleTimeout time.Duration
}

// Server is the SMTP ingress.
type Server struct {
	config    Configuration
	submitter smsgw.Submitter
	opts      Options
	logger    *slog.Logger
	results   *prometheus.CounterVec
	smtp      *smtp.Server
}

// New returns a Server that submits through submitter and registers the
// smsgw_email_submissions_total counter on reg.
func New(cfg Configuration, submitter smsgw.Submitter, opts Options, logger *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if opts.Hostname == "" {
		opts.Hostname = "localhost"
	}
	if opts.MaxRecipients <= 0 {
		opts.MaxRecipients = DefaultMaxRecipients
	}
	if opts.SubmitTimeout <= 0 {
		opts.SubmitTimeout = DefaultSubmitTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxAuthAttempts <= 0 {
		opts.MaxAuthAttempts = DefaultMaxAuthAttempts
	}
	s := &Server{
		config: cfg, submitter: submitter, opts: opts, logger: logger,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsgw_email_submissions_total",
			Help: "Email-to-SMS results: per recipient accepted, duplicate, invalid, forbidden, unavailable, throttled or error; " +
				"per command auth_failed, auth_limit (a connection closed after too many failed AUTHs), sender_refused, " +
				"header_sender_refused, recipient_refused, too_large or unreadable.",
		}, []string{"result"}),
	}
	if err := reg.Register(s.results); err != nil {
		return nil, fmt.Errorf("email: register metrics: %w", err)
	}
	srv := smtp.NewServer(s)
	srv.Domain = opts.Hostname
	srv.TLSConfig = opts.TLS
	srv.AllowInsecureAuth = opts.InsecureAuth
	srv.MaxRecipients = opts.MaxRecipients
	srv.MaxMessageBytes = int64(cfg.Config().EmailMaxSize())
	srv.ReadTimeout, srv.WriteTimeout = opts.IdleTimeout, time.Minute
	srv.ErrorLog = slogPrinter{logger}
	s.smtp = srv
	return s, nil
}

// Serve answers SMTP on ln until ctx is done, then stops taking
// connections and waits up to 30 s for the mails in progress.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	switch {
	case s.opts.InsecureAuth:
		s.logger.Warn("SMTP ingress takes AUTH without TLS: passwords may cross the network in the clear", "addr", ln.Addr().String())
	case s.opts.TLS == nil:
		s.logger.Warn("SMTP ingress without STARTTLS: AUTH is refused, only customers with trustEnvelopeSender can send", "addr", ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- s.smtp.Serve(trackingListener{ln}) }()
	select {
	case err := <-errc:
		return fmt.Errorf("email: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- s.smtp.Shutdown(sctx) }()
	ln.Close() // also when Serve had not registered it yet
	<-errc
	if err := <-stopped; err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		s.smtp.Close()
	}
	return nil
}

// NewSession implements smtp.Backend. It is called again after STARTTLS,
// on the same connection.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	conn := c.Conn()
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	tracked, ok := conn.(*trackedConn)
	if !ok {
		tracked = &trackedConn{Conn: conn} // served without Serve: counted per session
	}
	return &session{srv: s, remote: conn.RemoteAddr().String(), conn: tracked}, nil
}

// trackingListener gives each connection the state that outlives its SMTP
// sessions (a STARTTLS starts a new one).
type trackingListener struct{ net.Listener }

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &trackedConn{Conn: c}, nil
}

// trackedConn counts a connection's failed AUTHs, and closes it once the
// answer to the last one allowed is written.
type trackedConn struct {
	net.Conn
	authFailures    atomic.Int32
	closeAfterWrite atomic.Bool
}

func (c *trackedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if c.closeAfterWrite.Load() {
		_ = c.Conn.Close()
	}
	return n, err
}

// SMTP answers of the ingress.
var (
	errSenderNotAllowed = func(from string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0},
			Message: fmt.Sprintf("Authentication required: <%s> is not an allowed sender; use AUTH PLAIN", from)}
	}
	errUnknownDomain = func(domain string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 2},
			Message: fmt.Sprintf("Unknown recipient domain %q: send to <number>@<an SMS domain of this gateway>", domain)}
	}
	errInvalidNumber = func(local string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 3},
			Message: fmt.Sprintf("%q is not a phone number in international form (such as 61412345678)", local)}
	}
	errNoSender  = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "MAIL FROM first"}
	errAuthLimit = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
		Message: "Too many failed authentication attempts; closing the connection"}
	errHeaderSender = func(from string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
			Message: fmt.Sprintf("X-Smsgw-From %q is not one of the account's allowed senders (allowedSenders); leave the header out to send from its default", from)}
	}
)

// session is one SMTP connection's state.
type session struct {
	srv      *Server
	remote   string
	conn     *trackedConn
	authed   *config.Customer // by AUTH PLAIN
	customer *config.Customer // for this mail: authed, or by sender
	from     string
	rcpts    []string // E.164, in the order given, each once
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, password string) error {
		cu, ok := s.srv.config.Config().EmailCustomerByLogin(username, password)
		if ok {
			s.authed = &cu
			return nil
		}
		s.srv.results.WithLabelValues("auth_failed").Inc()
		failures := int(s.conn.authFailures.Add(1))
		s.srv.logger.Warn("SMTP AUTH failed", "remote", s.remote, "attempt", failures)
		if failures >= s.srv.opts.MaxAuthAttempts {
			s.srv.results.WithLabelValues("auth_limit").Inc()
			s.conn.closeAfterWrite.Store(true)
			return errAuthLimit
		}
		return smtp.ErrAuthFailed
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.Reset()
	if s.authed != nil {
		s.customer, s.from = s.authed, from
		return nil
	}
	cu, ok := s.srv.config.Config().EmailCustomerBySender(from)
	if !ok {
		s.srv.results.WithLabelValues("sender_refused").Inc()
		return errSenderNotAllowed(from)
	}
	s.customer, s.from = &cu, from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.customer == nil {
		return errNoSender
	}
	at := strings.LastIndexByte(to, '@')
	if at < 0 || !s.srv.config.Config().EmailDomain(to[at+1:]) {
		s.srv.results.WithLabelValues("recipient_refused").Inc()
		return errUnknownDomain(to[at+1:])
	}
	msisdn, err := smsgw.NormalizeMSISDN(to[:at])
	if err != nil {
		s.srv.results.WithLabelValues("recipient_refused").Inc()
		return errInvalidNumber(to[:at])
	}
	for _, r := range s.rcpts {
		if r == msisdn {
			return nil
		}
	}
	s.rcpts = append(s.rcpts, msisdn)
	return nil
}

// Data reads the mail and submits one SMS per recipient. It answers 250
// only when every recipient's message was accepted; otherwise it answers
// with the failures and names the recipients that were accepted, whose
// messages a retry of the same mail does not send again (the idempotency
// key is the Message-ID and the recipient).
func (s *session) Data(r io.Reader) error {
	if s.customer == nil || len(s.rcpts) == 0 {
		return errNoSender
	}
	limit := s.srv.config.Config().EmailMaxSize()
	raw, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	var tooLarge *smtp.SMTPError
	if errors.As(err, &tooLarge) || len(raw) > limit {
		s.srv.results.WithLabelValues("too_large").Inc()
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
			Message: fmt.Sprintf("Message too large: at most %d bytes", limit)}
	}
	if err != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "The mail could not be read; try again"}
	}
	mail, err := parseMail(raw)
	if err != nil {
		s.srv.results.WithLabelValues("unreadable").Inc()
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: oneLine(err.Error())}
	}
	text := mail.Text
	if s.customer.EmailIngress.PrependSubject && mail.Subject != "" {
		text = strings.TrimSpace(mail.Subject + "\n" + text)
	}
	if text == "" {
		s.srv.results.WithLabelValues("unreadable").Inc()
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "The mail has no text to send"}
	}
	// A sender chosen by a header is one the account may use: one of its
	// allowedSenders. An account without that list sends from its default.
	sender := mail.SMSFrom
	if sender != "" && (len(s.customer.AllowedSenders) == 0 || !s.customer.SenderAllowed(sender)) {
		s.srv.results.WithLabelValues("header_sender_refused").Inc()
		return errHeaderSender(sender)
	}
	if sender == "" {
		sender = defaultSender(*s.customer)
	}
	// Without a Message-ID, the content stands in for it, so a client that
	// sends the same mail again still does not send the SMS twice.
	mailID := mail.MessageID
	if mailID == "" {
		sum := sha256.Sum256(append([]byte(s.from+"\x00"), raw...))
		mailID = "sha256:" + hex.EncodeToString(sum[:])
	}
	return s.submitAll(sender, text, mailID)
}

// submitAll submits one message per recipient, all of them even when some
// fail, and turns the outcome into the SMTP answer.
func (s *session) submitAll(sender, text, mailID string) error {
	type outcome struct {
		to  string
		id  string
		err error
	}
	var accepted, failed []outcome
	for _, to := range s.rcpts {
		ctx, cancel := context.WithTimeout(context.Background(), s.srv.opts.SubmitTimeout)
		acc, err := s.srv.submitter.Submit(ctx, smsgw.Message{
			CustomerID:     s.customer.ID,
			EntryPoint:     smsgw.EntryEmail,
			From:           sender,
			To:             to,
			Text:           text,
			IdempotencyKey: idempotencyKey(mailID, to),
		})
		cancel()
		s.srv.results.WithLabelValues(submitResult(acc, err)).Inc()
		if err != nil {
			failed = append(failed, outcome{to: to, err: err})
			continue
		}
		accepted = append(accepted, outcome{to: to, id: acc.ID})
	}
	s.srv.logger.Info("email to SMS", "customer", s.customer.ID, "recipients", len(s.rcpts), "accepted", len(accepted), "failed", len(failed))

	var lines []string
	for _, f := range failed {
		if reason := smsgw.ErrorReason(f.err); reason != "" {
			lines = append(lines, fmt.Sprintf("%s not accepted (%s): %s", f.to, reason, oneLine(smsgw.ErrorMessage(f.err))))
			continue
		}
		lines = append(lines, fmt.Sprintf("%s not accepted: %s", f.to, oneLine(smsgw.ErrorMessage(f.err))))
	}
	for _, a := range accepted {
		lines = append(lines, fmt.Sprintf("%s accepted as message %s", a.to, a.id))
	}
	if len(lines) > maxReplyLines {
		lines = append(lines[:maxReplyLines-1], fmt.Sprintf("and %d more", len(lines)-maxReplyLines+1))
	}
	if len(failed) == 0 {
		// A 250 reply with the message IDs; go-smtp sends any SMTPError's
		// code, so this is how Data answers success with its own text.
		return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: strings.Join(lines, "\n")}
	}
	// Retrying helps when a dependency was down: the accepted recipients
	// are not sent twice. Otherwise the refusal is final: 550 (5.7.1, not
	// authorised) when a policy refused a recipient, with its reason in the
	// text, else 554.
	policy := false
	for _, f := range failed {
		if smsgw.ErrorReason(f.err) != "" {
			policy = true
			continue
		}
		switch smsgw.ErrorCode(f.err) {
		case smsgw.EUNAVAILABLE, smsgw.ETHROTTLED, smsgw.EINTERNAL, smsgw.EUNKNOWN:
			// EUNKNOWN too: each recipient's submission carries an
			// idempotency key made from the mail, so the retry finds it.
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: strings.Join(lines, "\n")}
		}
	}
	// A balance that cannot cover a recipient is answered 552, so the
	// sender knows a top-up, not a new mail, is what helps.
	for _, f := range failed {
		if smsgw.ErrorCode(f.err) == smsgw.EPAYMENT {
			return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: strings.Join(lines, "\n")}
		}
	}
	if policy {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: strings.Join(lines, "\n")}
	}
	return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: strings.Join(lines, "\n")}
}

func (s *session) Reset() {
	s.customer, s.from, s.rcpts = nil, "", nil
}

func (s *session) Logout() error { return nil }

// idempotencyKey makes a recipient's submission from a mail repeatable.
func idempotencyKey(mailID, to string) string {
	sum := sha256.Sum256([]byte(mailID + "\x00" + to))
	return "email-" + hex.EncodeToString(sum[:16])
}

func submitResult(acc smsgw.Accepted, err error) string {
	switch smsgw.ErrorCode(err) {
	case "":
		if acc.Existing {
			return "duplicate"
		}
		return "accepted"
	case smsgw.EINVALID, smsgw.EUNAUTHORIZED:
		return "invalid"
	case smsgw.EFORBIDDEN:
		return "forbidden"
	case smsgw.EUNAVAILABLE:
		return "unavailable"
	case smsgw.ETHROTTLED:
		return "throttled"
	case smsgw.EPAYMENT:
		return "payment_required"
	}
	return "error"
}

// defaultSender is the SMS sender of a customer's mail without an
// X-Smsgw-From header: its first allowed sender written out (not a pattern),
// else its ID cut to a valid alphanumeric sender.
func defaultSender(cu config.Customer) string {
	for _, a := range cu.AllowedSenders {
		if !strings.HasPrefix(a, "/") {
			return a
		}
	}
	var b strings.Builder
	for _, r := range cu.ID {
		if (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') && b.Len() < 11 {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "SMS"
	}
	return b.String()
}

// oneLine keeps an SMTP reply on one line of reasonable length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}

// slogPrinter sends go-smtp's own log lines to the gateway's logger.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) { p.l.Warn("smtp: " + fmt.Sprintf(format, v...)) }
func (p slogPrinter) Println(v ...any)               { p.l.Warn("smtp: " + fmt.Sprint(v...)) }
