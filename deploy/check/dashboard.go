package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// dashboard is the part of Grafana's dashboard JSON model this check reads.
type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
}

type panel struct {
	ID      int      `json:"id"`
	Type    string   `json:"type"`
	Title   string   `json:"title"`
	GridPos *gridPos `json:"gridPos"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"` // a collapsed row's panels
}

type gridPos struct {
	H, W, X, Y int
}

type target struct {
	RefID string `json:"refId"`
	Expr  string `json:"expr"`
}

// minSchemaVersion: Grafana 9 and later.
const minSchemaVersion = 36

// checkDashboard checks a Grafana dashboard: it parses, its panels are
// well-formed, every query parses as PromQL over the gateway's metrics,
// and together they show every required metric.
func checkDashboard(_ string, data []byte) (string, []error) {
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return "", []error{fmt.Errorf("not JSON: %w", err)}
	}
	var problems []error
	if d.Title == "" {
		problems = append(problems, errors.New("no title"))
	}
	if d.UID == "" {
		problems = append(problems, errors.New("no uid (links and provisioning need a stable one)"))
	}
	if d.SchemaVersion < minSchemaVersion {
		problems = append(problems, fmt.Errorf("schemaVersion %d is older than %d", d.SchemaVersion, minSchemaVersion))
	}

	ids := map[int]bool{}
	shown := map[string]bool{}
	queries := 0
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
			if ids[p.ID] {
				problems = append(problems, fmt.Errorf("%s: id used twice", where))
			}
			ids[p.ID] = true
			if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
				problems = append(problems, fmt.Errorf("%s: no gridPos", where))
			}
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if p.Type == "text" {
				continue
			}
			if p.Title == "" {
				problems = append(problems, fmt.Errorf("panel %d: no title", p.ID))
			}
			if len(p.Targets) == 0 {
				problems = append(problems, fmt.Errorf("%s: no targets", where))
			}
			refs := map[string]bool{}
			for _, t := range p.Targets {
				queries++
				if t.RefID == "" || refs[t.RefID] {
					problems = append(problems, fmt.Errorf("%s: refId %q missing or used twice", where, t.RefID))
				}
				refs[t.RefID] = true
				families, errs := checkExpr(t.Expr)
				for _, err := range errs {
					problems = append(problems, fmt.Errorf("%s: %w", where, err))
				}
				for _, f := range families {
					shown[f] = true
				}
			}
		}
	}
	walk(d.Panels)
	if len(ids) == 0 {
		problems = append(problems, errors.New("no panels"))
	}

	var missing []string
	for name, m := range knownMetrics {
		if m.required && !shown[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		problems = append(problems, fmt.Errorf("no panel shows %s", strings.Join(missing, ", ")))
	}
	return fmt.Sprintf("%d panels, %d queries, %d metric families", len(ids), queries, len(shown)), problems
}
