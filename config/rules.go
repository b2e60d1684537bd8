package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppstatus"
)

// Rules are the gateway-wide commercial controls (docs/content-rules.md):
// the opt-out keywords, content rules every customer's messages meet, the
// default pumping guard and how long a held message waits for review.
type Rules struct {
	// OptOut lists the keywords of mobile-originated messages that opt a
	// number out of (stop) or back into (start) a customer's messages.
	OptOut OptOutKeywords `yaml:"optOut"`
	// Content rules apply to every customer's messages, before the
	// customer's own.
	Content []ContentRule `yaml:"content"`
	// PumpingGuard is every customer's guard unless it has its own.
	PumpingGuard *PumpingGuard `yaml:"pumpingGuard"`
	// HoldTimeout is how long a held message waits for an operator before
	// it is rejected (default 24h; a rule's holdFor overrides it).
	HoldTimeout time.Duration `yaml:"holdTimeout"`
	// SMPPStatus maps a refusal reason (OPTED_OUT, DESTINATION_NOT_ALLOWED,
	// CONTENT_REFUSED, VELOCITY_LIMIT, UNUSUAL_DESTINATION_TRAFFIC) to the
	// command_status the SMPP server answers it with (a name such as
	// ESME_RSUBMITFAIL, or a number, for a vendor-specific status); by
	// default ESME_RSUBMITFAIL.
	SMPPStatus map[string]string `yaml:"smppStatus"`
}

// OptOutKeywords are the opt-out and opt-in keywords by language. A
// mobile-originated message whose first word is one of them (compared
// without case) opts its sender out or in. Left empty, the defaults are
// en: [STOP, UNSUBSCRIBE] and en: [START, UNSTOP].
type OptOutKeywords struct {
	Stop  map[string][]string `yaml:"stop"`
	Start map[string][]string `yaml:"start"`
}

// CustomerRules are one customer's commercial controls.
type CustomerRules struct {
	// OptOutScope is what an opt-out by MO applies to: "sender" (the
	// customer's number it was sent to; the default) or "customer" (all of
	// the customer's messages).
	OptOutScope string `yaml:"optOutScope"`
	// AllowedDestinations, when set, lists the destination prefixes
	// ("+44", "+3361") the customer may send to; others are refused.
	AllowedDestinations []string `yaml:"allowedDestinations"`
	// Content rules of the customer, after the global ones.
	Content []ContentRule `yaml:"content"`
	// Velocity limits per destination number or range.
	Velocity []VelocityLimit `yaml:"velocity"`
	// PumpingGuard overrides the global guard; {disabled: true} turns it off.
	PumpingGuard *PumpingGuard `yaml:"pumpingGuard"`
}

// ContentRule matches a submission on every condition it sets (keywords:
// any of them) and acts on it.
type ContentRule struct {
	Name string `yaml:"name"`
	// Keywords match whole words of the text, without case.
	Keywords []string `yaml:"keywords"`
	// Regex matches the text (Go syntax; (?i) for no case).
	Regex string `yaml:"regex"`
	// Senders lists source addresses (exact) the rule applies to.
	Senders []string `yaml:"senders"`
	// DestinationPrefixes lists destination prefixes ("+44") it applies to.
	DestinationPrefixes []string `yaml:"destinationPrefixes"`
	// Window, when set, is the time of day the rule applies in.
	Window *TimeWindow `yaml:"window"`
	// Action is refuse, hold, rewriteSender or tag.
	Action string `yaml:"action"`
	// Sender is the new sender of rewriteSender.
	Sender string `yaml:"sender"`
	// Tag is the tag of tag.
	Tag string `yaml:"tag"`
	// HoldFor is how long hold waits for review (default rules.holdTimeout).
	HoldFor time.Duration `yaml:"holdFor"`
}

// VelocityLimit caps messages to one destination number (per: number) or
// one range of numbers (per: range, the first rangeDigits digits) within a
// window, across replicas.
type VelocityLimit struct {
	// Prefix, when set, limits only destinations with this prefix.
	Prefix      string        `yaml:"prefix"`
	Per         string        `yaml:"per"` // number (default) or range
	RangeDigits int           `yaml:"rangeDigits"`
	Max         int64         `yaml:"max"`
	Window      time.Duration `yaml:"window"` // default 1h
	// Action is refuse (default), hold or alert.
	Action string `yaml:"action"`
}

