package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/smsgw/smsgw"
)

func indexedConfig(t *testing.T) *Config {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost+1)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(`
email: {domains: [sms.example]}
customers:
  - id: acme
    apiKeys: ["plain:acme-1", "plain:acme-2"]
    smpp: {systemId: acme-smpp, password: "bcrypt:`+string(hash)+`"}
    emailIngress: {username: acme-mail, password: "plain:mailpw", allowedSenders: [ops@acme.example, "@acme.example"], trustEnvelopeSender: true}
    numbers: [{number: "+61400000001"}, {number: "61400000002", keyword: PIZZA}]
  - id: beta
    apiKeys: ["sha256:`+smsgw.HashAPIKey("beta-1")+`"]
    smpp: {systemId: beta-smpp, password: "plain:x"}
    emailIngress: {allowedSenders: [boss@acme.example], trustEnvelopeSender: true}
    numbers: [{number: "0061400000002"}]
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func checkLookups(t *testing.T, cfg *Config) {
	t.Helper()
	id := func(c Customer, ok bool) string {
		if !ok {
			return "-"
		}
		return c.ID
	}
	for _, c := range []struct{ what, got, want string }{
		{"by id acme", id(cfg.Customer("acme")), "acme"},
		{"by id beta", id(cfg.Customer("beta")), "beta"},
		{"by unknown id", id(cfg.Customer("ghost")), "-"},
		{"by system_id", id(cfg.CustomerBySystemID("beta-smpp")), "beta"},
		{"by unknown system_id", id(cfg.CustomerBySystemID("acme")), "-"},
		{"by empty system_id", id(cfg.CustomerBySystemID("")), "-"},
		{"by email login", id(cfg.EmailCustomerByLogin("acme-mail", "mailpw")), "acme"},
		{"by exact sender", id(cfg.EmailCustomerBySender("Boss <BOSS@acme.example>")), "beta"},
		{"by sender domain", id(cfg.EmailCustomerBySender("anyone@acme.example")), "acme"},
		{"by unknown sender", id(cfg.EmailCustomerBySender("x@other.example")), "-"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s, want %s", c.what, c.got, c.want)
		}
	}
	if cu, ok := cfg.EmailCustomerByLogin("acme-mail", "wrong"); ok || cu.ID != "acme" {
		t.Errorf("wrong email password: %q %v, want the customer named and refused", cu.ID, ok)
	}
	owners := cfg.NumberOwners("61400000002")
	if len(owners) != 2 || owners[0] != (NumberOwner{"acme", "PIZZA"}) || owners[1] != (NumberOwner{"beta", ""}) {
		t.Errorf("owners of 61400000002: %+v, want acme (PIZZA) then beta, in file order", owners)
	}
	if got := cfg.NumberOwners("61400000009"); len(got) != 0 {
		t.Errorf("owners of an unowned number: %+v", got)
	}
	if cfg.index().smppCost != bcrypt.MinCost+1 {
		t.Errorf("highest SMPP password cost %d, want %d", cfg.index().smppCost, bcrypt.MinCost+1)
	}
	l := Static(cfg)
	for key, want := range map[string]string{"acme-1": "acme", "acme-2": "acme", "beta-1": "beta", "nope": ""} {
		got := ""
		if c, ok := l.CustomerByAPIKey(key); ok {
			got = c.ID
		}
		if got != want {
			t.Errorf("API key %s: %q, want %q", key, got, want)
		}
	}
	if c, ok := l.Customer("beta"); !ok || c.ID != "beta" || len(c.APIKeyHashes) != 1 {
		t.Errorf("live customer beta: %+v %v", c, ok)
	}
}

func TestCustomerIndex(t *testing.T) {
	cfg := indexedConfig(t)
	if cfg.idx == nil || cfg.index() != cfg.idx {
		t.Fatal("Parse did not build the index, or a lookup builds another")
	}
	checkLookups(t, cfg)
}

// A Config put together in code, never parsed, answers the same.
func TestCustomerIndexOfAConfigBuiltInCode(t *testing.T) {
	parsed := indexedConfig(t)
	built := &Config{Customers: parsed.Customers, Email: parsed.Email}
	checkLookups(t, built)
}

func TestAPIKeyOfTwoCustomersIsRefused(t *testing.T) {
	_, err := Parse([]byte(`customers:
  - {id: a, apiKeys: ["plain:k1", "plain:k1"]}
  - {id: b, apiKeys: ["sha256:`+smsgw.HashAPIKey("k1")+`"]}
`), noEnv)
	if err == nil {
		t.Fatal("a shared API key was accepted")
	}
	for _, want := range []string{`customer "a": an API key is listed twice`, `customer "b": an API key is also customer "a"'s`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// A reloaded file brings its own index: a new customer and key are found,
// a removed one is not.
func TestReloadReplacesTheIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	write := func(body string, mod time.Time) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now().Add(-time.Hour)
	write("customers:\n  - {id: old, apiKeys: [\"plain:old-key\"]}\n", start)
	l, err := NewLive(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	write("customers:\n  - {id: new, apiKeys: [\"plain:new-key\"]}\n", start.Add(time.Minute))
	if err := l.reload(); err != nil {
		t.Fatal(err)
	}
	if c, ok := l.CustomerByAPIKey("new-key"); !ok || c.ID != "new" {
		t.Errorf("new key after reload: %v %v", c, ok)
	}
	if _, ok := l.CustomerByAPIKey("old-key"); ok {
		t.Error("a removed key still authenticates")
	}
	if _, ok := l.Config().Customer("old"); ok {
		t.Error("a removed customer is still found")
	}
	if _, ok := l.Customer("new"); !ok {
		t.Error("the new customer is not found")
	}
}
