package smsgw

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ErrAddressNotAllowed is the answer of a webhook that would reach an
// address the WebhookPolicy does not allow.
var ErrAddressNotAllowed = errors.New("address not allowed")

// WebhookPolicy says which network addresses the gateway's webhooks may
// reach. Customers choose webhook URLs, so a webhook must not become a way
// into the gateway's own network: loopback, private, link-local, multicast,
// unspecified and other special-purpose addresses (IPv4 and IPv6, and IPv4
// written in IPv6 forms) are refused, unless they fall in one of the
// networks the operator allows.
type WebhookPolicy struct {
	// Allow lists networks webhooks may reach although they are special-purpose.
	Allow []netip.Prefix
}

// specialPurpose are the networks a webhook does not reach unless allowed:
// the IANA special-purpose registries' entries that are not globally
// reachable, the private and shared (CGNAT) ranges, multicast and the
// reserved space. IPv4-mapped IPv6 addresses are checked as the IPv4
// address they carry, and NAT64 ones (64:ff9b::/96) as the IPv4 address
// they reach.
var specialPurpose = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network", and the unspecified address
		"10.0.0.0/8",      // private
		"100.64.0.0/10",   // shared address space (carrier-grade NAT)
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local, with the cloud metadata service 169.254.169.254
		"172.16.0.0/12",   // private
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation (TEST-NET-1)
		"192.88.99.0/24",  // 6to4 relay anycast
		"192.168.0.0/16",  // private
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation (TEST-NET-2)
		"203.0.113.0/24",  // documentation (TEST-NET-3)
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, and the broadcast address
		"::/96",           // unspecified, loopback and the deprecated IPv4-compatible form
		"64:ff9b:1::/48",  // local-use IPv4/IPv6 translation
		"100::/64",        // discard-only
		"2001::/23",       // IETF protocol assignments, Teredo among them
		"2001:db8::/32",   // documentation
		"2002::/16",       // 6to4: an IPv4 address of any kind inside
		"3fff::/20",       // documentation
		"5f00::/16",       // segment routing
		"fc00::/7",        // unique local, with the metadata service fd00:ec2::254
		"fe80::/10",       // link-local
		"fec0::/10",       // site-local (deprecated)
		"ff00::/8",        // multicast
		"::ffff:0:0:0/96", // IPv4-translated
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// AddrAllowed reports whether a webhook may connect to a.
func (p WebhookPolicy) AddrAllowed(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.WithZone("")
	if p.allows(a) {
		return true
	}
	if a.Is4In6() {
		return p.AddrAllowed(a.Unmap())
	}
	if nat64.Contains(a) {
		b := a.As16()
		return p.AddrAllowed(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	}
	for _, n := range specialPurpose {
		if n.Contains(a) {
			return false
		}
	}
	return true
}

func (p WebhookPolicy) allows(a netip.Addr) bool {
	for _, n := range p.Allow {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// CheckURL tells whether raw is a webhook URL the gateway could ever post to
// under this policy: a well-formed http:// or https:// URL of at most
// MaxCallbackURLSize bytes, without a user name or password, whose host is
// a name or an address the policy allows. A name is resolved only when the
// webhook is posted, and the address it resolves to is checked then. The
// error says what is wrong in terms the customer can act on.
func (p WebhookPolicy) CheckURL(raw string) error {
	u, err := ParseWebhookURL(raw)
	if err != nil {
		return err
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		host = "127.0.0.1" // RFC 6761: always loopback
	}
	if a, err := netip.ParseAddr(host); err == nil && !p.AddrAllowed(a) {
		return fmt.Errorf("must not point at a private, loopback, link-local or other special-purpose address")
	}
	return nil
}

// ParseWebhookURL parses a webhook URL and checks its form: http or https,
// at most MaxCallbackURLSize bytes, a host, no user name or password. It
// does not look at the address; WebhookPolicy.CheckURL does.
func ParseWebhookURL(raw string) (*url.URL, error) {
	if len(raw) > MaxCallbackURLSize {
		return nil, fmt.Errorf("is longer than %d bytes", MaxCallbackURLSize)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("must be an http:// or https:// URL")
	}
	if u.Opaque != "" {
		return nil, fmt.Errorf("is not a valid URL")
	}
	if u.User != nil {
		return nil, fmt.Errorf("must not carry a user name or password")
	}
	host := strings.TrimSuffix(u.Hostname(), ".")
	if host == "" {
		return nil, fmt.Errorf("has no host")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("has an invalid port")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, fmt.Errorf("has an invalid port")
	}
	if _, err := netip.ParseAddr(host); err != nil && !validHostName(host) {
		return nil, fmt.Errorf("has an invalid host name")
	}
	return u, nil
}

// validHostName reports whether s is a DNS name: labels of letters, digits,
// '-' and '_', and a last label that is not a number, so that forms such as
// "127.1", "2130706433" or "0x7f.1", which some resolvers read as IPv4
// addresses, are not names.
func validHostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	last := strings.ToLower(labels[len(labels)-1])
	if strings.HasPrefix(last, "0x") {
		return false
	}
	for _, r := range last {
		if r < '0' || r > '9' {
			return true
		}
	}
	return false
}
