package config

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// A login that names no account must not answer sooner than a wrong
// password, or the time it takes tells strangers which system_ids and
// SMTP usernames exist. So it spends a bcrypt comparison at the cost in
// use, as does an account with a plain (development) password.
func TestUnknownLoginsTakeAsLongAsWrongPasswords(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("right"), 10) // the cost `smsgw hash-password` uses
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(fmt.Appendf(nil, `customers:
  - id: hashed
    smpp: {systemId: hashed, password: "bcrypt:%[1]s"}
    emailIngress: {username: hashed-mail, password: "bcrypt:%[1]s"}
  - id: plain
    smpp: {systemId: plain, password: "plain:right"}
    emailIngress: {username: plain-mail, password: "plain:right"}
email: {domains: [sms.example]}
`, hash), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	smpp := func(name string) func() bool {
		return func() bool { _, _, ok := cfg.SMPPLogin(name, "wrong"); return ok }
	}
	email := func(name string) func() bool {
		return func() bool { _, ok := cfg.EmailCustomerByLogin(name, "wrong"); return ok }
	}
	// fastest of a few tries: a loaded machine only makes a try slower.
	fastest := func(login func() bool) time.Duration {
		best := time.Hour
		for range 3 {
			began := time.Now()
			if login() {
				t.Fatal("a wrong password was taken")
			}
			best = min(best, time.Since(began))
		}
		return best
	}
	for _, c := range []struct {
		kind                  string
		known, unknown, plain func() bool
	}{
		{"SMPP system_id", smpp("hashed"), smpp("nobody"), smpp("plain")},
		{"SMTP AUTH username", email("hashed-mail"), email("nobody"), email("plain-mail")},
	} {
		wrong := fastest(c.known)
		for name, login := range map[string]func() bool{"an unknown " + c.kind: c.unknown, "a plain password": c.plain} {
			// A bcrypt comparison of cost 10 takes tens of milliseconds,
			// a map lookup microseconds: a third leaves room for noise.
			if took := fastest(login); took < wrong/3 {
				t.Errorf("%s is refused in %v, a wrong password in %v", name, took, wrong)
			}
		}
	}
	if _, _, ok := cfg.SMPPLogin("hashed", "right"); !ok {
		t.Error("the right SMPP password was refused")
	}
	if cu, ok := cfg.EmailCustomerByLogin("plain-mail", "right"); !ok || cu.ID != "plain" {
		t.Errorf("the right plain email password: %q %v", cu.ID, ok)
	}
}
