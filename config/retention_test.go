package config

import (
	"strings"
	"testing"
	"time"
)

func TestRetentionPerCustomerWithADefault(t *testing.T) {
	cfg, err := Parse([]byte(`retention:
  defaultDays: 400
customers:
  - id: short
    retentionDays: 30
  - id: forever
    retentionDays: -1
  - id: plain
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id      string
		keep    time.Duration
		forever bool
	}{
		{"short", 30 * 24 * time.Hour, false},
		{"forever", 0, true},
		{"plain", 400 * 24 * time.Hour, false},
		{"removed-since", 400 * 24 * time.Hour, false},
	} {
		keep, forever := cfg.RetentionFor(c.id)
		if keep != c.keep || forever != c.forever {
			t.Errorf("%s: %s %v, want %s %v", c.id, keep, forever, c.keep, c.forever)
		}
	}
	none, err := Parse([]byte("customers:\n  - id: a\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if _, forever := none.RetentionFor("a"); !forever {
		t.Error("without any retention set, messages are not kept for ever")
	}
}

func TestRetentionRefusesBadValues(t *testing.T) {
	_, err := Parse([]byte(`retention:
  defaultDays: -5
customers:
  - id: a
    retentionDays: -2
`), noEnv)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"retention.defaultDays must be between 0", `line 4: customer "a": retentionDays must be between 1`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
