// Package webhook posts notifications to customers' HTTP endpoints, signed
// with HMAC-SHA256 so receivers can check they came from us.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
)

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of t.body>".
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
	now       func() time.Time
	attempts  *prometheus.CounterVec
	inFlight  inFlight
}

// New returns a Sender with the given per-attempt timeout.
func New(customers Customers, timeout time.Duration, reg prometheus.Registerer) *Sender {
	s := &Sender{
		customers: customers,
		client:    &http.Client{Timeout: timeout},
		now:       time.Now,
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsgw_webhook_attempts_total",
			Help: "Webhook delivery attempts by result: ok, retry (will be retried), failed (refused for good), or busy (not made: the customer had as many calls in progress as it may; retried later).",
		}, []string{"result"}),
	}
	reg.MustRegister(s.attempts)
	return s
}

// Deliver implements activities.Channel: it posts a status notification or
// an inbound message to the delivery's callback URL, or else the customer's
// webhook.
func (s *Sender) Deliver(ctx context.Context, d smsgw.Delivery) error {
	c, ok := s.customers.Customer(d.CustomerID)
	if !ok {
		return fmt.Errorf("customer %q: %w", d.CustomerID, smsgw.ErrRefused)
	}
	url := d.CallbackURL
	if url == "" {
		url = c.WebhookURL
	}
	if url == "" {
		return fmt.Errorf("customer %q has no webhook: %w", d.CustomerID, smsgw.ErrRefused)
	}
	var payload any = d.Notification
	event := "status"
	if d.Inbound != nil {
		payload, event = d.Inbound, "inbound"
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	if s.MaxInFlight > 0 {
		if !s.inFlight.take(d.CustomerID, s.MaxInFlight) {
			s.attempts.WithLabelValues("busy").Inc()
			return fmt.Errorf("not sent yet: %d calls to your webhook were still in progress", s.MaxInFlight)
		}
		defer s.inFlight.release(d.CustomerID)
	}
	return s.Post(ctx, url, c.WebhookSecret, event, body)
}

// Post sends body to url, signed with secret. Network errors, 5xx and 429
// are returned as plain errors (retry later); other non-2xx answers wrap
// smsgw.ErrRefused.
func (s *Sender) Post(ctx context.Context, url, secret, event string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		s.attempts.WithLabelValues("failed").Inc()
		return fmt.Errorf("webhook %s: %w: %w", url, smsgw.ErrRefused, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "smsgw-webhook/1")
	req.Header.Set(EventHeader, event)
	if secret != "" {
		req.Header.Set(SignatureHeader, Sign(secret, s.now(), body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.attempts.WithLabelValues("retry").Inc()
		return fmt.Errorf("webhook %s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		s.attempts.WithLabelValues("ok").Inc()
		return nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		s.attempts.WithLabelValues("retry").Inc()
		return fmt.Errorf("webhook %s answered %s", url, resp.Status)
	default:
		s.attempts.WithLabelValues("failed").Inc()
		return fmt.Errorf("webhook %s answered %s: %w", url, resp.Status, smsgw.ErrRefused)
	}
}

// Sign returns the signature header value for body at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

// Verify checks a signature header against body, accepting timestamps within
// tolerance of now. Receivers can use it as it is.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, kv := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("malformed signature header %q", header)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature timestamp %s is outside the tolerance", time.Unix(sec, 0).UTC())
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, ts, body))) {
		return fmt.Errorf("signature does not match")
	}
	return nil
}

func mac(secret, ts string, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte("."))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}
