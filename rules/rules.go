// Package rules is the gateway's admission policy: before a submission
// costs anything (before its workflow starts) it is checked against the
// opt-out list, the customer's allowed destinations, the content rules,
// the velocity limits and the pumping guard, in that order. A refusal is a
// domain error with a Reason every entry point maps to its protocol; a
// submission let in carries what the rules decided (a rewritten sender, a
// hold for review, the matches to record) to its workflow.
//
// The opt-out list and the counters are shared by every replica: they are
// stores, reached through the interfaces declared here (the MongoDB event
// store keeps the opt-out list, the MySQL reporting database the velocity
// and traffic counters, whose upserts are atomic). The package also turns
// opt-out and opt-in keywords of mobile-originated messages into changes
// of the list.
package rules

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/internal/promreg"
)

// Counters are the shared counters of velocity limits and of the pumping
// guard.
type Counters interface {
	// AddVelocity adds n (1, or -1 to take a count back) to key's count in
	// the window that starts at bucket, and returns the count after. The
	// count may be forgotten after expire.
	AddVelocity(ctx context.Context, key string, bucket, expire time.Time, n int64) (int64, error)
	// AddTraffic adds n messages of the customer (1, or -1 to take one
	// back) to prefix in the hour that starts at hour, and returns the
	// hour's count for the prefix and for all of the customer's prefixes
	// after (0 and 0 when n is negative: nothing decides on them).
	AddTraffic(ctx context.Context, customerID, prefix string, hour time.Time, n int64) (prefixCount, total int64, err error)
	// Traffic sums the customer's messages by prefix, and in all, over the
	// hours in [from, to).
	Traffic(ctx context.Context, customerID string, from, to time.Time) (byPrefix map[string]int64, total int64, err error)
}

// OptOutChecker tells whether a number opted out (smsgw.OptOutList does).
type OptOutChecker interface {
	OptedOut(ctx context.Context, customerID, sender, number string) (bool, error)
}

// Engine is the gateway's smsgw.Admitter.
type Engine struct {
	config   *config.Live
	optOuts  OptOutChecker
	counters Counters
	now      func() time.Time
	logger   *slog.Logger

	mu       sync.Mutex
	compiled *compiled // the content rules of one configuration
	baseline map[string]baseline

	refusals *prometheus.CounterVec
	matches  *prometheus.CounterVec
	flags    *prometheus.CounterVec
}

// Options configure an Engine. OptOuts and Counters are required.
type Options struct {
	Config     *config.Live
	OptOuts    OptOutChecker
	Counters   Counters
	Now        func() time.Time // nil: time.Now
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// New returns an Engine and registers its metrics.
func New(o Options) (*Engine, error) {
	if o.Config == nil || o.OptOuts == nil || o.Counters == nil {
		return nil, fmt.Errorf("rules: Config, OptOuts and Counters are required")
	}
	e := &Engine{config: o.Config, optOuts: o.OptOuts, counters: o.Counters, now: o.Now, logger: o.Logger, baseline: map[string]baseline{}}
	if e.now == nil {
		e.now = time.Now
	}
	if e.logger == nil {
		e.logger = slog.New(slog.DiscardHandler)
	}
	var err error
	if e.refusals, err = promreg.Register(o.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smsgw_rule_refusals_total",
		Help: "Submissions refused by the admission rules before they cost anything, by customer and reason (OPTED_OUT, DESTINATION_NOT_ALLOWED, CONTENT_REFUSED, VELOCITY_LIMIT, UNUSUAL_DESTINATION_TRAFFIC).",
	}, []string{"customer", "reason"})); err != nil {
		return nil, err
	}
	if e.matches, err = promreg.Register(o.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smsgw_rule_matches_total",
		Help: "Rules that matched a submission, by customer, kind (content, velocity, pumping) and action (refuse, hold, rewriteSender, tag, alert).",
	}, []string{"customer", "kind", "action"})); err != nil {
		return nil, err
	}
	if e.flags, err = promreg.Register(o.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smsgw_pumping_guard_flags_total",
		Help: "Submissions to a destination prefix whose traffic rose above the pumping guard's share (K times its 7-day share, with at least M messages in the hour), by customer and action.",
	}, []string{"customer", "action"})); err != nil {
		return nil, err
	}
	return e, nil
}

