// Package routing chooses the upstream connectors for a message from the
// route table in the configuration.
package routing

import (
	"strings"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
)

// Decision is the outcome of routing one message: the rule that matched and
// the connectors to try, in order.
type Decision struct {
	Route      string   `json:"route"`
	Prefix     string   `json:"prefix"`
	Connectors []string `json:"connectors"`
}

// Match returns the route for a destination in E.164 form: the rule with the
// longest matching prefix. It returns an *smsgw.Error EINVALID when no rule
// matches.
func Match(cfg *config.Config, to string) (Decision, error) {
	best := -1
	var d Decision
	for _, r := range cfg.Routes {
		for _, p := range r.Prefixes {
			if strings.HasPrefix(to, p) && len(p) > best {
				best = len(p)
				d = Decision{Route: r.Name, Prefix: p, Connectors: append([]string(nil), r.Connectors...)}
			}
		}
	}
	if best < 0 {
		return Decision{}, smsgw.Errorf(smsgw.EINVALID, "no route to %s", to)
	}
	return d, nil
}
