package config

import (
	"strings"
	"testing"
)

func TestValidateSMPP(t *testing.T) {
	const hash = "$2a$04$glG/tKOA1FWB.1ouUX9gReol6w49pNM1iQ.5q/LD7sNVEgcAfl2n6"
	for _, c := range []struct {
		name, smpp, want string
	}{
		{"plain", `{systemId: acme, password: "plain:secret"}`, ""},
		{"bcrypt", `{systemId: acme, password: "bcrypt:` + hash + `", maxBinds: 4, allowedIps: ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]}`, ""},
		{"no smpp", `{}`, ""},
		{"no system id", `{password: "plain:secret"}`, "line 2: customer \"acme\": smpp.systemId is required"},
		{"space in system id", `{systemId: "ac me", password: "plain:x"}`, "printable ASCII"},
		{"no password", `{systemId: acme}`, "smpp.password is required"},
		{"unhashed password", `{systemId: acme, password: secret}`, `must be "bcrypt:<hash>"`},
		{"broken hash", `{systemId: acme, password: "bcrypt:$2a$04$short"}`, "not a bcrypt hash"},
		{"empty plain", `{systemId: acme, password: "plain:"}`, "1 to 64 characters"},
		{"negative binds", `{systemId: acme, password: "plain:x", maxBinds: -1}`, "smpp.maxBinds"},
		{"too many binds", `{systemId: acme, password: "plain:x", maxBinds: 100000}`, "smpp.maxBinds"},
		{"bad address", `{systemId: acme, password: "plain:x", allowedIps: ["10.0.0.0/33"]}`, `"10.0.0.0/33" is neither`},
		{"host name", `{systemId: acme, password: "plain:x", allowedIps: [example.com]}`, `"example.com" is neither`},
	} {
		raw := "customers:\n  - id: acme\n    smpp: " + c.smpp + "\n"
		_, err := Parse([]byte(raw), func(string) (string, bool) { return "", false })
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}
