package webhook

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/smsgw/smsgw"
)

// loopbackAllowed lets the tests' receivers on 127.0.0.1 be reached.
var loopbackAllowed = Options{Timeout: time.Second, Policy: func() smsgw.WebhookPolicy {
	return smsgw.WebhookPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
}}

func TestNotifySignsAndClassifies(t *testing.T) {
	status := http.StatusOK
	var gotSig string
	var gotBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotSig = r.Header.Get(SignatureHeader)
		gotBody, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	customers := customerMap{"acme": {ID: "acme", WebhookURL: srv.URL, WebhookSecret: "secret"}}
	s := New(customers, loopbackAllowed, prometheus.NewRegistry())
	d := smsgw.Delivery{Channel: "webhook", CustomerID: "acme",
		Notification: &smsgw.Notification{MessageID: "m1", Status: smsgw.StatusDelivered, Seq: 5, OccurredAt: time.Now()}}

	if err := s.Deliver(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if strings.Count(gotSig, "v1=") != 1 {
		t.Errorf("signature %q: want one v1", gotSig)
	}
	if err := Verify("secret", gotSig, gotBody, time.Now(), time.Minute); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if err := Verify("other", gotSig, gotBody, time.Now(), time.Minute); err == nil {
		t.Fatal("wrong secret verified")
	}
	if err := Verify("secret", gotSig, append(gotBody, ' '), time.Now(), time.Minute); err == nil {
		t.Fatal("changed body verified")
	}

	for _, c := range []struct {
		code    int
		refused bool
	}{{500, false}, {503, false}, {429, false}, {400, true}, {404, true}} {
		status = c.code
		err := s.Deliver(context.Background(), d)
		if err == nil || errors.Is(err, smsgw.ErrRefused) != c.refused {
			t.Errorf("HTTP %d: err = %v, refused want %v", c.code, err, c.refused)
		}
	}
	srv.Close()
	if err := s.Deliver(context.Background(), d); err == nil || errors.Is(err, smsgw.ErrRefused) {
		t.Errorf("closed server: err = %v, want a retryable error", err)
	}
}

// While a secret is rotated, every webhook carries a signature under the
// new secret and one under the previous, so a receiver holding either
// accepts it, and one holding neither does not.
func TestRotatingSecretsSignWithBoth(t *testing.T) {
	var sig string
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sig = r.Header.Get(SignatureHeader)
		body, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	customers := customerMap{"acme": {ID: "acme", WebhookURL: srv.URL, WebhookSecret: "new-secret", WebhookPreviousSecret: "old-secret"}}
	s := New(customers, loopbackAllowed, prometheus.NewRegistry())
	d := smsgw.Delivery{Channel: "webhook", CustomerID: "acme", Notification: &smsgw.Notification{MessageID: "m1", Status: smsgw.StatusDelivered, Seq: 1}}
	if err := s.Deliver(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sig, "t=") || strings.Count(sig, ",v1=") != 2 {
		t.Fatalf("signature header %q: want t= and two v1=", sig)
	}
	for _, secret := range []string{"new-secret", "old-secret"} {
		if err := Verify(secret, sig, body, time.Now(), time.Minute); err != nil {
			t.Errorf("a receiver with %s: %v", secret, err)
		}
	}
	if err := Verify("another", sig, body, time.Now(), time.Minute); err == nil {
		t.Error("a receiver with another secret verified")
	}
}

// A webhook reaches no address the policy does not allow: not a literal
// one, not one a name resolves to, not through a redirect, not one in an
// IPv4-mapped IPv6 form. What the customer is told names no address.
func TestWebhookReachesOnlyAllowedAddresses(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	reg := prometheus.NewRegistry()
	s := New(customerMap{}, Options{Timeout: time.Second}, reg) // the default: nothing special-purpose
	for _, target := range []string{
		srv.URL,                          // 127.0.0.1
		"http://localhost:" + port + "/", // a name that resolves to loopback
		"http://[::ffff:127.0.0.1]:" + port + "/", // IPv4-mapped
		"http://[::ffff:7f00:1]:" + port + "/",
	} {
		err := s.Post(context.Background(), target, "status", []byte(`{}`))
		var f *Failure
		if !errors.As(err, &f) || f.Reason != "refused: address not allowed" || !errors.Is(err, smsgw.ErrRefused) {
			t.Errorf("%s: %v, want refused: address not allowed", target, err)
		}
		if strings.Contains(err.Error(), "127.0.0.1") || strings.Contains(err.Error(), port) {
			t.Errorf("%s: the error %q names the address", target, err)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("the receiver on loopback got %d requests", hits.Load())
	}
	if got := testutil.ToFloat64(s.attempts.WithLabelValues("blocked")); got != 4 {
		t.Errorf("blocked attempts %v, want 4", got)
	}

	// A redirect is not followed, even to an allowed address.
	var redirected atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { redirected.Add(1) }))
	defer target.Close()
	redirector := httptest.NewServer(http.RedirectHandler(target.URL+"/elsewhere", http.StatusTemporaryRedirect))
	defer redirector.Close()
	s = New(customerMap{}, loopbackAllowed, prometheus.NewRegistry())
	err := s.Post(context.Background(), redirector.URL, "status", []byte(`{}`))
	if err == nil || !errors.Is(err, smsgw.ErrRefused) || !strings.HasPrefix(err.Error(), "HTTP 307") {
		t.Errorf("redirect: %v, want a refused HTTP 307", err)
	}
	if redirected.Load() != 0 {
		t.Error("the redirect was followed")
	}
}