// Admit implements smsgw.Admitter. m.To is in E.164 form.
func (e *Engine) Admit(ctx context.Context, m smsgw.Message) (smsgw.Admission, func(), error) {
	cfg := e.config.Config()
	cu, _ := cfg.Customer(m.CustomerID)
	var adm smsgw.Admission

	opted, err := e.optOuts.OptedOut(ctx, m.CustomerID, smsgw.SenderDigits(m.From), m.To)
	if err != nil {
		return adm, nil, smsgw.Unavailable("opt-out list", err)
	}
	if opted {
		return adm, nil, e.refuse(m.CustomerID, smsgw.Refused(smsgw.EFORBIDDEN, smsgw.ReasonOptedOut,
			"to %s opted out of the account's messages", m.To))
	}

	if !DestinationAllowed(cu.Rules.AllowedDestinations, m.To) {
		return adm, nil, e.refuse(m.CustomerID, smsgw.Refused(smsgw.EFORBIDDEN, smsgw.ReasonDestinationNotAllowed,
			"to %s is not among the account's allowed destinations (%s)", m.To, strings.Join(cu.Rules.AllowedDestinations, ", ")))
	}

	at := e.now()
	content := e.contentRules(cfg)
	refusedBy := ""
	for _, r := range append(content.global[:len(content.global):len(content.global)], content.customer[m.CustomerID]...) {
		if !r.matches(m, at) {
			continue
		}
		e.matches.WithLabelValues(m.CustomerID, "content", r.Action).Inc()
		match := smsgw.RuleMatch{Rule: "content:" + r.Name, Action: r.Action}
		switch r.Action {
		case smsgw.ActionRefuse:
			if refusedBy == "" {
				refusedBy = r.Name
			}
		case smsgw.ActionHold:
			if adm.Hold == nil {
				adm.Hold = &smsgw.Hold{Reason: "content rule " + r.Name, Timeout: cfg.Rules.HoldTimeoutOr(r.HoldFor)}
			}
		case smsgw.ActionRewriteSender:
			match.Sender, match.Detail = r.Sender, "from "+m.From
			adm.From = r.Sender
		case smsgw.ActionTag:
			match.Tag = r.Tag
		}
		adm.Matches = append(adm.Matches, match)
	}
	if refusedBy != "" {
		return smsgw.Admission{}, nil, e.refuse(m.CustomerID, smsgw.Refused(smsgw.EFORBIDDEN, smsgw.ReasonContentRefused,
			"the message was refused by content rule %q", refusedBy))
	}

	undoVelocity, err := e.velocity(ctx, cfg, cu, m, at, &adm)
	if err != nil {
		return smsgw.Admission{}, nil, err
	}
	undoTraffic, err := e.guard(ctx, cfg, cu, m, at, &adm)
	if err != nil {
		undoVelocity() // a refused message does not count toward the limits
		return smsgw.Admission{}, nil, err
	}
	var once sync.Once
	return adm, func() { once.Do(func() { undoVelocity(); undoTraffic() }) }, nil
}

// refuse counts a refusal and returns it.
func (e *Engine) refuse(customerID string, err *smsgw.Error) error {
	e.refusals.WithLabelValues(customerID, err.Reason).Inc()
	return err
}

// DestinationAllowed tells whether to starts with one of the allowed
// prefixes; any destination is, when none is listed.
func DestinationAllowed(allowed []string, to string) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, p := range allowed {
		if strings.HasPrefix(to, p) {
			return true
		}
	}
	return false
}

// velocity counts the message against each of the customer's limits that
// applies to its destination. Over a limit whose action is refuse, the
// counts are taken back and the submission refused; otherwise undo takes
// them back should a later check refuse it.
func (e *Engine) velocity(ctx context.Context, cfg *config.Config, cu config.Customer, m smsgw.Message, at time.Time, adm *smsgw.Admission) (undo func(), err error) {
	type counted struct {
		key            string
		bucket, expire time.Time
	}
	var done []counted
	undo = func() {
		for _, c := range done {
			if _, err := e.counters.AddVelocity(context.WithoutCancel(ctx), c.key, c.bucket, c.expire, -1); err != nil {
				e.logger.Warn("velocity count not taken back", "key", c.key, "err", err)
			}
		}
	}
	for i, v := range cu.Rules.Velocity {
		dest := v.KeyOf(m.To)
		if dest == "" {
			continue
		}
		window := v.WindowOf()
		bucket := at.UTC().Truncate(window)
		c := counted{key: m.CustomerID + "|" + strconv.Itoa(i) + "|" + dest, bucket: bucket, expire: bucket.Add(2 * window)}
		n, err := e.counters.AddVelocity(ctx, c.key, c.bucket, c.expire, 1)
		if err != nil {
			undo()
			return nil, smsgw.Unavailable("velocity counters", err)
		}
		done = append(done, c)
		if n <= v.Max {
			continue
		}
		action := v.ActionOf()
		e.matches.WithLabelValues(m.CustomerID, "velocity", action).Inc()
		detail := fmt.Sprintf("%d messages to %s within %s, over %d", n, dest, window, v.Max)
		switch action {
		case smsgw.ActionRefuse:
			undo()
			err := smsgw.Refused(smsgw.ETHROTTLED, smsgw.ReasonVelocityLimit,
				"over the account's limit of %d messages to %s per %s", v.Max, dest, window)
			err.RetryAfter = bucket.Add(window).Sub(at)
			return nil, e.refuse(m.CustomerID, err)
		case smsgw.ActionHold:
			if adm.Hold == nil {
				adm.Hold = &smsgw.Hold{Reason: "velocity limit: " + detail, Timeout: cfg.Rules.HoldTimeoutOr(0)}
			}
		case smsgw.ActionAlert:
			e.logger.Warn("velocity limit exceeded", "customer", m.CustomerID, "limit", i, "detail", detail)
		}
		adm.Matches = append(adm.Matches, smsgw.RuleMatch{Rule: "velocity:" + strconv.Itoa(i), Action: action, Detail: detail})
	}
	return undo, nil
}