// PumpingGuard flags traffic to a destination prefix that rises above
// Factor times the prefix's share of the customer's messages over the 7
// days before the current hour, once the prefix has MinMessages in the
// current hour.
type PumpingGuard struct {
	Disabled bool    `yaml:"disabled"`
	Factor   float64 `yaml:"factor"`      // K, default 5
	MinHour  int64   `yaml:"minMessages"` // M, default 20
	// PrefixDigits is how many digits of the number (country code
	// included) make a prefix; default 4.
	PrefixDigits int `yaml:"prefixDigits"`
	// MinBaseline is how many messages the customer must have sent in the
	// 7 days for the guard to judge (default 100): a new customer has no
	// usual destinations yet.
	MinBaseline int64 `yaml:"minBaseline"`
	// Action is alert (default), hold or refuse.
	Action string `yaml:"action"`
}

// Defaults of the rules.
const (
	DefaultHoldTimeout        = 24 * time.Hour
	DefaultVelocityWindow     = time.Hour
	DefaultGuardFactor        = 5
	DefaultGuardMinMessages   = 20
	DefaultGuardPrefixDigits  = 4
	DefaultGuardMinBaseline   = 100
	OptOutScopeSender         = "sender"
	OptOutScopeCustomer       = "customer"
	velocityPerNumber         = "number"
	velocityPerRange          = "range"
	maxVelocityWindow         = 7 * 24 * time.Hour
	maxHoldTimeout            = smsgw.MaxValidity
	minVelocityWindow         = time.Second
	minGuardPrefixDigits      = 1
	maxGuardPrefixDigits      = 8
	minVelocityRangeDigits    = 2
	maxVelocityRangeDigits    = 14
	defaultVelocityRangeDigit = 8
)

// StopKeywords are the opt-out keywords of every language, upper-cased.
func (r Rules) StopKeywords() []string {
	return keywords(r.OptOut.Stop, []string{"STOP", "UNSUBSCRIBE"})
}

// StartKeywords are the opt-in keywords of every language, upper-cased.
func (r Rules) StartKeywords() []string {
	return keywords(r.OptOut.Start, []string{"START", "UNSTOP"})
}

