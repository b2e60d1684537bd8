package rules

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
)

// memCounters and memOptOuts stand in for the shared stores (store tests
// run the MongoDB ones against a real server).
type memCounters struct {
	mu       sync.Mutex
	velocity map[string]int64
	traffic  map[trafficKey]int64
	// history is the customer's messages by prefix in the hour historyAt
	// (two days before the engine's clock, in the 7 days the guard looks
	// back on), whoever the customer.
	history   map[string]int64
	historyAt time.Time
	fail      error
}

type trafficKey struct {
	customer, prefix string
	hour             time.Time
}

func newCounters() *memCounters {
	return &memCounters{velocity: map[string]int64{}, traffic: map[trafficKey]int64{}, history: map[string]int64{}}
}

func (c *memCounters) AddVelocity(_ context.Context, key string, bucket, _ time.Time, n int64) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return 0, c.fail
	}
	k := key + "@" + bucket.String()
	c.velocity[k] += n
	return c.velocity[k], nil
}

func (c *memCounters) AddTraffic(_ context.Context, customerID, prefix string, hour time.Time, n int64) (int64, int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, all := trafficKey{customerID, prefix, hour}, trafficKey{customerID, "*", hour}
	c.traffic[k] += n
	c.traffic[all] += n
	return c.traffic[k], c.traffic[all], nil
}

func (c *memCounters) Traffic(_ context.Context, customerID string, from, to time.Time) (map[string]int64, int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := func(t time.Time) bool { return !t.Before(from) && t.Before(to) }
	out, total := map[string]int64{}, int64(0)
	if in(c.historyAt) {
		for p, n := range c.history {
			out[p] += n
			total += n
		}
	}
	for k, n := range c.traffic {
		if k.customer != customerID || !in(k.hour) {
			continue
		}
		if k.prefix == "*" {
			total += n
		} else {
			out[k.prefix] += n
		}
	}
	return out, total, nil
}

type memOptOuts struct {
	mu      sync.Mutex
	entries map[string]smsgw.OptOut
}

func optOutKey(customerID, sender, number string) string {
	return customerID + "|" + sender + "|" + number
}

func (l *memOptOuts) OptedOut(_ context.Context, customerID, sender, number string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, whole := l.entries[optOutKey(customerID, "", number)]
	_, bySender := l.entries[optOutKey(customerID, sender, number)]
	return whole || (sender != "" && bySender), nil
}

func (l *memOptOuts) AddOptOuts(_ context.Context, entries []smsgw.OptOut) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	added := 0
	for _, e := range entries {
		k := optOutKey(e.CustomerID, e.Sender, e.Number)
		if _, ok := l.entries[k]; !ok {
			l.entries[k] = e
			added++
		}
	}
	return added, nil
}

func (l *memOptOuts) RemoveOptOut(_ context.Context, customerID, sender, number string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := optOutKey(customerID, sender, number)
	_, ok := l.entries[k]
	delete(l.entries, k)
	return ok, nil
}

func (l *memOptOuts) ListOptOuts(context.Context, smsgw.OptOutQuery) ([]smsgw.OptOut, string, error) {
	return nil, "", errors.New("not used")
}

const testConfig = `
rules:
  holdTimeout: 2h
  content:
    - name: no-crypto
      keywords: [bitcoin, "free money"]
      action: refuse
    - name: night-promo
      regex: "(?i)promo"
      window: {from: "22:00", to: "06:00", timezone: UTC}
      action: hold
customers:
  - id: acme
    apiKeys: ["plain:k"]
    rules:
      allowedDestinations: ["+44", "+331"]
      content:
        - name: brand
          senders: [OLDNAME]
          action: rewriteSender
          sender: NEWNAME
        - name: uk-marketing
          destinationPrefixes: ["+447"]
          keywords: [sale]
          action: tag
          tag: marketing
        - name: review-links
          regex: "https?://"
          action: hold
          holdFor: 30m
      velocity:
        - per: number
          max: 2
          window: 1h
        - prefix: "+449"
          per: range
          rangeDigits: 6
          max: 3
          action: hold
  - id: open
    apiKeys: ["plain:o"]
    rules:
      optOutScope: customer
      pumpingGuard: {factor: 3, minMessages: 2, prefixDigits: 2, minBaseline: 10, action: refuse}
`

