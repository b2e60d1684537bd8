// Package config loads the gateway's configuration: customers, upstream
// connectors and routes. Loading is strict (unknown fields are errors), every
// problem is reported at once with its line, and environment variables
// written as ${NAME} in string values are substituted so secrets stay out of
// the file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/segment"
)

// Config is the whole configuration file.
type Config struct {
	Customers  []Customer  `yaml:"customers"`
	Connectors []Connector `yaml:"connectors"`
	Routes     []Route     `yaml:"routes"`
	// SMTP is the relay that email notifications go out through.
	SMTP SMTPRelay `yaml:"smtp"`
	// Email is the email-to-SMS entry point.
	Email EmailGateway `yaml:"email"`
	// Webhooks is what every customer's webhooks share.
	Webhooks Webhooks `yaml:"webhooks"`
	// Admin is who may use the admin API (docs/admin.md).
	Admin Admin `yaml:"admin"`
	// Retention is how long messages are kept (docs/retention.md).
	Retention Retention `yaml:"retention"`
	// PriceLists price the customers' messages (billing.go).
	PriceLists []PriceList `yaml:"priceLists"`
	// Rules are the gateway-wide commercial controls (opt-out keywords,
	// content rules, pumping guard).
	Rules Rules `yaml:"rules"`

	idx    *customerIndex       // built by Parse; see index
	policy *smsgw.WebhookPolicy // built by Parse; see WebhookPolicy
}

// Webhooks holds the settings of every customer's webhooks.
type Webhooks struct {
	// AllowNetworks lists networks (CIDR, or a single address) webhooks may
	// reach although they are loopback, private, link-local or otherwise
	// special-purpose, which webhooks never reach otherwise. For example
	// ["127.0.0.0/8"] for a receiver on the same machine in development.
	AllowNetworks []string `yaml:"allowNetworks"`
}

// Customer is an account allowed to submit messages.
type Customer struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Disabled refuses the customer's API keys, SMPP binds and email, and
	// its numbers take no inbound messages, until it is enabled again. Its
	// messages in flight go on.
	Disabled bool `yaml:"disabled"`
	// APIKeys are "sha256:<hex>" hashes of the customer's API keys (see
	// `smsgw hash-key`), or, for development only, "plain:<key>".
	APIKeys []string `yaml:"apiKeys"`
	Webhook Webhook  `yaml:"webhook"`
	SMPP    SMPP     `yaml:"smpp"`
	// Validity is the default validity period of this customer's messages.
	Validity time.Duration `yaml:"validity"`
	// Group names a set of customers that routes can match together.
	Group string `yaml:"group"`
	// TPS caps this customer's submissions per second across entry points (0: no cap).
	TPS float64 `yaml:"tps"`
	// MaxBacklog caps this customer's messages accepted, due and not yet
	// handed upstream, across replicas: above it submissions are refused
	// with a time to retry (0: the gateway's -max-backlog; -1: no cap).
	MaxBacklog int `yaml:"maxBacklog"`
	// AllowedSenders, when set, lists the source addresses (exact, or a
	// regular expression between slashes) the customer may send from.
	AllowedSenders []string `yaml:"allowedSenders"`
	// Notify says which status changes reach the customer and how.
	Notify Notify `yaml:"notify"`
	// Encoding overrides how the customer's texts are encoded.
	Encoding Encoding `yaml:"encoding"`
	// Numbers are the virtual numbers and short codes the customer owns:
	// mobile-originated messages to them are delivered to the customer.
	Numbers []Number `yaml:"numbers"`
	// EmailIngress identifies the customer for email-to-SMS.
	EmailIngress EmailIngress `yaml:"emailIngress"`
	// RetentionDays is how many days the customer's messages are kept in
	// the event store and the reporting database: 0 for retention.defaultDays,
	// -1 for ever.
	RetentionDays int `yaml:"retentionDays"`
	// Billing is how the customer pays: prepaid or postpaid (billing.go).
	Billing Billing `yaml:"billing"`
	// Rules are the customer's commercial controls: opt-out scope,
	// allowed destinations, content rules, velocity limits, pumping guard.
	Rules CustomerRules `yaml:"rules"`

	line int
}

