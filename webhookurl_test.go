package smsgw

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func TestWebhookPolicyRefusesSpecialPurposeAddresses(t *testing.T) {
	var p WebhookPolicy
	for _, a := range []string{
		"127.0.0.1", "127.255.0.1", "0.0.0.0", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.254", "224.0.0.1", "239.1.1.1",
		"255.255.255.255", "240.0.0.1", "192.0.0.170", "198.18.0.1", "192.0.2.1",
		"::", "::1", "fe80::1", "fe80::1%eth0", "fd00:ec2::254", "fc00::1", "ff02::1", "fec0::1",
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::127.0.0.1", "::10.0.0.1",
		"64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2001::1", "2001:db8::1", "100::1",
	} {
		if p.AddrAllowed(netip.MustParseAddr(a)) {
			t.Errorf("%s is allowed", a)
		}
	}
	for _, a := range []string{"93.184.216.34", "8.8.8.8", "100.63.255.255", "100.128.0.1", "172.32.0.1",
		"2606:4700:4700::1111", "::ffff:93.184.216.34", "64:ff9b::808:808"} {
		if !p.AddrAllowed(netip.MustParseAddr(a)) {
			t.Errorf("%s is refused", a)
		}
	}
	if p.AddrAllowed(netip.Addr{}) {
		t.Error("the zero address is allowed")
	}
}

func TestWebhookPolicyAllowsWhatTheOperatorAllows(t *testing.T) {
	p := WebhookPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.20.0.0/16")}}
	for _, a := range []string{"127.0.0.1", "::ffff:127.0.0.1", "10.20.3.4", "64:ff9b::7f00:1"} {
		if !p.AddrAllowed(netip.MustParseAddr(a)) {
			t.Errorf("%s is refused though allowed", a)
		}
	}
	for _, a := range []string{"10.21.0.1", "::1", "169.254.169.254"} {
		if p.AddrAllowed(netip.MustParseAddr(a)) {
			t.Errorf("%s is allowed", a)
		}
	}
}

func TestCheckURL(t *testing.T) {
	var p WebhookPolicy
	loopback := WebhookPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	for _, c := range []struct {
		url  string
		want string // "" for allowed
	}{
		{"https://hooks.example.com/sms?x=1", ""},
		{"http://hooks.example.com:8443/sms", ""},
		{"HTTPS://Hooks.Example.com./x", ""},
		{"http://93.184.216.34/", ""},
		{"http://[2606:4700::1111]:80/", ""},
		{"ftp://hooks.example.com/", "http:// or https://"},
		{"javascript:alert(1)", "http:// or https://"},
		{"file:///etc/passwd", "http:// or https://"},
		{"gopher://127.0.0.1:6379/_", "http:// or https://"},
		{"http:hooks.example.com", "not a valid URL"},
		{"http://user:pw@hooks.example.com/", "user name or password"},
		{"http://user@hooks.example.com/", "user name or password"},
		{"http:///path", "no host"},
		{"http://hooks.example.com:99999/", "invalid port"},
		{"http://hooks.example.com:/", "invalid port"},
		{"http://127.0.0.1:8080/", "special-purpose"},
		{"http://[::1]/", "special-purpose"},
		{"http://[::ffff:7f00:1]/", "special-purpose"},
		{"http://[::ffff:127.0.0.1]/", "special-purpose"},
		{"http://169.254.169.254/latest/meta-data/", "special-purpose"},
		{"http://[fd00:ec2::254]/", "special-purpose"},
		{"http://[fe80::1%25eth0]/", "special-purpose"},
		{"http://10.0.0.1/", "special-purpose"},
		{"http://0.0.0.0/", "special-purpose"},
		{"http://localhost:8080/", "special-purpose"},
		{"http://LOCALHOST./", "special-purpose"},
		{"http://x.localhost/", "special-purpose"},
		{"http://127.1/", "invalid host name"},
		{"http://2130706433/", "invalid host name"},
		{"http://0x7f000001/", "invalid host name"},
		{"http://0177.0.0.1/", "invalid host name"},
		{"http://exa mple.com/", "not a valid URL"},
		{"http://" + strings.Repeat("a", MaxCallbackURLSize) + ".com/", "longer than"},
	} {
		err := p.CheckURL(c.url)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%.60s: %v, want allowed", c.url, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%.60s: %v, want an error mentioning %q", c.url, err, c.want)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8099/hook", "http://localhost/", "http://[::1]:80/"} {
		if err := loopback.CheckURL(u); err != nil {
			t.Errorf("%s with loopback allowed: %v", u, err)
		}
	}
	if err := loopback.CheckURL("http://10.0.0.1/"); err == nil {
		t.Error("10.0.0.1 with only loopback allowed: no error")
	}
}

