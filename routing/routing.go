// Package routing chooses the upstream connectors for a message from the
// route table in the configuration.
package routing

import (
	"hash/fnv"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
)

// Decision is the outcome of routing one message: the rule that matched and
// the connectors to try, in order. It is recorded in the message's history,
// so a message in flight keeps it when the route table changes.
type Decision struct {
	Route      string   `json:"route"`
	Prefix     string   `json:"prefix"`
	Connectors []string `json:"connectors"`
}

// Request is what routing looks at.
type Request struct {
	MessageID  string // picks among weighted connectors, the same way every time
	CustomerID string
	Group      string
	From       string
	To         string // E.164 with '+'
	At         time.Time
}

// Table is a compiled route table.
type Table struct {
	rules []rule
}

type rule struct {
	config.Route
	customers map[string]bool
	groups    map[string]bool
	source    *regexp.Regexp
	window    *config.Window
}

// Compile builds the matcher of a validated configuration.
func Compile(cfg *config.Config) (*Table, error) {
	t := &Table{}
	for _, r := range cfg.Routes {
		cr := rule{Route: r}
		if len(r.Customers) > 0 {
			cr.customers = set(r.Customers)
		}
		if len(r.Groups) > 0 {
			cr.groups = set(r.Groups)
		}
		if r.Source != "" {
			re, err := regexp.Compile(r.Source)
			if err != nil {
				return nil, smsgw.Errorf(smsgw.EINVALID, "route %s: source: %v", r.Name, err)
			}
			cr.source = re
		}
		if r.TimeWindow != nil {
			w, err := r.TimeWindow.Compile()
			if err != nil {
				return nil, smsgw.Errorf(smsgw.EINVALID, "route %s: %v", r.Name, err)
			}
			cr.window = w
		}
		t.rules = append(t.rules, cr)
	}
	return t, nil
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// Match returns the decision for a message: among the rules whose
// conditions hold, the one with the longest matching prefix (the first in the
// file on a tie). It returns an *smsgw.Error EINVALID when no rule matches.
func (t *Table) Match(req Request) (Decision, error) {
	best, bestLen := -1, -1
	var prefix string
	for i, r := range t.rules {
		p := longestPrefix(r.Prefixes, req.To)
		if len(p) <= bestLen || p == "" || !r.applies(req) {
			continue
		}
		best, bestLen, prefix = i, len(p), p
	}
	if best < 0 {
		return Decision{}, smsgw.Errorf(smsgw.EINVALID, "no route to %s", req.To)
	}
	r := t.rules[best]
	return Decision{Route: r.Name, Prefix: prefix, Connectors: order(r.Connectors, req.MessageID)}, nil
}

func longestPrefix(prefixes []string, to string) string {
	best := ""
	for _, p := range prefixes {
		if strings.HasPrefix(to, p) && len(p) > len(best) {
			best = p
		}
	}
	return best
}

func (r rule) applies(req Request) bool {
	if r.customers != nil || r.groups != nil {
		if !r.customers[req.CustomerID] && !(req.Group != "" && r.groups[req.Group]) {
			return false
		}
	}
	if r.source != nil && !r.source.MatchString(req.From) {
		return false
	}
	if r.window != nil && !r.window.Contains(req.At) {
		return false
	}
	return true
}

// order lists a rule's connectors in the order to try them. Each run of
// consecutive weighted connectors is ordered by a weighted draw seeded by the
// message ID: the load spreads by weight, and the same message always gets
// the same order.
func order(targets []config.RouteTarget, messageID string) []string {
	h := fnv.New64a()
	h.Write([]byte(messageID))
	seed := h.Sum64()
	var out []string
	for i := 0; i < len(targets); {
		if targets[i].Weight <= 0 {
			out = append(out, targets[i].ID)
			i++
			continue
		}
		j := i
		for j < len(targets) && targets[j].Weight > 0 {
			j++
		}
		group := append([]config.RouteTarget(nil), targets[i:j]...)
		for len(group) > 0 {
			total := 0
			for _, g := range group {
				total += g.Weight
			}
			pick := int(seed % uint64(total))
			seed = seed/uint64(total) + seed*0x9E3779B97F4A7C15
			k := 0
			for ; pick >= group[k].Weight; k++ {
				pick -= group[k].Weight
			}
			out = append(out, group[k].ID)
			group = append(group[:k], group[k+1:]...)
		}
		i = j
	}
	return out
}

// Cache compiles the route table of the configuration in force once per
// reload.
type Cache struct {
	live *config.Live
	last atomic.Pointer[cached]
}

type cached struct {
	cfg   *config.Config
	table *Table
}

// NewCache returns a Cache over a live configuration.
func NewCache(live *config.Live) *Cache { return &Cache{live: live} }

// Table returns the compiled table of the configuration in force.
func (c *Cache) Table() (*Table, error) {
	cfg := c.live.Config()
	if l := c.last.Load(); l != nil && l.cfg == cfg {
		return l.table, nil
	}
	t, err := Compile(cfg)
	if err != nil {
		return nil, err
	}
	c.last.Store(&cached{cfg: cfg, table: t})
	return t, nil
}

// Match routes one message with the configuration in force.
func (c *Cache) Match(req Request) (Decision, error) {
	t, err := c.Table()
	if err != nil {
		return Decision{}, err
	}
	if req.Group == "" {
		cu, _ := c.live.Config().Customer(req.CustomerID)
		req.Group = cu.Group
	}
	return t.Match(req)
}
