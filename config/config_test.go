package config

import (
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
