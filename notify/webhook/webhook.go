// Package webhook posts notifications to customers' HTTP endpoints, signed
// with HMAC-SHA256 so receivers can check they came from us.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
)

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of t.body>",
// with a second v1 while the customer's secret is being rotated.
const SignatureHeader = "X-Smsgw-Signature"

// EventHeader says what a webhook is about: "status" or "inbound".
const EventHeader = "X-Smsgw-Event"

// Customers finds a customer's webhook URL and secret.
type Customers interface {
	Customer(id string) (*smsgw.Customer, bool)
}

// Sender posts JSON notifications. It is the gateway's webhook channel.
type Sender struct {
	// MaxInFlight caps the calls to one customer's endpoints in progress
	// at once in this process (0: no cap). A delivery over it fails at
	// once, to be retried later, so an endpoint that answers slowly or
	// never holds at most this many of the worker's slots, each for at
	// most the timeout, and other customers' messages keep the rest.
	MaxInFlight int

	customers Customers
	client    *http.Client
	policy    func() smsgw.WebhookPolicy
	log       *slog.Logger
	now       func() time.Time
	attempts  *prometheus.CounterVec
	inFlight  inFlight

	mu         sync.Mutex
	lastPolicy smsgw.WebhookPolicy // the policy the pooled connections were made under
}

// Options configure a Sender.
type Options struct {
	// Timeout bounds one attempt, from connecting to reading the answer.
	// Default 10 s.
	Timeout time.Duration
	// Policy returns the addresses webhooks may reach; it is asked at every
	// connection, with the address a name resolved to, so a name that
	// resolves to another address later (DNS rebinding) gains nothing.
	// Nil is the zero policy: no special-purpose address.
	Policy func() smsgw.WebhookPolicy
	// Logger gets what customers are not told: the address refused, the
	// network error. Nil discards.
	Logger *slog.Logger
}

// New returns a Sender.
func New(customers Customers, o Options, reg prometheus.Registerer) *Sender {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Policy == nil {
		o.Policy = func() smsgw.WebhookPolicy { return smsgw.WebhookPolicy{} }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sender{
		customers:  customers,
		client:     newClient(o.Timeout, o.Policy),
		policy:     o.Policy,
		lastPolicy: o.Policy(),
		log:        o.Logger,
		now:        time.Now,
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsgw_webhook_attempts_total",
			Help: "Webhook delivery attempts by result: ok, retry (will be retried), failed (refused for good), blocked (the address is not allowed) " +
				"or busy (not made: the customer had as many calls in progress as it may; retried later).",
		}, []string{"result"}),
	}
	reg.MustRegister(s.attempts)
	return s
}

