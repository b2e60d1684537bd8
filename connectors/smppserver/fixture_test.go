package smppserver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/connectors/smppserver"
	"github.com/smsgw/smsgw/connectors/smppserver/esme"
	"github.com/smsgw/smsgw/connectors/smppwire"
	"github.com/smsgw/smsgw/internal/testenv"
)

// testConfig has customers for every bind case.
func testConfig(t testing.TB) *config.Live {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("hashed-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	raw := fmt.Sprintf(`
customers:
  - id: acme
    smpp: {systemId: acme, password: "plain:secret", maxBinds: 3}
  - id: hashed
    smpp: {systemId: hashed, password: "bcrypt:%s"}
  - id: fenced
    smpp: {systemId: fenced, password: "plain:pw", allowedIps: ["10.0.0.0/8", "192.0.2.1"]}
  - id: local
    smpp: {systemId: local, password: "plain:pw", allowedIps: ["127.0.0.0/8"]}
  - id: slow
    tps: 2
    smpp: {systemId: slow, password: "plain:pw"}
  - id: other
    smpp: {systemId: other, password: "plain:pw"}
    billing: {lowBalanceFrom: FUNDS}
  - id: retrier
    smpp: {systemId: retrier, password: "plain:pw"}
    billing: {smppStatus: 0x58}
`, hash)
	cfg, err := config.Parse([]byte(raw), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return config.Static(cfg)
}

// submitter is the gateway's Submitter as far as the server can tell: it
// validates like the real one, and records what it accepted.
type submitter struct {
	mu       sync.Mutex
	got      []smsgw.Message
	n        atomic.Int64
	hold     chan struct{}              // when set, Submit waits for it to close (or its ctx)
	entered  chan struct{}              // when set, told of each Submit call as it starts
	failWith func(smsgw.Message) error  // when set, its error is returned
	answer   func(smsgw.Message) string // when set, gives the message ID
	noop     bool                       // accept without recording, for benchmarks
}

func (s *submitter) Submit(ctx context.Context, m smsgw.Message) (smsgw.Accepted, error) {
	if s.noop {
		return smsgw.Accepted{ID: "bench", Status: smsgw.StatusAccepted}, nil
	}
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.hold != nil {
		select {
		case <-s.hold:
		case <-ctx.Done():
			return smsgw.Accepted{}, smsgw.Unavailable("workflow engine", ctx.Err())
		}
	}
	if err := m.Validate(); err != nil {
		return smsgw.Accepted{}, err
	}
	if s.failWith != nil {
		if err := s.failWith(m); err != nil {
			return smsgw.Accepted{}, err
		}
	}
	m.ID = fmt.Sprintf("msg-%d", s.n.Add(1))
	if s.answer != nil {
		m.ID = s.answer(m)
	}
	s.mu.Lock()
	s.got = append(s.got, m)
	s.mu.Unlock()
	return smsgw.Accepted{ID: m.ID, Status: smsgw.StatusAccepted}, nil
}

func (s *submitter) messages() []smsgw.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smsgw.Message(nil), s.got...)
}

// fixture is a server on a loopback port.
type fixture struct {
	srv    *smppserver.Server
	addr   string
	sub    *submitter
	reg    *prometheus.Registry
	cancel context.CancelFunc
	served chan error
}

func logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// start runs a server on a loopback port until the test ends.
func start(t testing.TB, cfg smppserver.Config, deps smppserver.Deps) *fixture {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startOn(t, ln, cfg, deps)
}

// startOn runs a server on ln until the test ends; deps.Logger, when not
// set, logs to stderr when the tests are verbose.
func startOn(t testing.TB, ln net.Listener, cfg smppserver.Config, deps smppserver.Deps) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), served: make(chan error, 1)}
	if deps.Config == nil {
		deps.Config = testConfig(t)
	}
	if deps.Submitter == nil {
		f.sub = &submitter{}
		deps.Submitter = f.sub
	} else if s, ok := deps.Submitter.(*submitter); ok {
		f.sub = s
	}
	if deps.Logger == nil {
		deps.Logger = logger(t)
	}
	deps.Registerer = f.reg
	srv, err := smppserver.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	f.srv, f.addr = srv, ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() { f.served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-f.served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
	})
	return f
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects a client that is closed when the test ends.
func (f *fixture) dial(t testing.TB) *esme.Client {
	t.Helper()
	c, err := esme.Dial(ctxFor(t), f.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// bound connects and binds.
func (f *fixture) bound(t testing.TB, cmd uint32, systemID, password string) *esme.Client {
	t.Helper()
	c := f.dial(t)
	resp, err := c.Bind(ctxFor(t), cmd, systemID, password)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 0 {
		t.Fatalf("bind as %s: status 0x%08X", systemID, resp.Status)
	}
	return c
}

// text is a plain submit_sm body to +61412345678 from ACME.
func text(s string) smppwire.Message {
	return smppwire.Message{
		SourceTON: 5, Source: "ACME",
		DestTON: 1, DestNPI: 1, Dest: "61412345678",
		RegisteredDelivery: 1,
		ShortMessage:       []byte(s),
	}
}

// metric returns the value of a counter or gauge with the given label
// values (in the order the family declares them), 0 when there is none.
func (f *fixture) metric(t testing.TB, name string, labelValues ...string) float64 {
	t.Helper()
	families, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
	next:
		for _, m := range fam.GetMetric() {
			if len(m.GetLabel()) != len(labelValues) {
				continue
			}
			for i, l := range m.GetLabel() {
				if l.GetValue() != labelValues[i] {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// selfSigned returns a certificate for 127.0.0.1.
func selfSigned(t testing.TB) tls.Certificate { return testenv.SelfSignedCert(t) }

func tlsListener(ln net.Listener, cert tls.Certificate) net.Listener {
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
}

func clientTLS(cert tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// answerNth has c answer the nth deliver_sm it gets with status, and every
// other one with ESME_ROK.
func answerNth(c *esme.Client, n int, status uint32) {
	var mu sync.Mutex
	answers := 0
	c.SetAnswer(func(smppwire.Frame) uint32 {
		mu.Lock()
		defer mu.Unlock()
		answers++
		if answers == n {
			return status
		}
		return 0
	})
}