// SenderAllowed reports whether the customer may send from the source
// address from: one of its allowedSenders (exact names or numbers, or
// regular expressions written between slashes); any, when it lists none.
func (cu Customer) SenderAllowed(from string) bool {
	if len(cu.AllowedSenders) == 0 {
		return true
	}
	for _, a := range cu.AllowedSenders {
		if len(a) > 2 && strings.HasPrefix(a, "/") && strings.HasSuffix(a, "/") {
			if re, err := regexp.Compile(a[1 : len(a)-1]); err == nil && re.MatchString(from) {
				return true
			}
		} else if a == from {
			return true
		}
	}
	return false
}

// Webhook is where a customer's receipts are posted.
type Webhook struct {
	URL    string `yaml:"url"`
	Secret string `yaml:"secret"`
	// PreviousSecret, while the secret is being rotated, is the secret
	// before Secret: webhooks carry a signature under each until it is
	// removed, so the receiver can switch to the new secret at any time.
	PreviousSecret string `yaml:"previousSecret"`
}

// SMPP holds a customer's SMPP access to our SMSC.
type SMPP struct {
	SystemID string `yaml:"systemId"`
	// Password is hashed: "bcrypt:<hash>" (see `smsgw hash-password`), or,
	// for development only, "plain:<password>".
	Password string `yaml:"password"`
	// MaxBinds caps the customer's concurrent binds (0: 10).
	MaxBinds int `yaml:"maxBinds"`
	// AllowedIPs, when set, lists the addresses or CIDRs binds may come from.
	AllowedIPs []string `yaml:"allowedIps"`
}

// Notify is a customer's notification preferences.
type Notify struct {
	// Channels are "webhook", "smpp" and "email". Empty means webhook when
	// a webhook URL is configured, plus smpp for messages submitted over SMPP
	// with a receipt requested.
	Channels []string `yaml:"channels"`
	// Statuses is "final" (the default: only the final status) or "all"
	// (also SENT and intermediate receipts such as ENROUTE and ACCEPTD).
	Statuses string `yaml:"statuses"`
	// Email lists the recipients of email notifications.
	Email []string `yaml:"email"`
	// RetryFor is how long a notification is retried (default 24h).
	RetryFor time.Duration `yaml:"retryFor"`
}

// Encoding is a customer's text encoding options.
type Encoding struct {
	// Force is "", "GSM7" or "UCS2" (also "LATIN1", "IA5").
	Force string `yaml:"force"`
	// Transliterate maps look-alikes (smart quotes, dashes) into GSM 7-bit.
	Transliterate bool `yaml:"transliterate"`
	// MaxSegments caps a message's parts (default 10).
	MaxSegments int `yaml:"maxSegments"`
}

// Number is a virtual number or short code a customer owns, optionally only
// for messages whose first word is Keyword.
type Number struct {
	Number  string `yaml:"number"`
	Keyword string `yaml:"keyword"`
}

// EmailIngress identifies a customer sending email: by SMTP AUTH with
// Username/Password ("bcrypt:…" or "plain:…"), or, only when
// TrustEnvelopeSender says so, by the envelope sender being one of
// AllowedSenders.
type EmailIngress struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// AllowedSenders are envelope senders (MAIL FROM: an address, or
	// "@domain") that identify the customer without AUTH.
	AllowedSenders []string `yaml:"allowedSenders"`
	// TrustEnvelopeSender accepts AllowedSenders as proof of who sends.
	// Anyone can write any address in MAIL FROM, so it is required with
	// AllowedSenders, as the operator's statement that the network vouches
	// for the clients (a private network, a relay that authenticates).
	TrustEnvelopeSender bool `yaml:"trustEnvelopeSender"`
	// PrependSubject puts the subject before the body text.
	PrependSubject bool `yaml:"prependSubject"`
}