// The policy in force is the one a request is checked against, even when
// a connection made under an earlier policy is still open.
func TestPolicyChangeClosesPooledConnections(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	var allowLoopback atomic.Bool
	allowLoopback.Store(true)
	s := New(customerMap{}, Options{Timeout: time.Second, Policy: func() smsgw.WebhookPolicy {
		if allowLoopback.Load() {
			return loopbackAllowed.Policy()
		}
		return smsgw.WebhookPolicy{}
	}}, prometheus.NewRegistry())
	if err := s.Post(context.Background(), srv.URL, "status", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	allowLoopback.Store(false)
	if err := s.Post(context.Background(), srv.URL, "status", []byte(`{}`)); err == nil || err.Error() != "refused: address not allowed" {
		t.Errorf("after the policy changed: %v, want refused: address not allowed", err)
	}
	if hits.Load() != 1 {
		t.Errorf("the receiver got %d requests, want 1", hits.Load())
	}
}

// The customer is told what happened in its terms, never an address or
// what the endpoint answered.
func TestFailuresAreToldInTheCustomersTerms(t *testing.T) {
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-done
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "upstream 10.1.2.3:5432 said: password authentication failed")
	}))
	defer srv.Close()
	defer close(done)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	s := New(customerMap{}, Options{Timeout: 300 * time.Millisecond, Policy: loopbackAllowed.Policy}, prometheus.NewRegistry())
	for _, c := range []struct {
		target, want string
		refused      bool
	}{
		{srv.URL + "/fail", "HTTP 500", false},
		{srv.URL + "/slow", "timeout", false},
		{closedURL, "connection refused", false},
		{"http://no-such-host.invalid/", "host not found", false},
	} {
		err := s.Post(context.Background(), c.target, "status", []byte(`{}`))
		if err == nil || err.Error() != c.want || errors.Is(err, smsgw.ErrRefused) != c.refused {
			t.Errorf("%s: %v, want %q", c.target, err, c.want)
		}
	}
}

type customerMap map[string]*smsgw.Customer

func (m customerMap) Customer(id string) (*smsgw.Customer, bool) {
	c, ok := m[id]
	return c, ok
}

// An endpoint that does not answer holds at most MaxInFlight calls of its
// customer's; the next is refused at once, to be retried (not for good),
// and other customers' calls go through meanwhile.
func TestMaxInFlightPerCustomer(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	defer close(release)
	customers := customerMap{
		"slow": {ID: "slow", WebhookURL: srv.URL + "/slow"},
		"fast": {ID: "fast", WebhookURL: srv.URL + "/fast"},
	}
	s := New(customers, Options{Timeout: time.Minute, Policy: loopbackAllowed.Policy}, prometheus.NewRegistry())
	s.MaxInFlight = 2
	note := func(customer string) smsgw.Delivery {
		return smsgw.Delivery{Channel: "webhook", CustomerID: customer, Notification: &smsgw.Notification{MessageID: "m", Status: smsgw.StatusDelivered}}
	}
	held := make(chan error, 2)
	for range 2 {
		go func() { held <- s.Deliver(context.Background(), note("slow")) }()
		<-entered
	}
	began := time.Now()
	err := s.Deliver(context.Background(), note("slow"))
	if err == nil || errors.Is(err, smsgw.ErrRefused) || time.Since(began) > time.Second {
		t.Fatalf("a third call to the stuck endpoint: %v after %v, want a retryable error at once", err, time.Since(began))
	}
	if err := s.Deliver(context.Background(), note("fast")); err != nil {
		t.Fatalf("another customer's call: %v", err)
	}
	release <- struct{}{}
	release <- struct{}{}
	for range 2 {
		if err := <-held; err != nil {
			t.Fatalf("a held call: %v", err)
		}
	}
	go func() { <-entered; release <- struct{}{} }()
	if err := s.Deliver(context.Background(), note("slow")); err != nil {
		t.Fatalf("a call once the endpoint answered: %v", err)
	}
}
