package lifecycle

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/segment"
)

const testConfig = `
customers:
  - {id: acme, apiKeys: ["plain:k"]}
  - {id: strict, apiKeys: ["plain:s"], allowedSenders: [ACME, "/^\\+614\\d{8}$/"], tps: 2}
  - {id: narrow, apiKeys: ["plain:n"], encoding: {maxSegments: 1}}
connectors: [{id: sim, address: "127.0.0.1:1"}]
routes: [{name: au, prefixes: ["+61"], connectors: [sim]}]
`

func newService(t *testing.T, temporalAddr string, health *Health) *Service {
	return newServiceWith(t, temporalAddr, func(o *Options) { o.Health = health })
}

// newServiceWith returns a Service on the test configuration, its encoder
// using each customer's encoding options, with the Temporal server at
// temporalAddr; change adjusts its options.
func newServiceWith(t *testing.T, temporalAddr string, change func(*Options)) *Service {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	tc, err := client.NewLazyClient(client.Options{HostPort: temporalAddr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	live := config.Static(cfg)
	o := Options{
		Temporal: tc, Config: live,
		Counter: activities.TextEncoder{Refs: segment.NewMemoryAllocator(0), Options: activities.CustomerOptions(live)},
		Logger:  slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(),
	}
	if change != nil {
		change(&o)
	}
	return New(o)
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestSubmitRefusesBadInputBeforeTouchingTemporal(t *testing.T) {
	s := newService(t, closedAddr(t), nil)
	ok := smsgw.Message{CustomerID: "acme", EntryPoint: smsgw.EntryREST, From: "ACME", To: "+61412345678", Text: "hi"}
	for name, c := range map[string]struct {
		mutate func(*smsgw.Message)
		code   string
	}{
		"no text":                  {func(m *smsgw.Message) { m.Text = "" }, smsgw.EINVALID},
		"bad number":               {func(m *smsgw.Message) { m.To = "12ab" }, smsgw.EINVALID},
		"no route":                 {func(m *smsgw.Message) { m.To = "+4915112345678" }, smsgw.EINVALID},
		"invalid UTF-8":            {func(m *smsgw.Message) { m.Text = "a\xffb" }, smsgw.EINVALID},
		"long sender":              {func(m *smsgw.Message) { m.From = "ACME-CORPORATION" }, smsgw.EINVALID},
		"unknown customer":         {func(m *smsgw.Message) { m.CustomerID = "ghost" }, smsgw.EUNAUTHORIZED},
		"too many segments":        {func(m *smsgw.Message) { m.Text = string(make([]rune, 1500)) + "€" }, smsgw.EINVALID},
		"loopback callback":        {func(m *smsgw.Message) { m.CallbackURL = "http://127.0.0.1:8080/admin" }, smsgw.EINVALID},
		"metadata callback":        {func(m *smsgw.Message) { m.CallbackURL = "http://169.254.169.254/latest/meta-data/" }, smsgw.EINVALID},
		"mapped callback":          {func(m *smsgw.Message) { m.CallbackURL = "http://[::ffff:10.0.0.1]/" }, smsgw.EINVALID},
		"private callback":         {func(m *smsgw.Message) { m.CallbackURL = "https://192.168.1.1/" }, smsgw.EINVALID},
		"callback with a password": {func(m *smsgw.Message) { m.CallbackURL = "https://u:p@hooks.example.com/" }, smsgw.EINVALID},
		"callback not http":        {func(m *smsgw.Message) { m.CallbackURL = "gopher://hooks.example.com/" }, smsgw.EINVALID},
		"long idempotency key":     {func(m *smsgw.Message) { m.IdempotencyKey = string(make([]byte, 256)) }, smsgw.EINVALID},
	} {
		m := ok
		c.mutate(&m)
		if _, err := s.Submit(context.Background(), m); smsgw.ErrorCode(err) != c.code {
			t.Errorf("%s: got %v, want %s", name, err, c.code)
		}
	}
}

func TestSubmitAnswersUnavailableWhenTemporalIsDown(t *testing.T) {
	s := newService(t, closedAddr(t), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := s.Submit(ctx, smsgw.Message{CustomerID: "acme", EntryPoint: smsgw.EntryREST, From: "ACME", To: "+61412345678", Text: "hi"})
	if smsgw.ErrorCode(err) != smsgw.EUNAVAILABLE {
		t.Fatalf("got %v, want EUNAVAILABLE", err)
	}
}

func TestSubmitAnswersUnavailableWhenAStoreIsDown(t *testing.T) {
	h := NewHealth(time.Second)
	h.Add("event store", func(context.Context) error { return errors.New("connection refused") })
	s := newService(t, closedAddr(t), h)
	_, err := s.Submit(context.Background(), smsgw.Message{CustomerID: "acme", EntryPoint: smsgw.EntryREST, From: "ACME", To: "+61412345678", Text: "hi"})
	if smsgw.ErrorCode(err) != smsgw.EUNAVAILABLE || smsgw.ErrorMessage(err) != "event store is unavailable" {
		t.Fatalf("got %v, want the event store unavailable", err)
	}
}

func TestIDs(t *testing.T) {
	if idempotentID("acme", "k1") != idempotentID("acme", "k1") {
		t.Fatal("the same key must name the same message")
	}
	if idempotentID("acme", "k1") == idempotentID("other", "k1") || idempotentID("acme", "k1") == idempotentID("acme", "k2") {
		t.Fatal("different customers or keys must name different messages")
	}
	now := time.Now()
	a, b := newID(now), newID(now.Add(time.Millisecond))
	if a == b || len(a) != 32 || a > b {
		t.Fatalf("ids %s, %s: want distinct, 32 hex digits, time-ordered", a, b)
	}
}

func TestAllowedSendersAndThrottle(t *testing.T) {
	s := newService(t, closedAddr(t), nil)
	m := smsgw.Message{CustomerID: "strict", EntryPoint: smsgw.EntryREST, From: "OTHER", To: "+61412345678", Text: "hi"}
	if _, err := s.Submit(context.Background(), m); smsgw.ErrorCode(err) != smsgw.EINVALID {
		t.Fatalf("sender not allowed: got %v", err)
	}
	// Allowed senders get past the check (and then fail on the absent Temporal,
	// which is fine here) until the rate is used up.
	var codes []string
	for _, from := range []string{"ACME", "+61412345678", "ACME", "ACME"} {
		m.From = from
		_, err := s.Submit(context.Background(), m)
		codes = append(codes, smsgw.ErrorCode(err))
	}
	if codes[0] != smsgw.EUNAVAILABLE || codes[1] != smsgw.EUNAVAILABLE || codes[3] != smsgw.ETHROTTLED {
		t.Fatalf("codes %v: want two past the checks, then throttled", codes)
	}
}