// SMTPRelay is where email notifications are sent through.
type SMTPRelay struct {
	Address  string `yaml:"address"` // host:port
	From     string `yaml:"from"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	StartTLS bool   `yaml:"startTls"`
}

// EmailGateway is the email-to-SMS entry point's configuration.
type EmailGateway struct {
	// Domains are the recipient domains: mail to <msisdn>@<domain> becomes an SMS.
	Domains []string `yaml:"domains"`
	// MaxSize is the largest message accepted, in bytes (default 64 KiB).
	MaxSize int `yaml:"maxSize"`
}

// Route is one rule of the route table. A message matches a rule when its
// destination starts with one of Prefixes and every other condition given
// holds; of the matching rules the one with the longest prefix wins, and of
// equally long ones the first in the file.
type Route struct {
	Name     string   `yaml:"name"`
	Prefixes []string `yaml:"prefixes"`
	// Customers and Groups, when set, limit the rule to those customers.
	Customers []string `yaml:"customers"`
	Groups    []string `yaml:"groups"`
	// Source, when set, is a regular expression the source address must match.
	Source string `yaml:"source"`
	// TimeWindow, when set, limits the rule to certain days and hours.
	TimeWindow *TimeWindow `yaml:"timeWindow"`
	// Connectors are tried in order: the first for the message, the next
	// when it is not bound, its retries are exhausted or it answers with one
	// of its re-route errors. Consecutive entries with a weight share the
	// load among themselves by weight.
	Connectors []RouteTarget `yaml:"connectors"`

	line int
}

// RouteTarget is a connector in a route, written as its ID or as {id, weight}.
type RouteTarget struct {
	ID     string `yaml:"id"`
	Weight int    `yaml:"weight"`
}

// UnmarshalYAML accepts a plain connector ID as well as a mapping.
func (t *RouteTarget) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		t.ID = n.Value
		return nil
	}
	type plain RouteTarget
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*t = RouteTarget(p)
	return nil
}

// TimeWindow is a weekly window in a time zone: Days (mon…sun, empty for
// every day) between From and To ("08:00", "20:00"; To before From crosses
// midnight).
type TimeWindow struct {
	Timezone string   `yaml:"timezone"`
	Days     []string `yaml:"days"`
	From     string   `yaml:"from"`
	To       string   `yaml:"to"`
}

// Line is where the route was defined in its file (0 if not from a file).
func (r Route) Line() int { return r.line }

// Load reads and validates a configuration file.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(raw, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Parse decodes strictly, substitutes ${NAME} references with lookup and
// validates. References are substituted after the YAML is parsed, into
// string values only, so a value taken from the environment is taken whole
// whatever it holds ('#', ": ", quotes, newlines) and cannot change the
// structure of the file; a value is never scanned for references again.
func Parse(raw []byte, lookup func(string) (string, bool)) (*Config, error) {
	// Strictly, as written: unknown fields and wrong types, with their lines.
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	var missing []string
	expandEnv(&root, lookup, &missing)
	if len(missing) > 0 {
		return nil, fmt.Errorf("environment variables not set: %s", strings.Join(missing, ", "))
	}
	cfg = Config{}
	if err := root.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	cfg.recordLines(&root)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.idx = newCustomerIndex(cfg.Customers)
	p := cfg.webhookPolicy()
	cfg.policy = &p
	return &cfg, nil
}

// expandEnv substitutes ${NAME} references in the string values under n
// (never in keys), noting the names lookup does not know in missing.
func expandEnv(n *yaml.Node, lookup func(string) (string, bool), missing *[]string) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			expandEnv(c, lookup, missing)
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			expandEnv(n.Content[i], lookup, missing)
		}
	case yaml.ScalarNode:
		if n.ShortTag() != "!!str" || !strings.Contains(n.Value, "${") {
			return
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := envRef.FindStringSubmatch(m)[1]
			v, ok := lookup(name)
			if !ok {
				*missing = append(*missing, fmt.Sprintf("%s (line %d)", name, n.Line))
			}
			return v
		})
		// A string it stays, even if the value reads as a number, a boolean or null.
		n.Tag = "!!str"
	}
	// An alias is expanded where its anchor is defined.
}

// recordLines remembers the line of each list entry for error messages.
func (c *Config) recordLines(root *yaml.Node) {
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		items := m.Content[i+1].Content
		switch m.Content[i].Value {
		case "customers":
			for j := range c.Customers {
				if j < len(items) {
					c.Customers[j].line = items[j].Line
				}
			}
		case "connectors":
			for j := range c.Connectors {
				if j < len(items) {
					c.Connectors[j].line = items[j].Line
				}
			}
		case "routes":
			for j := range c.Routes {
				if j < len(items) {
					c.Routes[j].line = items[j].Line
				}
			}
		case "priceLists":
			for j := range c.PriceLists {
				if j < len(items) {
					c.PriceLists[j].line = items[j].Line
				}
			}
		}
	}
}

// Validate checks the configuration across fields and returns every problem.
func (c *Config) Validate() error {
	var errs []error
	bad := func(line int, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if line > 0 {
			msg = fmt.Sprintf("line %d: %s", line, msg)
		}
		errs = append(errs, errors.New(msg))
	}

	policy := c.webhookPolicy()
	for _, n := range c.Webhooks.AllowNetworks {
		if _, err := parseNetwork(n); err != nil {
			bad(0, "webhooks.allowNetworks: %q is not a network (CIDR) or an address", n)
		}
	}
	customers := map[string]bool{}
	systemIDs := map[string]bool{}
	apiKeys := map[string]string{} // key hash: customer
	for i, cu := range c.Customers {
		switch {
		case cu.ID == "":
			bad(cu.line, "customers[%d]: id is required", i)
		case customers[cu.ID]:
			bad(cu.line, "customers[%d]: duplicate id %q", i, cu.ID)
		}
		customers[cu.ID] = true
		for _, k := range cu.APIKeys {
			h, err := apiKeyHash(k)
			if err != nil {
				bad(cu.line, "customer %q: %v", cu.ID, err)
				continue
			}
			switch other, dup := apiKeys[h]; {
			case dup && other == cu.ID:
				bad(cu.line, "customer %q: an API key is listed twice", cu.ID)
			case dup:
				bad(cu.line, "customer %q: an API key is also customer %q's", cu.ID, other)
			}
			apiKeys[h] = cu.ID
		}
		if cu.Webhook.URL != "" {
			if err := policy.CheckURL(cu.Webhook.URL); err != nil {
				bad(cu.line, "customer %q: webhook.url %v", cu.ID, err)
			}
		}
		if cu.Webhook.PreviousSecret != "" && cu.Webhook.Secret == "" {
			bad(cu.line, "customer %q: webhook.previousSecret needs webhook.secret (the new secret)", cu.ID)
		}
		if cu.SMPP.SystemID != "" {
			if systemIDs[cu.SMPP.SystemID] {
				bad(cu.line, "customer %q: smpp.systemId %q is used twice", cu.ID, cu.SMPP.SystemID)
			}
			systemIDs[cu.SMPP.SystemID] = true
			if len(cu.SMPP.SystemID) > 15 {
				bad(cu.line, "customer %q: smpp.systemId is longer than 15 characters", cu.ID)
			}
		}
		if _, err := segment.ParseEncoding(cu.Encoding.Force); err != nil || cu.Encoding.MaxSegments < 0 || cu.Encoding.MaxSegments > segment.MaxSegmentsLimit {
			bad(cu.line, "customer %q: encoding.force must be GSM7, UCS2, LATIN1 or IA5, and maxSegments between 0 and %d", cu.ID, segment.MaxSegmentsLimit)
		}
		for _, a := range cu.AllowedSenders {
			if len(a) > 2 && strings.HasPrefix(a, "/") && strings.HasSuffix(a, "/") {
				if _, err := regexp.Compile(a[1 : len(a)-1]); err != nil {
					bad(cu.line, "customer %q: allowedSenders %q is not a valid regular expression: %v", cu.ID, a, err)
				}
			}
		}
		if cu.TPS < 0 {
			bad(cu.line, "customer %q: tps must not be negative", cu.ID)
		}
		if cu.MaxBacklog < -1 {
			bad(cu.line, "customer %q: maxBacklog must be a number of messages, 0 for the gateway's default or -1 for no cap", cu.ID)
		}
		if cu.Validity < 0 || cu.Validity > smsgw.MaxValidity {
			bad(cu.line, "customer %q: validity must be between 0 and %s", cu.ID, smsgw.MaxValidity)
		}
	}

	connectors := map[string]bool{}
	for _, co := range c.Connectors {
		connectors[co.ID] = true
	}
	errs = append(errs, c.validateConnectors()...)

	errs = append(errs, c.validateRoutes(connectors, customers)...)
	errs = append(errs, c.validateSMPP()...)
	errs = append(errs, c.validateNotify()...)
	errs = append(errs, c.validateEmail()...)
	errs = append(errs, c.validateAdmin(apiKeys)...)
	errs = append(errs, c.validateRetention()...)
	errs = append(errs, c.validateBilling(customers)...)
	errs = append(errs, c.validateRules()...)
	return errors.Join(errs...)
}

func validName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return s != ""
}

// validateRoutes checks each rule and that no rule is unreachable: a later
// rule whose prefix is already taken by an earlier rule with no conditions
// can never match.
func (c *Config) validateRoutes(connectors, customers map[string]bool) []error {
	var errs []error
	bad := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("line %d: "+format, append([]any{line}, args...)...))
	}
	groups := map[string]bool{}
	for _, cu := range c.Customers {
		if cu.Group != "" {
			groups[cu.Group] = true
		}
	}
	unconditional := map[string]string{} // prefix → the rule that always takes it
	for i, r := range c.Routes {
		name := r.Name
		if name == "" {
			name = fmt.Sprintf("routes[%d]", i)
		}
		if len(r.Prefixes) == 0 {
			bad(r.line, "route %s: at least one prefix is required (use \"+\" for every destination)", name)
		}
		conditional := len(r.Customers) > 0 || len(r.Groups) > 0 || r.Source != "" || r.TimeWindow != nil
		seen := map[string]bool{}
		for _, p := range r.Prefixes {
			if !validPrefix(p) {
				bad(r.line, "route %s: prefix %q must be '+' followed by digits", name, p)
			}
			if seen[p] {
				bad(r.line, "route %s: prefix %q is listed twice", name, p)
			}
			seen[p] = true
			if other, taken := unconditional[p]; taken {
				bad(r.line, "route %s: prefix %q is already routed by %s, so this rule is unreachable for it", name, p, other)
			} else if !conditional {
				unconditional[p] = name
			}
		}
		for _, id := range r.Customers {
			if !customers[id] {
				bad(r.line, "route %s: unknown customer %q", name, id)
			}
		}
		for _, g := range r.Groups {
			if !groups[g] {
				bad(r.line, "route %s: no customer is in group %q", name, g)
			}
		}
		if r.Source != "" {
			if _, err := regexp.Compile(r.Source); err != nil {
				bad(r.line, "route %s: source %q is not a valid regular expression: %v", name, r.Source, err)
			}
		}
		if w := r.TimeWindow; w != nil {
			if _, err := w.Compile(); err != nil {
				bad(r.line, "route %s: timeWindow: %v", name, err)
			}
		}
		if len(r.Connectors) == 0 {
			bad(r.line, "route %s: at least one connector is required", name)
		}
		used := map[string]bool{}
		for _, t := range r.Connectors {
			switch {
			case !connectors[t.ID]:
				bad(r.line, "route %s: unknown connector %q", name, t.ID)
			case used[t.ID]:
				bad(r.line, "route %s: connector %q is listed twice", name, t.ID)
			case t.Weight < 0:
				bad(r.line, "route %s: connector %q has a negative weight", name, t.ID)
			}
			used[t.ID] = true
		}
	}
	return errs
}

func validPrefix(p string) bool {
	if !strings.HasPrefix(p, "+") {
		return false
	}
	for _, r := range p[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func apiKeyHash(k string) (string, error) {
	switch {
	case strings.HasPrefix(k, "sha256:") && len(k) == len("sha256:")+64:
		return strings.ToLower(strings.TrimPrefix(k, "sha256:")), nil
	case strings.HasPrefix(k, "plain:") && len(k) > len("plain:"):
		return smsgw.HashAPIKey(strings.TrimPrefix(k, "plain:")), nil
	}
	return "", fmt.Errorf("api key must be \"sha256:<64 hex digits>\" or \"plain:<key>\"")
}

// DomainCustomers returns the customers as domain values, API keys hashed.
func (c *Config) DomainCustomers() []*smsgw.Customer {
	out := make([]*smsgw.Customer, 0, len(c.Customers))
	for _, cu := range c.Customers {
		d := &smsgw.Customer{ID: cu.ID, Name: cu.Name, WebhookURL: cu.Webhook.URL,
			WebhookSecret: cu.Webhook.Secret, WebhookPreviousSecret: cu.Webhook.PreviousSecret}
		for _, k := range cu.APIKeys {
			if h, err := apiKeyHash(k); err == nil {
				d.APIKeyHashes = append(d.APIKeyHashes, h)
			}
		}
		out = append(out, d)
	}
	return out
}

// WebhookPolicy is the addresses webhooks may reach under this configuration.
func (c *Config) WebhookPolicy() smsgw.WebhookPolicy {
	if c.policy != nil {
		return *c.policy
	}
	return c.webhookPolicy()
}

func (c *Config) webhookPolicy() smsgw.WebhookPolicy {
	var p smsgw.WebhookPolicy
	for _, n := range c.Webhooks.AllowNetworks {
		if prefix, err := parseNetwork(n); err == nil {
			p.Allow = append(p.Allow, prefix)
		}
	}
	return p
}

// parseNetwork reads a CIDR, or a single address as the network of just it.
func parseNetwork(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%s has a zone", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	return p.Masked(), err
}
