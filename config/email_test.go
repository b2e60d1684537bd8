package config

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestEmailValidation(t *testing.T) {
	_, err := Parse([]byte(`customers:
  - id: a
    emailIngress: {username: mail, password: "secret", allowedSenders: ["ops@a.example", "not an address"]}
  - id: b
    emailIngress: {username: mail, password: "bcrypt:nothash", allowedSenders: ["OPS@A.example", "@-bad-.example"]}
  - id: c
    emailIngress: {username: lonely}
email: {domains: [sms.example.com, "bad domain", SMS.example.com], maxSize: -1}
`), noEnv)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{
		`email.domains: "bad domain" is not a domain name`,
		`email.domains lists "SMS.example.com" twice`,
		"email.maxSize must be between 0",
		`customer "a": emailIngress.password must be "bcrypt:<hash>" or "plain:<password>"`,
		`customer "a": emailIngress.allowedSenders: "not an address" is neither an address nor @domain`,
		`customer "b": emailIngress.username "mail" is already used by customer "a"`,
		`customer "b": emailIngress.password:`,
		`customer "b": emailIngress.allowedSenders: "OPS@A.example" is already allowed for customer "a"`,
		`customer "b": emailIngress.allowedSenders: "@-bad-.example" is neither`,
		`customer "c": emailIngress.username and emailIngress.password go together`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}

	_, err = Parse([]byte("customers:\n  - id: a\n    emailIngress: {username: a, password: \"plain:pw\"}\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "emailIngress needs email.domains") {
		t.Fatalf("ingress without domains: %v", err)
	}
}

// The envelope sender is anyone's to write: it identifies a customer only
// where the configuration says so in as many words.
func TestEnvelopeSenderOnlyWhenTrusted(t *testing.T) {
	_, err := Parse([]byte(`customers:
  - id: a
    emailIngress: {allowedSenders: [ops@a.example]}
  - id: b
    emailIngress: {username: b-mail, password: "plain:pw", allowedSenders: [ops@b.example]}
  - id: c
    emailIngress: {trustEnvelopeSender: true}
email: {domains: [sms.example.com]}
`), noEnv)
	if err == nil {
		t.Fatal("allowed senders without trustEnvelopeSender were accepted")
	}
	for _, want := range []string{
		`customer "a": emailIngress.allowedSenders let mail from those envelope senders in without AUTH`,
		`customer "b": emailIngress.allowedSenders let mail`,
		`customer "c": emailIngress.trustEnvelopeSender needs allowedSenders`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// A configuration put together in code is not validated: the lookup
	// itself passes over senders that are not trusted.
	built := &Config{
		Customers: []Customer{{ID: "a", EmailIngress: EmailIngress{AllowedSenders: []string{"ops@a.example"}}}},
		Email:     EmailGateway{Domains: []string{"sms.example.com"}},
	}
	if cu, ok := built.EmailCustomerBySender("ops@a.example"); ok {
		t.Fatalf("an untrusted envelope sender identified customer %q", cu.ID)
	}
}

func TestEmailCustomerLookup(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(`customers:
  - id: a
    emailIngress: {username: a-mail, password: "bcrypt:`+string(hash)+`", allowedSenders: ["@a.example"], trustEnvelopeSender: true}
  - id: b
    emailIngress: {username: b-mail, password: "plain:pw", allowedSenders: ["boss@a.example"], trustEnvelopeSender: true}
email: {domains: [sms.example.com]}
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, pass string
		want       string
	}{{"a-mail", "s3cret", "a"}, {"a-mail", "wrong", ""}, {"b-mail", "pw", "b"}, {"b-mail", "", ""}, {"nobody", "pw", ""}} {
		cu, ok := cfg.EmailCustomerByLogin(c.user, c.pass)
		if ok != (c.want != "") || (ok && cu.ID != c.want) {
			t.Errorf("login %s/%s: %q %v, want %q", c.user, c.pass, cu.ID, ok, c.want)
		}
	}
	for addr, want := range map[string]string{"Boss@A.example": "b", "clerk@a.example": "a", "x@b.example": "", "@a.example": "", "garbage": ""} {
		cu, ok := cfg.EmailCustomerBySender(addr)
		if ok != (want != "") || (ok && cu.ID != want) {
			t.Errorf("sender %q: %q %v, want %q", addr, cu.ID, ok, want)
		}
	}
	if !cfg.EmailDomain("SMS.EXAMPLE.COM") || cfg.EmailDomain("example.com") || cfg.EmailMaxSize() != DefaultEmailMaxSize {
		t.Error("domain or size defaults wrong")
	}
}
