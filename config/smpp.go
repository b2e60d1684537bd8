package config

import (
	"net/netip"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// MaxSMPPBinds is the most binds a customer may be allowed per replica.
const MaxSMPPBinds = 1000

// validateSMPP checks customers' SMPP access: a system_id and password go
// together, the password is "bcrypt:<hash>" or "plain:<password>", maxBinds
// is within limits, and every allowedIps entry is an address or CIDR.
// (Duplicate and over-long system_ids are reported by Validate.)
func (c *Config) validateSMPP() []error {
	var errs problems
	bad := errs.add
	for _, cu := range c.Customers {
		s := cu.SMPP
		if s.SystemID == "" && s.Password == "" && s.MaxBinds == 0 && len(s.AllowedIPs) == 0 {
			continue
		}
		switch {
		case s.SystemID == "":
			bad(cu.line, "customer %q: smpp.systemId is required with the other smpp settings", cu.ID)
		case !printableASCII(s.SystemID):
			bad(cu.line, "customer %q: smpp.systemId may hold only printable ASCII characters without spaces", cu.ID)
		}
		switch {
		case s.Password == "":
			bad(cu.line, "customer %q: smpp.password is required", cu.ID)
		case strings.HasPrefix(s.Password, "bcrypt:"):
			if _, err := bcrypt.Cost([]byte(strings.TrimPrefix(s.Password, "bcrypt:"))); err != nil {
				bad(cu.line, "customer %q: smpp.password is not a bcrypt hash (make one with `smsgw hash-password`): %v", cu.ID, err)
			}
		case strings.HasPrefix(s.Password, "plain:"):
			if pw := strings.TrimPrefix(s.Password, "plain:"); pw == "" || len(pw) > 64 || strings.ContainsRune(pw, 0) {
				bad(cu.line, "customer %q: smpp.password \"plain:\" must be followed by 1 to 64 characters", cu.ID)
			}
		default:
			bad(cu.line, "customer %q: smpp.password must be \"bcrypt:<hash>\" (see `smsgw hash-password`) or \"plain:<password>\"", cu.ID)
		}
		if s.MaxBinds < 0 || s.MaxBinds > MaxSMPPBinds {
			bad(cu.line, "customer %q: smpp.maxBinds must be between 0 (the default, 10) and %d", cu.ID, MaxSMPPBinds)
		}
		for _, ip := range s.AllowedIPs {
			if _, err := netip.ParsePrefix(ip); err == nil {
				continue
			}
			if _, err := netip.ParseAddr(ip); err != nil {
				bad(cu.line, "customer %q: smpp.allowedIps: %q is neither an IP address nor a CIDR prefix", cu.ID, ip)
			}
		}
	}
	return errs
}

func printableASCII(s string) bool {
	for _, r := range s {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	return true
}
