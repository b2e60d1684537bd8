package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
)

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
	s := New(customers, time.Second, prometheus.NewRegistry())
	d := smsgw.Delivery{Channel: "webhook", CustomerID: "acme",
		Notification: &smsgw.Notification{MessageID: "m1", Status: smsgw.StatusDelivered, Seq: 5, OccurredAt: time.Now()}}

	if err := s.Deliver(context.Background(), d); err != nil {
		t.Fatal(err)
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
	s := New(customers, time.Minute, prometheus.NewRegistry())
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