func newEngine(t *testing.T, now time.Time) (*Engine, *memCounters, *memOptOuts, *prometheus.Registry) {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	counters, list := newCounters(), &memOptOuts{entries: map[string]smsgw.OptOut{}}
	counters.historyAt = now.UTC().Truncate(time.Hour).Add(-48 * time.Hour)
	reg := prometheus.NewRegistry()
	e, err := New(Options{Config: config.Static(cfg), OptOuts: list, Counters: counters, Now: func() time.Time { return now }, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return e, counters, list, reg
}

// changeRules changes the rules of one customer of the engine's
// configuration.
func changeRules(e *Engine, customerID string, change func(*config.CustomerRules)) {
	cfg := e.config.Config()
	for i := range cfg.Customers {
		if cfg.Customers[i].ID == customerID {
			change(&cfg.Customers[i].Rules)
		}
	}
}

func TestAdmit(t *testing.T) {
	// fixed date: the Engine reads only the clock it is given (Options.Now)
	noon := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	// fixed date: the Engine reads only the clock it is given (Options.Now)
	night := time.Date(2026, 3, 2, 23, 0, 0, 0, time.UTC)
	msg := func(from, to, text string) smsgw.Message {
		return smsgw.Message{CustomerID: "acme", From: from, To: to, Text: text}
	}
	cases := []struct {
		name       string
		at         time.Time
		m          smsgw.Message
		optedOut   []smsgw.OptOut
		wantCode   string
		wantReason string
		wantFrom   string
		wantHold   time.Duration
		wantRules  []string
	}{
		{name: "nothing matches", at: noon, m: msg("ACME", "+441234567890", "hello")},
		{name: "destination not allowed", at: noon, m: msg("ACME", "+33612345678", "hello"),
			wantCode: smsgw.EFORBIDDEN, wantReason: smsgw.ReasonDestinationNotAllowed},
		{name: "allowed by a longer prefix", at: noon, m: msg("ACME", "+33112345678", "hello")},
		{name: "opted out of the customer", at: noon, m: msg("ACME", "+441234567890", "hello"),
			optedOut: []smsgw.OptOut{{CustomerID: "acme", Number: "+441234567890"}},
			wantCode: smsgw.EFORBIDDEN, wantReason: smsgw.ReasonOptedOut},
		{name: "opted out of the sender number", at: noon, m: msg("+447700900001", "+441234567890", "hello"),
			optedOut: []smsgw.OptOut{{CustomerID: "acme", Sender: "447700900001", Number: "+441234567890"}},
			wantCode: smsgw.EFORBIDDEN, wantReason: smsgw.ReasonOptedOut},
		{name: "opted out of another sender only", at: noon, m: msg("+447700900002", "+441234567890", "hello"),
			optedOut: []smsgw.OptOut{{CustomerID: "acme", Sender: "447700900001", Number: "+441234567890"}}},
		{name: "opted out of another customer only", at: noon, m: msg("ACME", "+441234567890", "hello"),
			optedOut: []smsgw.OptOut{{CustomerID: "open", Number: "+441234567890"}}},
		{name: "global keyword refuses", at: noon, m: msg("ACME", "+441234567890", "Buy BITCOIN now"),
			wantCode: smsgw.EFORBIDDEN, wantReason: smsgw.ReasonContentRefused},
		{name: "keyword of two words", at: noon, m: msg("ACME", "+441234567890", "get free money!"),
			wantCode: smsgw.EFORBIDDEN, wantReason: smsgw.ReasonContentRefused},
		{name: "keyword inside a word does not match", at: noon, m: msg("ACME", "+441234567890", "bitcoins"),
			wantRules: nil},
		{name: "regex in its window holds", at: night, m: msg("ACME", "+441234567890", "Promo tonight"),
			wantHold: 2 * time.Hour, wantRules: []string{"content:night-promo"}},
		{name: "regex outside its window", at: noon, m: msg("ACME", "+441234567890", "Promo today")},
		{name: "sender rewritten", at: noon, m: msg("OLDNAME", "+441234567890", "hi"),
			wantFrom: "NEWNAME", wantRules: []string{"content:brand"}},
		{name: "tag by prefix and keyword", at: noon, m: msg("ACME", "+447912345678", "big sale"),
			wantRules: []string{"content:uk-marketing"}},
		{name: "tag prefix does not match", at: noon, m: msg("ACME", "+441912345678", "big sale")},
		{name: "hold with its own timeout", at: noon, m: msg("ACME", "+441234567890", "see https://x.example"),
			wantHold: 30 * time.Minute, wantRules: []string{"content:review-links"}},
		{name: "refuse wins over hold and tag", at: noon, m: msg("ACME", "+447912345678", "sale bitcoin https://x.example"),
			wantCode: smsgw.EFORBIDDEN, wantReason: smsgw.ReasonContentRefused},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, _, list, reg := newEngine(t, c.at)
			if _, err := list.AddOptOuts(context.Background(), c.optedOut); err != nil {
				t.Fatal(err)
			}
			adm, _, err := e.Admit(context.Background(), c.m)
			if smsgw.ErrorCode(err) != c.wantCode || smsgw.ErrorReason(err) != c.wantReason {
				t.Fatalf("Admit: %v (code %q reason %q), want code %q reason %q", err, smsgw.ErrorCode(err), smsgw.ErrorReason(err), c.wantCode, c.wantReason)
			}
			if c.wantReason != "" {
				if got := testutil.ToFloat64(e.refusals.WithLabelValues("acme", c.wantReason)); got != 1 {
					t.Errorf("refusals{%s} = %v, want 1", c.wantReason, got)
				}
				_ = reg
				return
			}
			if adm.From != c.wantFrom {
				t.Errorf("From = %q, want %q", adm.From, c.wantFrom)
			}
			switch {
			case c.wantHold == 0 && adm.Hold != nil:
				t.Errorf("held: %+v", adm.Hold)
			case c.wantHold != 0 && (adm.Hold == nil || adm.Hold.Timeout != c.wantHold):
				t.Errorf("hold = %+v, want timeout %s", adm.Hold, c.wantHold)
			}
			var rules []string
			for _, m := range adm.Matches {
				rules = append(rules, m.Rule)
			}
			if strings.Join(rules, ",") != strings.Join(c.wantRules, ",") {
				t.Errorf("matches = %v, want %v", rules, c.wantRules)
			}
		})
	}
}