// baseline is a customer's traffic over the 7 days before an hour, and
// over the hour before it alone.
type baseline struct {
	hour      time.Time
	fetchedAt time.Time
	byPrefix  map[string]int64
	total     int64
	// The previous clock hour's counts, which the last 60 minutes take a
	// share of.
	prevByPrefix map[string]int64
	prevTotal    int64
}

// baselineRefresh is how long a customer's 7-day traffic is reused.
const baselineRefresh = 5 * time.Minute

// guard counts the message in its prefix's traffic and flags it when the
// prefix's share of the customer's traffic over the last 60 minutes is
// over Factor times its share of the 7 days before the current hour, with
// at least MinMessages to the prefix in those 60 minutes. The counts are
// kept per clock hour; the last 60 minutes are the current hour's counts
// and the previous hour's weighted by the part of it still inside the
// window (at hh:15, three quarters of it), so a burst split across hh:00
// is judged whole. A message it lets in stays counted until undo takes
// it back (a later step refused it); one it refuses stays counted: the
// guard measures where the customer tries to send.
func (e *Engine) guard(ctx context.Context, cfg *config.Config, cu config.Customer, m smsgw.Message, at time.Time, adm *smsgw.Admission) (undo func(), err error) {
	g := cfg.Guard(cu)
	if g == nil || len(m.To) < 2 {
		return func() {}, nil
	}
	prefix := m.To[:min(len(m.To), 1+g.PrefixDigits)]
	at = at.UTC()
	hour := at.Truncate(time.Hour)
	n, total, err := e.counters.AddTraffic(ctx, m.CustomerID, prefix, hour, 1)
	if err != nil {
		return nil, smsgw.Unavailable("traffic counters", err)
	}
	undo = func() {
		if _, _, err := e.counters.AddTraffic(context.WithoutCancel(ctx), m.CustomerID, prefix, hour, -1); err != nil {
			e.logger.Warn("traffic count not taken back", "customer", m.CustomerID, "prefix", prefix, "err", err)
		}
	}
	base, err := e.baselineOf(ctx, m.CustomerID, hour, at)
	if err != nil {
		undo()
		return nil, smsgw.Unavailable("traffic counters", err)
	}
	w := lastHourWeight(hour, at)
	recent := float64(n) + w*float64(base.prevByPrefix[prefix])
	recentTotal := float64(total) + w*float64(base.prevTotal)
	if recent < float64(g.MinHour) || base.total < g.MinBaseline {
		return undo, nil
	}
	share := float64(base.byPrefix[prefix]) / float64(base.total)
	recentShare := recent / recentTotal
	if recentShare <= g.Factor*share {
		return undo, nil
	}
	e.flags.WithLabelValues(m.CustomerID, g.Action).Inc()
	e.matches.WithLabelValues(m.CustomerID, "pumping", g.Action).Inc()
	detail := fmt.Sprintf("%.0f of %.0f messages in the last hour to %s (%.1f%%), against %.2f%% over 7 days", recent, recentTotal, prefix, 100*recentShare, 100*share)
	switch g.Action {
	case smsgw.ActionRefuse:
		err := smsgw.Refused(smsgw.ETHROTTLED, smsgw.ReasonUnusualDestination,
			"traffic to %s is unusual for the account (%s); retry later or contact support", prefix, detail)
		err.RetryAfter = nextLetInAfter(n, base.prevByPrefix[prefix], g.MinHour, hour, at)
		return nil, e.refuse(m.CustomerID, err)
	case smsgw.ActionHold:
		if adm.Hold == nil {
			adm.Hold = &smsgw.Hold{Reason: "pumping guard: " + detail, Timeout: cfg.Rules.HoldTimeoutOr(0)}
		}
	default:
		e.logger.Warn("unusual destination traffic", "customer", m.CustomerID, "prefix", prefix, "detail", detail)
	}
	adm.Matches = append(adm.Matches, smsgw.RuleMatch{Rule: "pumping:" + prefix, Action: g.Action, Detail: detail})
	return undo, nil
}

