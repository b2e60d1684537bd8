package routing

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
)

func noEnv(string) (string, bool) { return "", false }

type tableCase struct {
	Name       string   `yaml:"name"`
	To         string   `yaml:"to"`
	Customer   string   `yaml:"customer"`
	From       string   `yaml:"from"`
	At         string   `yaml:"at"`
	Route      string   `yaml:"route"`
	Connectors []string `yaml:"connectors"`
}

func TestRouteTableFromYAML(t *testing.T) {
	raw, err := os.ReadFile("testdata/routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Config string      `yaml:"config"`
		Cases  []tableCase `yaml:"cases"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(file.Config), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	live := config.Static(cfg)
	cache := NewCache(live)
	for _, c := range file.Cases {
		t.Run(c.Name, func(t *testing.T) {
			// fixed date: At is only checked against the route's time window; routing never reads the clock
			at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
			if c.At != "" {
				if at, err = time.Parse(time.RFC3339, c.At); err != nil {
					t.Fatal(err)
				}
			}
			d, err := cache.Match(Request{MessageID: "m", CustomerID: c.Customer, From: c.From, To: c.To, At: at})
			if err != nil {
				t.Fatal(err)
			}
			if d.Route != c.Route {
				t.Errorf("route %s, want %s", d.Route, c.Route)
			}
			if c.Connectors != nil && strings.Join(d.Connectors, ",") != strings.Join(c.Connectors, ",") {
				t.Errorf("connectors %v, want %v", d.Connectors, c.Connectors)
			}
		})
	}
}

func TestNoRoute(t *testing.T) {
	cfg, err := config.Parse([]byte("connectors: [{id: a, address: \"h:1\"}]\nroutes: [{name: au, prefixes: [\"+61\"], connectors: [a]}]\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	table, _ := Compile(cfg)
	if _, err := table.Match(Request{To: "+4915112345678"}); smsgw.ErrorCode(err) != smsgw.EINVALID {
		t.Fatalf("got %v, want EINVALID", err)
	}
}

func TestWeightsSpreadLoadAndStayStable(t *testing.T) {
	cfg, err := config.Parse([]byte(`
connectors: [{id: a, address: "h:1"}, {id: b, address: "h:2"}, {id: z, address: "h:3"}]
routes:
  - name: au
    prefixes: ["+61"]
    connectors: [{id: a, weight: 3}, {id: b, weight: 1}, z]
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	table, _ := Compile(cfg)
	first := map[string]int{}
	for i := range 4000 {
		id := fmt.Sprintf("msg-%d", i)
		d, err := table.Match(Request{MessageID: id, To: "+61412345678"})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Connectors) != 3 || d.Connectors[2] != "z" {
			t.Fatalf("order %v: the unweighted failover must come last", d.Connectors)
		}
		first[d.Connectors[0]]++
		again, _ := table.Match(Request{MessageID: id, To: "+61412345678"})
		if strings.Join(again.Connectors, ",") != strings.Join(d.Connectors, ",") {
			t.Fatalf("%s routed %v then %v", id, d.Connectors, again.Connectors)
		}
	}
	if share := float64(first["a"]) / 4000; share < 0.70 || share > 0.80 {
		t.Fatalf("a got %.2f of the first choices, want about 0.75 (%v)", share, first)
	}
}

func TestRouteValidation(t *testing.T) {
	_, err := config.Parse([]byte(`customers: [{id: acme}]
connectors: [{id: a, address: "h:1"}]
routes:
  - name: r1
    prefixes: ["+61"]
    connectors: [a]
  - name: r2
    prefixes: ["+61"]
    connectors: [a, a, ghost]
  - name: r3
    prefixes: ["+64"]
    customers: [nobody]
    groups: [nogroup]
    source: "(["
    timeWindow: {timezone: Mars/Olympus, days: [funday], from: "25:00"}
    connectors: [{id: a, weight: -1}]
`), noEnv)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		`line 7: route r2: prefix "+61" is already routed by r1, so this rule is unreachable`,
		`line 7: route r2: connector "a" is listed twice`,
		`line 7: route r2: unknown connector "ghost"`,
		`line 10: route r3: unknown customer "nobody"`,
		`no customer is in group "nogroup"`,
		`source "([" is not a valid regular expression`,
		`unknown timezone "Mars/Olympus"`,
		`negative weight`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}
