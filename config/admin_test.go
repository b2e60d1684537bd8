package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// Marshal writes what Parse reads back to the same configuration: the
// repository's example configurations survive the round trip.
func TestMarshalRoundTrips(t *testing.T) {
	for _, path := range []string{"testdata/two-carriers.yaml", "../scripts/dev-config.yaml"} {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		env := func(name string) (string, bool) { return "x", true }
		raw = []byte(strings.ReplaceAll(string(raw), "@UPSTREAM@", "127.0.0.1:2776")) // as scripts/dev.sh fills it in
		cfg, err := Parse(raw, env)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out, err := cfg.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(out, noEnv)
		if err != nil {
			t.Fatalf("%s marshalled does not parse: %v\n%s", path, err, out)
		}
		if d := Diff(cfg, back); len(d) > 0 {
			t.Errorf("%s: the round trip changed %v", path, d)
		}
		for i := range cfg.Customers {
			cfg.Customers[i].line, back.Customers[i].line = 0, 0
		}
		for i := range cfg.Connectors {
			cfg.Connectors[i].line, back.Connectors[i].line = 0, 0
		}
		for i := range cfg.Routes {
			cfg.Routes[i].line, back.Routes[i].line = 0, 0
		}
		cfg.idx, back.idx, cfg.policy, back.policy = nil, nil, nil, nil
		if !reflect.DeepEqual(cfg, back) {
			t.Errorf("%s: the round trip is not the same configuration:\n%s", path, out)
		}
	}
}

func TestDiffRedactsSecrets(t *testing.T) {
	old, err := Parse([]byte(`
customers:
  - {id: a, apiKeys: ["plain:k1"], tps: 1, webhook: {url: "https://example.com/h", secret: s3cret}}
connectors:
  - {id: c, address: "h:1", systemId: gw, password: pw1}
routes:
  - {name: r, prefixes: ["+1"], connectors: [c]}
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	next, err := Parse([]byte(`
customers:
  - {id: a, apiKeys: ["plain:k2"], tps: 2, webhook: {url: "https://example.com/h", secret: n3w}, smpp: {systemId: a, password: "plain:pw9"}}
  - {id: b}
connectors:
  - {id: c, address: "h:2", systemId: gw, password: pw2}
retention: {defaultDays: 30}
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Diff(old, next), "\n")
	want := strings.Join([]string{
		"~ customer a: apiKeys changed (secret); smpp - → {password: (secret), systemId: a}; tps 1 → 2; webhook.secret changed (secret)",
		"+ customer b",
		"~ connector c: address h:1 → h:2; password changed (secret)",
		"- route r",
		"~ retention: defaultDays - → 30",
	}, "\n")
	if got != want {
		t.Errorf("diff:\n%s\nwant\n%s", got, want)
	}
	for _, secret := range []string{"k1", "k2", "s3cret", "n3w", "pw1", "pw2", "pw9"} {
		if strings.Contains(got, secret) {
			t.Errorf("the diff shows %q", secret)
		}
	}
}

func TestAdminKeys(t *testing.T) {
	_, err := Parse([]byte(`
admin:
  keys:
    - {name: ops, key: "plain:same"}
    - {name: ops, key: "plain:other"}
    - {name: bad, key: "nothing"}
customers:
  - {id: a, apiKeys: ["plain:same"]}
`), noEnv)
	for _, want := range []string{`admin.keys[1]: name "ops" is used twice`, `admin key "bad": api key must be`, `admin key "ops": the key is also customer "a"'s API key`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	cfg, err := Parse([]byte(`admin: {keys: [{name: ops, key: "plain:admin-key"}]}`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	l := Static(cfg)
	if name, ok := l.AdminByKey("admin-key"); !ok || name != "ops" {
		t.Errorf("AdminByKey: %q %v", name, ok)
	}
	if _, ok := l.AdminByKey("other"); ok {
		t.Error("an unknown key is an admin key")
	}
}

// Price lists survive the stored configuration's round trip: prices are
// written back as the decimals they were read from.
func TestMarshalKeepsPriceLists(t *testing.T) {
	src := `
customers:
  - {id: a, apiKeys: ["plain:k1"], billing: {mode: prepaid}}
connectors:
  - {id: c, address: "h:1", systemId: gw, password: pw1}
routes:
  - {name: r, prefixes: ["+1"], connectors: [c]}
priceLists:
  - {id: std, currency: EUR, customers: [a], default: 0.07, rates: [{prefix: "+1", price: 0.065, from: 2026-01-01T00:00:00Z}]}
`
	cfg, err := Parse([]byte(src), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out, noEnv)
	if err != nil {
		t.Fatalf("marshalled configuration does not parse: %v\n%s", err, out)
	}
	if d := Diff(cfg, back); len(d) != 0 || back.PriceLists[0].Rates[0].Price.Micros != 65000 || back.PriceLists[0].Default.Micros != 70000 {
		t.Errorf("round trip changed %v\n%s", d, out)
	}
}
