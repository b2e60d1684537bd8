package config

import (
	"strings"
	"testing"
)

func TestNotifyAndNumbersValidation(t *testing.T) {
	_, err := Parse([]byte(`customers:
  - id: a
    notify: {channels: [webhook, fax, webhook, email], statuses: some, email: ["not an address"], retryFor: 10ms}
    numbers: [{number: "+61400000001"}, {number: "12ab"}, {number: "12345", keyword: "two words"}]
  - id: b
    numbers: [{number: "61400000001"}, {number: "12345", keyword: PIZZA}]
  - id: c
    numbers: [{number: "0061400000002"}, {number: "12345", keyword: pizza}]
smtp: {address: "nohost", from: "nobody"}
`), noEnv)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{
		"smtp.address must be host:port",
		"smtp.from must be an email address",
		`line 2: customer "a": notify.channels: unknown channel "fax"`,
		`customer "a": notify.channels lists "webhook" twice`,
		`customer "a": notify.statuses must be final or all`,
		`customer "a": notify.email "not an address" is not an email address`,
		`customer "a": notify.retryFor must be between 1s and`,
		`customer "a": number "12ab" must be 3 to 15 digits`,
		`customer "a": keyword "two words" of number 12345 must be one word`,
		`line 5: customer "b": number 61400000001 is already owned by customer "a"`,
		`customer "c": number 12345 with keyword pizza is already owned by customer "b"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), `customer "c": number 0061400000002`) {
		t.Errorf("a number owned once was refused:\n%v", err)
	}
}

func TestEmailChannelNeedsRecipientsAndRelay(t *testing.T) {
	_, err := Parse([]byte("customers:\n  - id: a\n    notify: {channels: [email]}\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "notify.email lists no recipient") || !strings.Contains(err.Error(), "no smtp relay") {
		t.Fatalf("got %v", err)
	}
	cfg, err := Parse([]byte(`customers:
  - id: a
    notify: {channels: [email, smpp], statuses: all, email: ["Ops <ops@a.example>"], retryFor: 2h}
    numbers: [{number: "+61400000001"}, {number: "+61400000001", keyword: YES}]
smtp: {address: "relay.example:587", from: "smsgw <noreply@gw.example>", username: gw, password: pw, startTls: true}
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Customers[0].Notify.RetryFor.Hours() != 2 || !cfg.SMTP.StartTLS {
		t.Fatalf("parsed %+v", cfg)
	}
}

func TestInboundNumber(t *testing.T) {
	for in, want := range map[string]string{"+61400000001": "61400000001", "0061400000001": "61400000001", "12345": "12345", " 123 ": "123", "12": "", "+1-800": "", "1234567890123456": ""} {
		got, ok := InboundNumber(in)
		if got != want || ok != (want != "") {
			t.Errorf("InboundNumber(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
}