// newClient is an HTTP client that connects only to addresses the policy
// allows, follows no redirect and uses no proxy from the environment.
func newClient(timeout time.Duration, policy func() smsgw.WebhookPolicy) *http.Client {
	dialer := &net.Dialer{
		Timeout:   timeout,
		KeepAlive: 30 * time.Second,
		// Control runs for every address a dial tries, after name resolution.
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !policy().AddrAllowed(ap.Addr()) {
				return &blockedError{addr: address}
			}
			return nil
		},
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// blockedError is a connection the policy refused, with the address for
// the operator's log.
type blockedError struct{ addr string }

func (e *blockedError) Error() string { return "address " + e.addr + " is not allowed" }
func (e *blockedError) Unwrap() error { return smsgw.ErrAddressNotAllowed }

// Deliver implements activities.Channel: it posts a status notification or
// an inbound message to the delivery's callback URL, or else the customer's
// webhook.
func (s *Sender) Deliver(ctx context.Context, d smsgw.Delivery) error {
	c, ok := s.customers.Customer(d.CustomerID)
	if !ok {
		return fmt.Errorf("customer %q: %w", d.CustomerID, smsgw.ErrRefused)
	}
	target := d.CallbackURL
	if target == "" {
		target = c.WebhookURL
	}
	if target == "" {
		return &Failure{Reason: "no webhook configured", Refused: true}
	}
	var payload any = d.Notification
	event := "status"
	if d.Inbound != nil {
		payload, event = d.Inbound, "inbound"
	}
	if d.Balance != nil {
		payload, event = d.Balance, "low_balance"
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	if s.MaxInFlight > 0 {
		if !s.inFlight.take(d.CustomerID, s.MaxInFlight) {
			s.attempts.WithLabelValues("busy").Inc()
			return &Failure{Reason: fmt.Sprintf("not sent yet: %d calls to your webhook were still in progress", s.MaxInFlight)}
		}
		defer s.inFlight.release(d.CustomerID)
	}
	return s.Post(ctx, target, event, body, c.WebhookSecrets()...)
}

// Failure is a failed webhook attempt as the customer may be told of it:
// "HTTP 500", "timeout", "refused: address not allowed". It names no
// address and repeats nothing the endpoint answered; the operator's log
// has the details. Refused failures wrap smsgw.ErrRefused: retrying them
// cannot help.
type Failure struct {
	Reason  string
	Refused bool
}

func (f *Failure) Error() string { return f.Reason }

// Is makes a refused failure smsgw.ErrRefused.
func (f *Failure) Is(target error) bool { return f.Refused && target == smsgw.ErrRefused }

// Post sends body to target, signed with each of secrets (none: unsigned). It
// returns nil on a 2xx answer, else a *Failure: refused for good for an
// address the policy does not allow, a redirect or a 4xx other than 408
// and 429; to be retried for network errors, 5xx, 408 and 429.
func (s *Sender) Post(ctx context.Context, target, event string, body []byte, secrets ...string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		s.attempts.WithLabelValues("failed").Inc()
		return &Failure{Reason: "refused: invalid URL", Refused: true}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "smsgw-webhook/1")
	req.Header.Set(EventHeader, event)
	if len(secrets) > 0 {
		req.Header.Set(SignatureHeader, Sign(s.now(), body, secrets...))
	}
	s.dropConnectionsOnPolicyChange()
	resp, err := s.client.Do(req)
	if err != nil {
		f := describe(err)
		result := "retry"
		if errors.Is(err, smsgw.ErrAddressNotAllowed) {
			result = "blocked"
		}
		s.attempts.WithLabelValues(result).Inc()
		s.log.WarnContext(ctx, "webhook attempt failed", "host", req.URL.Host, "reason", f.Reason, "err", networkError(err))
		return f
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		s.attempts.WithLabelValues("ok").Inc()
		return nil
	case code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout:
		s.attempts.WithLabelValues("retry").Inc()
		return &Failure{Reason: "HTTP " + strconv.Itoa(code)}
	case code >= 300 && code < 400:
		s.attempts.WithLabelValues("failed").Inc()
		return &Failure{Reason: "HTTP " + strconv.Itoa(code) + " (redirects are not followed)", Refused: true}
	default:
		s.attempts.WithLabelValues("failed").Inc()
		return &Failure{Reason: "HTTP " + strconv.Itoa(code), Refused: true}
	}
}

// dropConnectionsOnPolicyChange closes the pooled connections when the
// policy changed since they were made, so that the next request connects
// again and is checked against the policy in force.
func (s *Sender) dropConnectionsOnPolicyChange() {
	p := s.policy()
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Equal(p.Allow, s.lastPolicy.Allow) {
		return
	}
	s.lastPolicy = p
	s.client.CloseIdleConnections()
}

// describe turns a failed request into what the customer is told.
func describe(err error) *Failure {
	var dnsErr *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var badCert x509.CertificateInvalidError
	var tlsRecord tls.RecordHeaderError
	var tlsAlert tls.AlertError
	var netErr net.Error
	switch {
	case errors.Is(err, smsgw.ErrAddressNotAllowed):
		return &Failure{Reason: "refused: address not allowed", Refused: true}
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return &Failure{Reason: "host not found"}
	case errors.As(err, &dnsErr):
		return &Failure{Reason: "host name lookup failed"}
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return &Failure{Reason: "timeout"}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &Failure{Reason: "connection refused"}
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return &Failure{Reason: "host unreachable"}
	case errors.As(err, &unknownCA) || errors.As(err, &badHost) || errors.As(err, &badCert):
		return &Failure{Reason: "TLS: certificate not trusted"}
	case errors.As(err, &tlsRecord) || errors.As(err, &tlsAlert):
		return &Failure{Reason: "TLS handshake failed"}
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return &Failure{Reason: "connection closed by the receiver"}
	case errors.Is(err, context.Canceled):
		return &Failure{Reason: "cancelled"}
	}
	return &Failure{Reason: "connection failed"}
}

// networkError is err without the URL the client adds, which may carry a
// customer's token in its query.
func networkError(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}

// Sign returns the signature header value for body at time t:
// "t=<unix seconds>,v1=<hex HMAC>" with one v1 per secret, in order. Two
// secrets are given while a customer's secret is being rotated, so that a
// receiver holding either verifies.
func Sign(t time.Time, body []byte, secrets ...string) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=" + ts)
	for _, secret := range secrets {
		b.WriteString(",v1=" + mac(secret, ts, body))
	}
	return b.String()
}

// Verify checks a signature header against body, accepting timestamps within
// tolerance of now and any of the header's v1 signatures. Receivers can
// use it as it is.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, kv := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("malformed signature header %q", header)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature timestamp %s is outside the tolerance", time.Unix(sec, 0).UTC())
	}
	want := []byte(mac(secret, ts, body))
	for _, sig := range sigs {
		if hmac.Equal([]byte(sig), want) {
			return nil
		}
	}
	return fmt.Errorf("signature does not match")
}

func mac(secret, ts string, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte("."))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}