func TestMessageValidateChecksCallbackURLAndIdempotencyKey(t *testing.T) {
	base := Message{CustomerID: "c", From: "ACME", To: "+61412345678", Text: "hi"}
	for _, c := range []struct {
		name string
		edit func(*Message)
		ok   bool
	}{
		{"plain", func(*Message) {}, true},
		{"callback with userinfo", func(m *Message) { m.CallbackURL = "https://u:p@example.com/" }, false},
		{"callback too long", func(m *Message) { m.CallbackURL = "https://example.com/" + strings.Repeat("a", MaxCallbackURLSize) }, false},
		{"key of 255", func(m *Message) { m.IdempotencyKey = strings.Repeat("k", 255) }, true},
		{"key with spaces and symbols", func(m *Message) { m.IdempotencyKey = "order 42/#~!" }, true},
		{"key of 256", func(m *Message) { m.IdempotencyKey = strings.Repeat("k", 256) }, false},
		{"key with a newline", func(m *Message) { m.IdempotencyKey = "a\nb" }, false},
		{"key with a NUL", func(m *Message) { m.IdempotencyKey = "a\x00b" }, false},
		{"key not ASCII", func(m *Message) { m.IdempotencyKey = "clé" }, false},
	} {
		m := base
		c.edit(&m)
		err := m.Validate()
		if (err == nil) != c.ok || (err != nil && ErrorCode(err) != EINVALID) {
			t.Errorf("%s: %v, want ok %v", c.name, err, c.ok)
		}
	}
}

// FuzzWebhookCheckURL: whatever a customer sends as a callbackUrl, the check
// never panics, and a URL it lets through is an http(s) URL without
// credentials whose host, when an address, is one a webhook may reach.
func FuzzWebhookCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://hooks.example.com/sms", "http://127.0.0.1:8099/", "http://[::ffff:127.0.0.1]/", "http://[fe80::1%25eth0]/",
		"http://u:p@x.com/", "http://169.254.169.254/", "http://2130706433/", "http://[64:ff9b::a9fe:a9fe]/", "http://%31%32%37.0.0.1/",
		"HTTP://[::1]:0/", "http://x.com:65536/", "http://x.com#@127.0.0.1/", "http://127.0.0.1\\@x.com/",
	} {
		f.Add(s)
	}
	var p WebhookPolicy
	f.Fuzz(func(t *testing.T, raw string) {
		if err := p.CheckURL(raw); err != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("%q allowed but does not parse: %v", raw, err)
		}
		if len(raw) > MaxCallbackURLSize || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Hostname() == "" {
			t.Fatalf("%q allowed: scheme %q, user %v, host %q", raw, u.Scheme, u.User, u.Hostname())
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && !p.AddrAllowed(a) {
			t.Fatalf("%q allowed with the refused address %s", raw, a)
		}
		if h := strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")); h == "localhost" || strings.HasSuffix(h, ".localhost") {
			t.Fatalf("%q allowed: %s is loopback", raw, h)
		}
	})
}