func TestVelocity(t *testing.T) {
	// fixed date: the Engine reads only the clock it is given (Options.Now)
	now := time.Date(2026, 3, 2, 12, 30, 0, 0, time.UTC)
	e, counters, _, _ := newEngine(t, now)
	ctx := context.Background()
	m := smsgw.Message{CustomerID: "acme", From: "ACME", To: "+441234567890", Text: "hi"}
	for i := range 2 {
		if _, _, err := e.Admit(ctx, m); err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
	}
	_, _, err := e.Admit(ctx, m)
	if smsgw.ErrorCode(err) != smsgw.ETHROTTLED || smsgw.ErrorReason(err) != smsgw.ReasonVelocityLimit {
		t.Fatalf("third message: %v, want ETHROTTLED VELOCITY_LIMIT", err)
	}
	if ra := smsgw.RetryAfter(err); ra != 30*time.Minute {
		t.Errorf("RetryAfter = %s, want 30m (the end of the hour's window)", ra)
	}
	// The refused message was not counted: the count stays at the limit.
	for k, n := range counters.velocity {
		if strings.Contains(k, "+441234567890") && n != 2 {
			t.Errorf("count %s = %d, want 2", k, n)
		}
	}
	// Another number has its own count.
	if _, _, err := e.Admit(ctx, smsgw.Message{CustomerID: "acme", From: "ACME", To: "+441234567891", Text: "hi"}); err != nil {
		t.Fatal(err)
	}

	// A range limit with action hold: the fourth message to +449123… holds.
	var held *smsgw.Admission
	for i := range 4 {
		to := "+44912300000" + string(rune('0'+i))
		adm, _, err := e.Admit(ctx, smsgw.Message{CustomerID: "acme", From: "ACME", To: to, Text: "hi"})
		if err != nil {
			t.Fatalf("range message %d: %v", i+1, err)
		}
		if adm.Hold != nil {
			held = &adm
			if i != 3 {
				t.Fatalf("range message %d held, want the 4th", i+1)
			}
		}
	}
	if held == nil || held.Matches[len(held.Matches)-1].Rule != "velocity:1" || held.Hold.Timeout != 2*time.Hour {
		t.Fatalf("fourth message to the range: %+v, want held by velocity:1 for the hold timeout", held)
	}

	counters.fail = errors.New("down")
	if _, _, err := e.Admit(ctx, m); smsgw.ErrorCode(err) != smsgw.EUNAVAILABLE {
		t.Errorf("counters down: %v, want EUNAVAILABLE", err)
	}
}

