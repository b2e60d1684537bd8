package lifecycle

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/segment"
)

// purse is a ledger with an amount available and a record of the steps
// asked of it.
type purse struct {
	mu        sync.Mutex
	available int64
	steps     []string // "reserve <id> <amount>", "release <id>"
}

func (p *purse) Reserve(_ context.Context, customerID, currency, id string, amount int64, _ int, _ time.Time) (smsgw.Movement, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if amount > p.available {
		return smsgw.Movement{}, smsgw.InsufficientBalance(currency, amount, p.available)
	}
	p.available -= amount
	p.steps = append(p.steps, "reserve "+id+" "+smsgw.FormatMicros(amount))
	return smsgw.Movement{CustomerID: customerID, Key: id, Reserved: amount, New: true}, nil
}

func (p *purse) CloseMessage(_ context.Context, _, _, id, kind string, _ int64, _ int, _ time.Time) (smsgw.Movement, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.steps = append(p.steps, kind+" "+id)
	return smsgw.Movement{Kind: kind, New: true}, nil
}

// CountRefusal makes the purse a smsgw.RefusalCounter too.
func (p *purse) CountRefusal(_ context.Context, customerID, reason string, _ time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.steps = append(p.steps, "refusal "+customerID+" "+reason)
	return nil
}

func (p *purse) TopUp(context.Context, string, string, string, int64, time.Time) (smsgw.Movement, error) {
	return smsgw.Movement{}, nil
}

func (p *purse) Balance(context.Context, string, string) (smsgw.Balance, error) {
	return smsgw.Balance{}, nil
}

const billedConfig = `
customers:
  - {id: pre, apiKeys: ["plain:p"], billing: {mode: prepaid}}
  - {id: post, apiKeys: ["plain:q"], billing: {mode: postpaid}}
connectors: [{id: sim, address: "127.0.0.1:1"}]
routes: [{name: au, prefixes: ["+61"], connectors: [sim]}]
priceLists:
  - {id: std, currency: EUR, customers: [pre, post], rates: [{prefix: "+61", price: 0.05}]}
`

func billedService(t *testing.T, ledger smsgw.Ledger, reg *prometheus.Registry, opts ...func(*Options)) *Service {
	t.Helper()
	cfg, err := config.Parse([]byte(billedConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	tc, err := client.NewLazyClient(client.Options{HostPort: closedAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	live := config.Static(cfg)
	refusals, _ := ledger.(smsgw.RefusalCounter)
	o := Options{
		Temporal: tc, Config: live, Ledger: ledger, Refusals: refusals,
		Counter: activities.TextEncoder{Refs: segment.NewMemoryAllocator(0), Options: activities.CustomerOptions(live)},
		Logger:  slog.New(slog.DiscardHandler), Registerer: reg,
	}
	for _, f := range opts {
		f(&o)
	}
	return New(o)
}

// countingAdmitter lets every submission in and keeps the number counted
// and not taken back, as the velocity limits would.
type countingAdmitter struct {
	mu      sync.Mutex
	counted int
	refuse  error // when set, every submission is refused with it
}

func (a *countingAdmitter) Admit(context.Context, smsgw.Message) (smsgw.Admission, func(), error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refuse != nil {
		return smsgw.Admission{}, nil, a.refuse
	}
	a.counted++
	return smsgw.Admission{}, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.counted--
	}, nil
}

func (a *countingAdmitter) setRefuse(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refuse = err
}

func (a *countingAdmitter) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.counted
}

// A submission the rules let in and a later step refuses (the balance,
// the workflow engine) is taken back from the rules' counts.
func TestRefusalAfterTheRulesTakesBackTheirCounts(t *testing.T) {
	p := &purse{available: 0}
	rules := &countingAdmitter{}
	s := billedService(t, p, prometheus.NewRegistry(), func(o *Options) { o.Admitter = rules })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m := smsgw.Message{CustomerID: "pre", EntryPoint: smsgw.EntryREST, From: "PRE", To: "+61412345678", Text: "hi"}
	for i := range 3 {
		if _, err := s.Submit(ctx, m); smsgw.ErrorCode(err) != smsgw.EPAYMENT {
			t.Fatalf("submission %d on an empty balance: %v, want EPAYMENT", i+1, err)
		}
	}
	if n := rules.count(); n != 0 {
		t.Errorf("after three refused for the balance, %d still counted by the rules, want 0", n)
	}
	// Postpaid, with Temporal down: refused as unavailable, not counted.
	m.CustomerID = "post"
	if _, err := s.Submit(ctx, m); smsgw.ErrorCode(err) != smsgw.EUNAVAILABLE {
		t.Fatalf("with Temporal down: %v, want EUNAVAILABLE", err)
	}
	if n := rules.count(); n != 0 {
		t.Errorf("after a start refused, %d still counted by the rules, want 0", n)
	}
}

// A prepaid message the balance cannot cover is refused before its
// workflow is started; one it covers is reserved for, and released again
// when its workflow cannot be started. A postpaid message reserves nothing.
func TestPrepaidSubmissionIsReservedOrRefused(t *testing.T) {
	p := &purse{available: 60_000}
	reg := prometheus.NewRegistry()
	s := billedService(t, p, reg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m := smsgw.Message{CustomerID: "pre", EntryPoint: smsgw.EntryREST, From: "PRE", To: "+61412345678", Text: "hi", IdempotencyKey: "k1"}

	// Temporal is down: reserved, then released.
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	if _, err := s.Submit(short, m); smsgw.ErrorCode(err) != smsgw.EUNAVAILABLE {
		t.Fatalf("with Temporal down: %v, want EUNAVAILABLE", err)
	}
	id := idempotentID("pre", "k1")
	if len(p.steps) != 2 || p.steps[0] != "reserve "+id+" 0.05" || p.steps[1] != "release "+id {
		t.Fatalf("ledger steps %q, want the reservation and its release", p.steps)
	}

	// 0.01 left: a 0.05 message is refused, its workflow never started,
	// and the refusal counted for the usage reports.
	m.IdempotencyKey = "k2"
	p.steps = nil
	_, err := s.Submit(ctx, m)
	if smsgw.ErrorCode(err) != smsgw.EPAYMENT {
		t.Fatalf("over the balance: %v, want EPAYMENT", err)
	}
	if len(p.steps) != 1 || p.steps[0] != "refusal pre "+smsgw.ReasonInsufficientBalance {
		t.Errorf("ledger steps %q, want the refusal counted", p.steps)
	}
	if got := testutil.ToFloat64(s.results.WithLabelValues(string(smsgw.EntryREST), "payment_required")); got != 1 {
		t.Errorf("payment_required submissions counted %v, want 1", got)
	}

	// Postpaid: priced, nothing reserved.
	p.steps = nil
	m.CustomerID, m.IdempotencyKey = "post", ""
	if _, err := s.Submit(ctx, m); smsgw.ErrorCode(err) != smsgw.EUNAVAILABLE || len(p.steps) != 0 {
		t.Fatalf("postpaid: %v with ledger steps %q, want EUNAVAILABLE (Temporal down) and no step", err, p.steps)
	}
}