func keywords(byLang map[string][]string, def []string) []string {
	if len(byLang) == 0 {
		return def
	}
	var out []string
	for _, lang := range sortedKeys(byLang) {
		for _, k := range byLang[lang] {
			out = append(out, strings.ToUpper(strings.TrimSpace(k)))
		}
	}
	return out
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// HoldTimeoutOr is how long a hold waits: d when set, else the configured
// or default timeout.
func (r Rules) HoldTimeoutOr(d time.Duration) time.Duration {
	switch {
	case d > 0:
		return d
	case r.HoldTimeout > 0:
		return r.HoldTimeout
	}
	return DefaultHoldTimeout
}

// SMPPStatusFor is the command_status an SMPP refusal for reason takes.
func (r Rules) SMPPStatusFor(reason string) uint32 {
	if s, ok := r.SMPPStatus[reason]; ok {
		if v, isStatus, err := parseRerouteError(s); err == nil && isStatus {
			return v
		}
	}
	return smppstatus.ESME_RSUBMITFAIL
}

// OptOutScopeOf is the customer's opt-out scope.
func (cr CustomerRules) OptOutScopeOf() string {
	if cr.OptOutScope == "" {
		return OptOutScopeSender
	}
	return cr.OptOutScope
}

// Guard is the pumping guard in force for the customer, with its
// defaults filled in; nil when there is none.
func (c *Config) Guard(cu Customer) *PumpingGuard {
	g := c.Rules.PumpingGuard
	if cu.Rules.PumpingGuard != nil {
		g = cu.Rules.PumpingGuard
	}
	if g == nil || g.Disabled {
		return nil
	}
	out := *g
	if out.Factor <= 0 {
		out.Factor = DefaultGuardFactor
	}
	if out.MinHour <= 0 {
		out.MinHour = DefaultGuardMinMessages
	}
	if out.PrefixDigits <= 0 {
		out.PrefixDigits = DefaultGuardPrefixDigits
	}
	if out.MinBaseline == 0 {
		out.MinBaseline = DefaultGuardMinBaseline
	}
	if out.Action == "" {
		out.Action = smsgw.ActionAlert
	}
	return &out
}

// WindowOf is the velocity limit's window, with its default.
func (v VelocityLimit) WindowOf() time.Duration {
	if v.Window <= 0 {
		return DefaultVelocityWindow
	}
	return v.Window
}

// KeyOf is the number or range a destination counts under, or "" when the
// limit does not apply to it.
func (v VelocityLimit) KeyOf(to string) string {
	if !strings.HasPrefix(to, v.Prefix) {
		return ""
	}
	if v.Per == velocityPerRange {
		digits := v.RangeDigits
		if digits <= 0 {
			digits = defaultVelocityRangeDigit
		}
		if n := 1 + digits; len(to) > n {
			return to[:n] + "*"
		}
	}
	return to
}

// ActionOf is the velocity limit's action, with its default.
func (v VelocityLimit) ActionOf() string {
	if v.Action == "" {
		return smsgw.ActionRefuse
	}
	return v.Action
}

// validateRules checks the gateway's rules and every customer's.
func (c *Config) validateRules() []error {
	var errs []error
	bad := func(line int, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if line > 0 {
			msg = fmt.Sprintf("line %d: %s", line, msg)
		}
		errs = append(errs, fmt.Errorf("%s", msg))
	}
	r := c.Rules
	for _, list := range []struct {
		name   string
		byLang map[string][]string
	}{{"stop", r.OptOut.Stop}, {"start", r.OptOut.Start}} {
		for _, lang := range sortedKeys(list.byLang) {
			for _, k := range list.byLang[lang] {
				if strings.TrimSpace(k) == "" || strings.ContainsAny(strings.TrimSpace(k), " \t") {
					bad(0, "rules.optOut.%s.%s: %q must be one word", list.name, lang, k)
				}
			}
		}
	}
	if r.HoldTimeout < 0 || r.HoldTimeout > maxHoldTimeout {
		bad(0, "rules.holdTimeout must be between 0 and %s", maxHoldTimeout)
	}
	for reason, s := range r.SMPPStatus {
		switch reason {
		case smsgw.ReasonOptedOut, smsgw.ReasonDestinationNotAllowed, smsgw.ReasonContentRefused, smsgw.ReasonVelocityLimit, smsgw.ReasonUnusualDestination:
		default:
			bad(0, "rules.smppStatus: unknown reason %q", reason)
		}
		if v, isStatus, err := parseRerouteError(s); err != nil || !isStatus || v == 0 {
			bad(0, "rules.smppStatus.%s: %q is not an error command_status (a name such as ESME_RSUBMITFAIL, or a number)", reason, s)
		}
	}
	for i, cr := range r.Content {
		for _, e := range validateContentRule(cr) {
			bad(0, "rules.content[%d]: %s", i, e)
		}
	}
	if g := r.PumpingGuard; g != nil {
		for _, e := range validateGuard(*g) {
			bad(0, "rules.pumpingGuard: %s", e)
		}
	}
	for _, cu := range c.Customers {
		cr := cu.Rules
		switch cr.OptOutScope {
		case "", OptOutScopeSender, OptOutScopeCustomer:
		default:
			bad(cu.line, "customer %q: rules.optOutScope must be sender or customer", cu.ID)
		}
		for _, p := range cr.AllowedDestinations {
			if !validPrefix(p) {
				bad(cu.line, "customer %q: rules.allowedDestinations: %q must be '+' and digits", cu.ID, p)
			}
		}
		for i, rule := range cr.Content {
			for _, e := range validateContentRule(rule) {
				bad(cu.line, "customer %q: rules.content[%d]: %s", cu.ID, i, e)
			}
		}
		for i, v := range cr.Velocity {
			if v.Prefix != "" && !validPrefix(v.Prefix) {
				bad(cu.line, "customer %q: rules.velocity[%d]: prefix %q must be '+' and digits", cu.ID, i, v.Prefix)
			}
			switch v.Per {
			case "", velocityPerNumber:
			case velocityPerRange:
				if v.RangeDigits != 0 && (v.RangeDigits < minVelocityRangeDigits || v.RangeDigits > maxVelocityRangeDigits) {
					bad(cu.line, "customer %q: rules.velocity[%d]: rangeDigits must be between %d and %d", cu.ID, i, minVelocityRangeDigits, maxVelocityRangeDigits)
				}
			default:
				bad(cu.line, "customer %q: rules.velocity[%d]: per must be number or range", cu.ID, i)
			}
			if v.Max <= 0 {
				bad(cu.line, "customer %q: rules.velocity[%d]: max must be at least 1", cu.ID, i)
			}
			if v.Window != 0 && (v.Window < minVelocityWindow || v.Window > maxVelocityWindow) {
				bad(cu.line, "customer %q: rules.velocity[%d]: window must be between %s and %s", cu.ID, i, minVelocityWindow, maxVelocityWindow)
			}
			switch v.Action {
			case "", smsgw.ActionRefuse, smsgw.ActionHold, smsgw.ActionAlert:
			default:
				bad(cu.line, "customer %q: rules.velocity[%d]: action must be refuse, hold or alert", cu.ID, i)
			}
		}
		if g := cr.PumpingGuard; g != nil {
			for _, e := range validateGuard(*g) {
				bad(cu.line, "customer %q: rules.pumpingGuard: %s", cu.ID, e)
			}
		}
	}
	return errs
}

func validateContentRule(r ContentRule) []string {
	var problems []string
	if r.Name == "" || !validName(r.Name) {
		problems = append(problems, "name is required (letters, digits, '-' and '_')")
	}
	if len(r.Keywords) == 0 && r.Regex == "" && len(r.Senders) == 0 && len(r.DestinationPrefixes) == 0 && r.Window == nil {
		problems = append(problems, "a rule needs at least one of keywords, regex, senders, destinationPrefixes or window")
	}
	for _, k := range r.Keywords {
		if strings.TrimSpace(k) == "" {
			problems = append(problems, "keywords must not be empty")
		}
	}
	if r.Regex != "" {
		if _, err := regexp.Compile(r.Regex); err != nil {
			problems = append(problems, fmt.Sprintf("regex: %v", err))
		}
	}
	for _, p := range r.DestinationPrefixes {
		if !validPrefix(p) {
			problems = append(problems, fmt.Sprintf("destinationPrefixes: %q must be '+' and digits", p))
		}
	}
	if r.Window != nil {
		if _, err := r.Window.Compile(); err != nil {
			problems = append(problems, fmt.Sprintf("window: %v", err))
		}
	}
	switch r.Action {
	case smsgw.ActionRefuse, smsgw.ActionHold:
	case smsgw.ActionRewriteSender:
		m := smsgw.Message{CustomerID: "x", From: r.Sender, To: "+10000000000", Text: "x"}
		if r.Sender == "" || m.Validate() != nil {
			problems = append(problems, "rewriteSender needs a valid sender")
		}
	case smsgw.ActionTag:
		if r.Tag == "" {
			problems = append(problems, "tag needs a tag")
		}
	default:
		problems = append(problems, "action must be refuse, hold, rewriteSender or tag")
	}
	if r.HoldFor < 0 || r.HoldFor > maxHoldTimeout {
		problems = append(problems, fmt.Sprintf("holdFor must be between 0 and %s", maxHoldTimeout))
	}
	return problems
}

func validateGuard(g PumpingGuard) []string {
	var problems []string
	if g.Factor < 0 {
		problems = append(problems, "factor must not be negative")
	}
	if g.MinHour < 0 || g.MinBaseline < 0 {
		problems = append(problems, "minMessages and minBaseline must not be negative")
	}
	if g.PrefixDigits != 0 && (g.PrefixDigits < minGuardPrefixDigits || g.PrefixDigits > maxGuardPrefixDigits) {
		problems = append(problems, fmt.Sprintf("prefixDigits must be between %d and %d", minGuardPrefixDigits, maxGuardPrefixDigits))
	}
	switch g.Action {
	case "", smsgw.ActionRefuse, smsgw.ActionHold, smsgw.ActionAlert:
	default:
		problems = append(problems, "action must be alert, hold or refuse")
	}
	return problems
}