func TestPumpingGuard(t *testing.T) {
	// fixed date: the Engine reads only the clock it is given (Options.Now)
	now := time.Date(2026, 3, 2, 12, 30, 0, 0, time.UTC)
	cases := []struct {
		name    string
		history map[string]int64
		sends   []string // destinations, in order
		refused int      // index of the first refused send, -1 for none
	}{
		{name: "a usual prefix is never flagged", history: map[string]int64{"+44": 100},
			sends: []string{"+441", "+442", "+443", "+444"}, refused: -1},
		{name: "a rare prefix is flagged at minMessages", history: map[string]int64{"+44": 99, "+88": 1},
			sends: []string{"+441", "+881", "+882"}, refused: 2},
		{name: "an unused prefix is flagged at minMessages", history: map[string]int64{"+44": 100},
			sends: []string{"+441", "+442", "+443", "+881", "+882"}, refused: 4},
		{name: "below minBaseline nothing is judged", history: map[string]int64{"+44": 5},
			sends: []string{"+881", "+882", "+883"}, refused: -1},
		{name: "within factor times the share", history: map[string]int64{"+44": 50, "+88": 50},
			sends: []string{"+881", "+882", "+883"}, refused: -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, counters, _, _ := newEngine(t, now)
			counters.history = c.history
			got := -1
			for i, to := range c.sends {
				_, _, err := e.Admit(context.Background(), smsgw.Message{CustomerID: "open", From: "OPEN", To: to + "2345678", Text: "hi"})
				if err != nil {
					if smsgw.ErrorReason(err) != smsgw.ReasonUnusualDestination || smsgw.ErrorCode(err) != smsgw.ETHROTTLED {
						t.Fatalf("send %d: %v", i, err)
					}
					got = i
					break
				}
			}
			if got != c.refused {
				t.Errorf("first refused send = %d, want %d", got, c.refused)
			}
			if c.refused >= 0 && testutil.ToFloat64(e.flags.WithLabelValues("open", "refuse")) != 1 {
				t.Errorf("flags counter not counted")
			}
		})
	}
}