// lastHourWeight is the part of the clock hour before hour that is inside
// the 60 minutes before at.
func lastHourWeight(hour, at time.Time) float64 {
	return 1 - float64(at.Sub(hour))/float64(time.Hour)
}

// nextLetInAfter is how long from at until the pumping guard's count of
// the prefix over the last 60 minutes lets the next message to it in, if
// nothing more is sent to it meanwhile: n this hour (the refused message
// included) and prev in the hour before, against minimum. The next
// message counts too. (Its share may let it in sooner.)
func nextLetInAfter(n, prev, minimum int64, hour, at time.Time) time.Duration {
	room := float64(minimum - 1)
	var until time.Time
	if float64(n) >= room {
		// In the next hour, as this hour's count slides out of the window.
		until = hour.Add(time.Hour + time.Duration((1-room/float64(n))*float64(time.Hour)))
	} else {
		// In this hour, as the previous hour's count slides out.
		until = hour.Add(time.Duration((1 - (room-float64(n))/float64(max(prev, 1))) * float64(time.Hour)))
	}
	return max(until.Sub(at).Truncate(time.Second)+time.Second, time.Second)
}

// baselineOf is the customer's traffic over the 7 days before hour, and
// over the hour before it, read at most once per baselineRefresh.
func (e *Engine) baselineOf(ctx context.Context, customerID string, hour, now time.Time) (baseline, error) {
	e.mu.Lock()
	b, ok := e.baseline[customerID]
	e.mu.Unlock()
	if ok && b.hour.Equal(hour) && now.Sub(b.fetchedAt) < baselineRefresh {
		return b, nil
	}
	byPrefix, total, err := e.counters.Traffic(ctx, customerID, hour.Add(-7*24*time.Hour), hour)
	if err != nil {
		return baseline{}, err
	}
	prevByPrefix, prevTotal, err := e.counters.Traffic(ctx, customerID, hour.Add(-time.Hour), hour)
	if err != nil {
		return baseline{}, err
	}
	b = baseline{hour: hour, fetchedAt: now, byPrefix: byPrefix, total: total, prevByPrefix: prevByPrefix, prevTotal: prevTotal}
	e.mu.Lock()
	e.baseline[customerID] = b
	e.mu.Unlock()
	return b, nil
}

// compiled are the content rules of one configuration, ready to match.
type compiled struct {
	cfg      *config.Config
	global   []contentRule
	customer map[string][]contentRule
}

// contentRules compiles the configuration's content rules once per
// configuration (a reload brings a new one).
func (e *Engine) contentRules(cfg *config.Config) *compiled {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.compiled != nil && e.compiled.cfg == cfg {
		return e.compiled
	}
	c := &compiled{cfg: cfg, global: compile(cfg.Rules.Content), customer: map[string][]contentRule{}}
	for _, cu := range cfg.Customers {
		c.customer[cu.ID] = compile(cu.Rules.Content)
	}
	e.compiled = c
	return c
}

// contentRule is a compiled config.ContentRule.
type contentRule struct {
	config.ContentRule
	keywords []*regexp.Regexp
	regex    *regexp.Regexp
	window   *config.Window
}

// compile compiles content rules; the configuration has validated them,
// and a rule that does not compile is left out.
func compile(rules []config.ContentRule) []contentRule {
	var out []contentRule
	for _, r := range rules {
		c := contentRule{ContentRule: r}
		ok := true
		for _, k := range r.Keywords {
			re, err := regexp.Compile(`(?i)(^|[^\pL\pN])` + regexp.QuoteMeta(strings.TrimSpace(k)) + `($|[^\pL\pN])`)
			if err != nil {
				ok = false
				break
			}
			c.keywords = append(c.keywords, re)
		}
		if r.Regex != "" {
			re, err := regexp.Compile(r.Regex)
			if err != nil {
				ok = false
			}
			c.regex = re
		}
		if r.Window != nil {
			w, err := r.Window.Compile()
			if err != nil {
				ok = false
			}
			c.window = w
		}
		if ok {
			out = append(out, c)
		}
	}
	return out
}

// matches tells whether every condition of the rule holds for m at at.
func (r contentRule) matches(m smsgw.Message, at time.Time) bool {
	if len(r.keywords) > 0 {
		found := false
		for _, k := range r.keywords {
			if k.MatchString(m.Text) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if r.regex != nil && !r.regex.MatchString(m.Text) {
		return false
	}
	if len(r.Senders) > 0 && !slices.Contains(r.Senders, m.From) {
		return false
	}
	if len(r.DestinationPrefixes) > 0 && !DestinationAllowed(r.DestinationPrefixes, m.To) {
		return false
	}
	if r.window != nil && !r.window.Contains(at) {
		return false
	}
	return true
}
