package config

import (
	"net/netip"
	"os"
	"strings"
	"testing"
)

func noEnv(string) (string, bool) { return "", false }

func TestParseReportsEveryProblemWithLines(t *testing.T) {
	_, err := Parse([]byte(`customers:
  - id: a
    apiKeys: ["nohash"]
  - id: a
connectors:
  - id: sim
    address: nowhere
routes:
  - name: r1
    prefixes: ["+61", "61x"]
    connectors: [sim, ghost]
  - name: r2
    prefixes: ["+61"]
    connectors: [sim]
`), noEnv)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{
		"line 2: customer \"a\": api key must be",
		"line 4: customers[1]: duplicate id \"a\"",
		"line 6: connector \"sim\": address must be host:port",
		"prefix \"61x\" must be '+'",
		"unknown connector \"ghost\"",
		"line 12: route r2: prefix \"+61\" is already routed by r1",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestParseRejectsUnknownFields(t *testing.T) {
	_, err := Parse([]byte("customers:\n  - id: a\n    apikeys: []\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "apikeys") {
		t.Fatalf("got %v, want an unknown field error", err)
	}
}

func TestParseExpandsEnvironment(t *testing.T) {
	env := func(k string) (string, bool) {
		if k == "SIM_PASSWORD" {
			return "s3cret", true
		}
		return "", false
	}
	cfg, err := Parse([]byte("connectors:\n  - {id: sim, address: \"127.0.0.1:2776\", password: \"${SIM_PASSWORD}\"}\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Connectors[0].Password != "s3cret" {
		t.Fatalf("password = %q", cfg.Connectors[0].Password)
	}
	if _, err := Parse([]byte("connectors:\n  - {id: sim, address: \"h:1\", password: \"${NOPE}\"}\n"), noEnv); err == nil || !strings.Contains(err.Error(), "NOPE") {
		t.Fatalf("missing variable: got %v", err)
	}
}

func TestAPIKeys(t *testing.T) {
	cfg, err := Parse([]byte("customers:\n  - {id: demo, apiKeys: [\"plain:demo-key\"]}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	l := Static(cfg)
	if c, ok := l.CustomerByAPIKey("demo-key"); !ok || c.ID != "demo" {
		t.Fatalf("demo-key: %v %v", c, ok)
	}
	if _, ok := l.CustomerByAPIKey("other"); ok {
		t.Fatal("wrong key accepted")
	}
}

func TestTwoCarrierExample(t *testing.T) {
	env := func(k string) (string, bool) { return "s3cr3t", true }
	raw, err := os.ReadFile("testdata/two-carriers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(raw, env)
	if err != nil {
		t.Fatalf("the documented example must load: %v", err)
	}
	if len(cfg.Connectors) != 3 || len(cfg.Routes) != 5 {
		t.Fatalf("got %d connectors and %d routes", len(cfg.Connectors), len(cfg.Routes))
	}
}

// Secrets are taken whole, whatever they hold, wherever the reference is:
// plain, quoted or inside a longer value.
func TestParseTakesSecretsWholeAfterTheYAMLIsParsed(t *testing.T) {
	secrets := map[string]string{
		"HASH":    "s3 #cret",
		"COLON":   "a: b",
		"QUOTES":  `it's "quoted"`,
		"NEWLINE": "line one\nline two: x\n  - y",
		"NUMBER":  "12345",
		"NULL":    "null",
		"REF":     "${HASH}",
		"BRACKET": "[x, y]",
	}
	env := func(k string) (string, bool) { v, ok := secrets[k]; return v, ok }
	raw := []byte(`email: {domains: [sms.example.com]}
customers:
  - id: acme
    webhook:
      url: https://hooks.example.com/sms
      secret: ${HASH}
    smpp: {systemId: acme, password: "plain:${COLON}"}
  - id: beta
    webhook:
      url: https://hooks.example.com/beta
      secret: '${QUOTES}'
    emailIngress: {username: beta, password: "plain:${NEWLINE}"}
  - id: gamma
    webhook: {url: "https://hooks.example.com/g", secret: "${NUMBER}", previousSecret: '${NULL}'}
    smpp:
      systemId: gamma
      password: plain:${REF}
  - id: delta
    smpp: {systemId: delta, password: "plain:${BRACKET}"}
# a reference in a comment is not looked up: ${NOT_SET}
`)
	cfg, err := Parse(raw, env)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ got, want string }{
		{cfg.Customers[0].Webhook.Secret, secrets["HASH"]},
		{cfg.Customers[0].SMPP.Password, "plain:" + secrets["COLON"]},
		{cfg.Customers[1].Webhook.Secret, secrets["QUOTES"]},
		{cfg.Customers[1].EmailIngress.Password, "plain:" + secrets["NEWLINE"]},
		{cfg.Customers[2].Webhook.Secret, "12345"},
		{cfg.Customers[2].Webhook.PreviousSecret, "null"},
		{cfg.Customers[2].SMPP.Password, "plain:${HASH}"},
		{cfg.Customers[3].SMPP.Password, "plain:[x, y]"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// A reference is substituted in string values only: in a key or a number
// it is an error of the file, not a way to change its structure.
func TestParseSubstitutesStringValuesOnly(t *testing.T) {
	env := func(k string) (string, bool) { return "x", true }
	if _, err := Parse([]byte("customers:\n  - id: a\n    tps: ${TPS}\n"), env); err == nil {
		t.Error("a reference as a number: no error")
	}
	if _, err := Parse([]byte("customers:\n  - id: a\n    ${FIELD}: b\n"), env); err == nil || !strings.Contains(err.Error(), "${FIELD}") {
		t.Errorf("a reference as a key: %v, want an unknown field", err)
	}
	_, err := Parse([]byte("customers:\n  - id: a\n    webhook: {url: \"https://h.example.com/\", secret: \"${ONE}\"}\n  - id: b\n    webhook: {url: \"https://h.example.com/\", secret: \"${TWO}\"}\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "ONE (line 3)") || !strings.Contains(err.Error(), "TWO (line 5)") {
		t.Errorf("missing variables: %v, want both named with their lines", err)
	}
}

func TestParseChecksWebhookURLsAgainstTheAllowedNetworks(t *testing.T) {
	for _, c := range []struct {
		name, yaml, want string
	}{
		{"public name", "customers:\n  - {id: a, webhook: {url: \"https://hooks.example.com/x\"}}\n", ""},
		{"loopback", "customers:\n  - {id: a, webhook: {url: \"http://127.0.0.1:8099/\"}}\n", "special-purpose"},
		{"metadata", "customers:\n  - {id: a, webhook: {url: \"http://169.254.169.254/\"}}\n", "special-purpose"},
		{"userinfo", "customers:\n  - {id: a, webhook: {url: \"https://u:p@hooks.example.com/\"}}\n", "user name or password"},
		{"scheme", "customers:\n  - {id: a, webhook: {url: \"ftp://hooks.example.com/\"}}\n", "http:// or https://"},
		{"loopback allowed", "webhooks: {allowNetworks: [127.0.0.0/8, \"::1\"]}\ncustomers:\n  - {id: a, webhook: {url: \"http://127.0.0.1:8099/\"}}\n", ""},
		{"another network allowed", "webhooks: {allowNetworks: [10.0.0.0/8]}\ncustomers:\n  - {id: a, webhook: {url: \"http://127.0.0.1:8099/\"}}\n", "special-purpose"},
		{"bad network", "webhooks: {allowNetworks: [10.0.0.0/33, nonsense]}\n", "\"nonsense\" is not a network"},
		{"previous secret alone", "customers:\n  - {id: a, webhook: {url: \"https://h.example.com/\", previousSecret: old}}\n", "previousSecret needs webhook.secret"},
	} {
		_, err := Parse([]byte(c.yaml), noEnv)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
	cfg, err := Parse([]byte("webhooks: {allowNetworks: [127.0.0.0/8, \"::1\"]}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.WebhookPolicy()
	if !p.AddrAllowed(netip.MustParseAddr("127.0.0.1")) || !p.AddrAllowed(netip.MustParseAddr("::1")) || p.AddrAllowed(netip.MustParseAddr("10.0.0.1")) {
		t.Errorf("policy %v", p)
	}
}

func TestWebhookSecretsInRotation(t *testing.T) {
	cfg, err := Parse([]byte("customers:\n  - {id: a, webhook: {url: \"https://h.example.com/\", secret: new, previousSecret: old}}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := Static(cfg).Customer("a")
	if got := strings.Join(c.WebhookSecrets(), ","); got != "new,old" {
		t.Errorf("secrets %q, want new,old", got)
	}
}