func TestOptOutKeywords(t *testing.T) {
	cfg, err := config.Parse([]byte(testConfig+`
  - id: fr
    apiKeys: ["plain:f"]
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Rules.OptOut = config.OptOutKeywords{Stop: map[string][]string{"en": {"STOP"}, "fr": {"ARRET"}}, Start: map[string][]string{"fr": {"REPRISE"}}}
	list := &memOptOuts{entries: map[string]smsgw.OptOut{}}
	k, err := NewOptOutKeywords(config.Static(cfg), list, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	steps := []struct {
		customer, from, to, text string
		want                     string
		optedOut                 bool // afterwards, of the customer's sender "+4470001"
	}{
		{"acme", "447700900123", "+4470001", "hello", "", false},
		{"acme", "447700900123", "+4470001", "stop.", ChangeOptOut, true},
		{"acme", "447700900123", "+4470001", "Stop please", ChangeOptOut, true},
		{"acme", "447700900123", "+4470001", "START", "", true}, // START is not configured any more
		{"acme", "447700900123", "+4470001", "reprise", ChangeOptIn, false},
		{"acme", "447700900123", "+4470001", "ARRET", ChangeOptOut, true},
		{"acme", "not a number", "+4470001", "STOP", "", true},
	}
	for i, s := range steps {
		got, err := k.HandleMO(ctx, s.customer, s.from, s.to, s.text)
		if err != nil || got != s.want {
			t.Fatalf("step %d %q: %q, %v; want %q", i, s.text, got, err, s.want)
		}
		opted, _ := list.OptedOut(ctx, "acme", "4470001", "+447700900123")
		if opted != s.optedOut {
			t.Fatalf("step %d %q: opted out = %v, want %v", i, s.text, opted, s.optedOut)
		}
	}
	// The customer scope applies to every sender of the customer.
	if _, err := k.HandleMO(ctx, "open", "+33600000001", "+4470009", "STOP"); err != nil {
		t.Fatal(err)
	}
	if opted, _ := list.OptedOut(ctx, "open", "OPEN", "+33600000001"); !opted {
		t.Error("customer-scope opt-out does not cover the customer's alphanumeric sender")
	}
}

func TestConfigRefusesBadRules(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"bad action", "rules:\n  content:\n    - {name: a, keywords: [x], action: delete}\n", "action must be"},
		{"no condition", "rules:\n  content:\n    - {name: a, action: refuse}\n", "at least one of"},
		{"bad regex", "rules:\n  content:\n    - {name: a, regex: '(', action: refuse}\n", "regex"},
		{"rewrite without sender", "rules:\n  content:\n    - {name: a, keywords: [x], action: rewriteSender}\n", "valid sender"},
		{"bad prefix", "customers:\n  - id: c\n    rules: {allowedDestinations: ['44']}\n", "allowedDestinations"},
		{"velocity max", "customers:\n  - id: c\n    rules: {velocity: [{max: 0}]}\n", "max must be"},
		{"scope", "customers:\n  - id: c\n    rules: {optOutScope: all}\n", "optOutScope"},
		{"smpp status", "rules:\n  smppStatus: {OPTED_OUT: ESME_ROK}\n", "smppStatus"},
		{"smpp reason", "rules:\n  smppStatus: {NOPE: '0x45'}\n", "unknown reason"},
		{"guard action", "rules:\n  pumpingGuard: {action: drop}\n", "pumpingGuard"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Parse([]byte(c.yaml), func(string) (string, bool) { return "", false })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Parse: %v, want an error containing %q", err, c.want)
			}
		})
	}
	cfg, err := config.Parse([]byte("rules:\n  smppStatus: {OPTED_OUT: '0x450'}\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Rules.SMPPStatusFor(smsgw.ReasonOptedOut); got != 0x450 {
		t.Errorf("SMPPStatusFor(OPTED_OUT) = %#x, want 0x450", got)
	}
	if got := cfg.Rules.SMPPStatusFor(smsgw.ReasonContentRefused); got != 0x45 {
		t.Errorf("SMPPStatusFor(CONTENT_REFUSED) = %#x, want ESME_RSUBMITFAIL", got)
	}
}

// countingEngine is an engine whose customer open has a velocity limit of
// 100 messages an hour to a number besides its pumping guard, and sent
// 100 messages to +44 over the 7 days.
func countingEngine(t *testing.T, now time.Time) (*Engine, *memCounters) {
	e, counters, _, _ := newEngine(t, now)
	changeRules(e, "open", func(r *config.CustomerRules) { r.Velocity = []config.VelocityLimit{{Per: "number", Max: 100}} })
	counters.history = map[string]int64{"+44": 100}
	return e, counters
}

// A submission the pumping guard refuses after the velocity limits counted
// it is taken back from their counts.
func TestGuardRefusalTakesBackVelocityCounts(t *testing.T) {
	// fixed date: the Engine reads only the clock it is given (Options.Now)
	now := time.Date(2026, 3, 2, 12, 30, 0, 0, time.UTC)
	e, counters := countingEngine(t, now)
	m := smsgw.Message{CustomerID: "open", From: "OPEN", To: "+882345678", Text: "hi"}
	if _, _, err := e.Admit(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Admit(context.Background(), m); smsgw.ErrorReason(err) != smsgw.ReasonUnusualDestination {
		t.Fatalf("second message to a new prefix: %v, want %s", err, smsgw.ReasonUnusualDestination)
	}
	for k, n := range counters.velocity {
		if n != 1 {
			t.Errorf("velocity count %s = %d after the guard refused the second message, want 1", k, n)
		}
	}
	if len(counters.velocity) != 1 {
		t.Errorf("velocity counts %v, want one", counters.velocity)
	}
}

// undo takes an admitted submission back from every count it made, the
// velocity limits' and the pumping guard's traffic, once however often it
// is called.
func TestUndoTakesBackTheCounts(t *testing.T) {
	// fixed date: the Engine reads only the clock it is given (Options.Now)
	now := time.Date(2026, 3, 2, 12, 30, 0, 0, time.UTC)
	e, counters := countingEngine(t, now)
	m := smsgw.Message{CustomerID: "open", From: "OPEN", To: "+441234567", Text: "hi"}
	if _, _, err := e.Admit(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	_, undo, err := e.Admit(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	undo()
	undo()
	for k, n := range counters.velocity {
		if n != 1 {
			t.Errorf("velocity count %s = %d after one of two was taken back, want 1", k, n)
		}
	}
	for k, n := range counters.traffic {
		if n != 1 {
			t.Errorf("traffic count %v = %d after one of two was taken back, want 1", k, n)
		}
	}
	if len(counters.velocity) != 1 || len(counters.traffic) != 2 {
		t.Errorf("counts %v and %v, want one velocity count and the prefix's and the total traffic", counters.velocity, counters.traffic)
	}
}

// The actions other than refuse let the submission in: the pumping guard's
// hold holds it for review, its alert and a velocity limit's alert only
// record the match (and count the guard's flag).
func TestActionsThatLetIn(t *testing.T) {
	// fixed date: the Engine reads only the clock it is given (Options.Now)
	now := time.Date(2026, 3, 2, 12, 30, 0, 0, time.UTC)
	for _, action := range []string{smsgw.ActionHold, smsgw.ActionAlert} {
		t.Run("pumping guard "+action, func(t *testing.T) {
			e, counters, _, _ := newEngine(t, now)
			changeRules(e, "open", func(r *config.CustomerRules) {
				r.PumpingGuard = &config.PumpingGuard{Factor: 3, MinHour: 2, PrefixDigits: 2, MinBaseline: 10, Action: action}
			})
			counters.history = map[string]int64{"+44": 100}
			m := smsgw.Message{CustomerID: "open", From: "OPEN", To: "+882345678", Text: "hi"}
			if adm, _, err := e.Admit(context.Background(), m); err != nil || len(adm.Matches) != 0 || adm.Hold != nil {
				t.Fatalf("first message to +88: %+v, %v; want let in untouched", adm, err)
			}
			adm, _, err := e.Admit(context.Background(), m)
			if err != nil {
				t.Fatalf("second message to +88: %v, want let in", err)
			}
			if len(adm.Matches) != 1 || adm.Matches[0].Rule != "pumping:+88" || adm.Matches[0].Action != action || !strings.Contains(adm.Matches[0].Detail, "+88") {
				t.Errorf("matches %+v, want pumping:+88 with action %s", adm.Matches, action)
			}
			if held := adm.Hold != nil; held != (action == smsgw.ActionHold) {
				t.Errorf("hold %+v with action %s", adm.Hold, action)
			}
			if action == smsgw.ActionHold && (adm.Hold.Timeout != 2*time.Hour || !strings.HasPrefix(adm.Hold.Reason, "pumping guard: ")) {
				t.Errorf("hold %+v, want the rules' hold timeout and the guard's reason", adm.Hold)
			}
			if got := testutil.ToFloat64(e.flags.WithLabelValues("open", action)); got != 1 {
				t.Errorf("flags{%s} = %v, want 1", action, got)
			}
		})
	}
	t.Run("velocity alert", func(t *testing.T) {
		e, _, _, _ := newEngine(t, now)
		changeRules(e, "acme", func(r *config.CustomerRules) {
			r.Velocity = []config.VelocityLimit{{Per: "number", Max: 1, Action: smsgw.ActionAlert}}
		})
		m := smsgw.Message{CustomerID: "acme", From: "ACME", To: "+441234567890", Text: "hi"}
		for i := range 3 {
			adm, _, err := e.Admit(context.Background(), m)
			if err != nil || adm.Hold != nil {
				t.Fatalf("message %d: %+v, %v; want let in, not held", i+1, adm, err)
			}
			if over := i > 0; over != (len(adm.Matches) == 1) {
				t.Fatalf("message %d: matches %+v", i+1, adm.Matches)
			}
			if i > 0 && (adm.Matches[0].Rule != "velocity:0" || adm.Matches[0].Action != smsgw.ActionAlert || !strings.Contains(adm.Matches[0].Detail, "over 1")) {
				t.Errorf("message %d: match %+v, want velocity:0 alert", i+1, adm.Matches[0])
			}
		}
		if got := testutil.ToFloat64(e.matches.WithLabelValues("acme", "velocity", smsgw.ActionAlert)); got != 2 {
			t.Errorf("velocity alert matches counted %v, want 2", got)
		}
	})
}

// The pumping guard judges the last 60 minutes, not the clock hour: a
// burst split across hh:00 is flagged as a whole, the previous hour
// weighing by the part of it still inside the window, and the refusal's
// Retry-After is when that part has shrunk enough to let the next in.
func TestPumpingGuardSlidingHour(t *testing.T) {
	// fixed date: the Engine reads only the clock it is given (Options.Now)
	clock := time.Date(2026, 3, 2, 12, 59, 0, 0, time.UTC)
	e, counters, _, _ := newEngine(t, clock)
	e.now = func() time.Time { return clock }
	cfg := e.config.Config()
	for i := range cfg.Customers {
		if cfg.Customers[i].ID == "open" {
			cfg.Customers[i].Rules.PumpingGuard = &config.PumpingGuard{Factor: 3, MinHour: 10, PrefixDigits: 2, MinBaseline: 10, Action: smsgw.ActionRefuse}
		}
	}
	counters.history = map[string]int64{"+44": 1000}
	send := func() error {
		_, _, err := e.Admit(context.Background(), smsgw.Message{CustomerID: "open", From: "OPEN", To: "+882345678", Text: "hi"})
		return err
	}
	// Six to a prefix never used before at 12:59: under the minimum of 10.
	for i := range 6 {
		if err := send(); err != nil {
			t.Fatalf("send %d at 12:59: %v", i+1, err)
		}
	}
	// At 13:00:30 the six weigh 6 x 119/120: the fourth this hour makes
	// 9.95, the fifth 10.95, over the minimum.
	clock = clock.Add(90 * time.Second)
	for i := range 4 {
		if err := send(); err != nil {
			t.Fatalf("send %d at 13:00:30: %v (the last 60 minutes hold %d)", i+1, err, 6+i+1)
		}
	}
	err := send()
	if smsgw.ErrorReason(err) != smsgw.ReasonUnusualDestination {
		t.Fatalf("fifth send at 13:00:30 (eleventh in 90 s): %v, want %s", err, smsgw.ReasonUnusualDestination)
	}
	// Five this hour and six before: the next is let in once the six
	// weigh under 4, a third into the hour, at 13:20.
	if ra, want := smsgw.RetryAfter(err), 19*time.Minute+31*time.Second; ra != want {
		t.Errorf("Retry-After %s, want %s (until 13:20)", ra, want)
	}
	clock = clock.Add(smsgw.RetryAfter(err))
	if err := send(); err != nil {
		t.Errorf("send at %s, after Retry-After: %v", clock.Format("15:04:05"), err)
	}
	// A burst all in the previous hour has slid out by its end.
	// fixed date: the Engine reads only the clock it is given (Options.Now)
	clock = time.Date(2026, 3, 2, 14, 59, 59, 0, time.UTC)
	for i := range 10 {
		if err := send(); err != nil && i < 9 {
			t.Fatalf("send %d at 14:59:59: %v", i+1, err)
		}
	}
	clock = clock.Add(time.Hour)
	if err := send(); err != nil {
		t.Errorf("first send at 15:59:59, an hour after a burst: %v", err)
	}
}
