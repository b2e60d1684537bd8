package config

import (
	"net/mail"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Limits of the email-to-SMS entry point.
const (
	DefaultEmailMaxSize = 64 << 10 // bytes
	MaxEmailMaxSize     = 10 << 20
)

// validateEmail checks the email-to-SMS entry point: its recipient domains,
// its size limit, and how each customer is identified.
func (c *Config) validateEmail() []error {
	var errs problems
	bad := errs.add

	domains := map[string]bool{}
	for _, d := range c.Email.Domains {
		if !validDomain(d) {
			bad(0, "email.domains: %q is not a domain name", d)
		}
		if domains[strings.ToLower(d)] {
			bad(0, "email.domains lists %q twice", d)
		}
		domains[strings.ToLower(d)] = true
	}
	if c.Email.MaxSize < 0 || c.Email.MaxSize > MaxEmailMaxSize {
		bad(0, "email.maxSize must be between 0 (the default, %d) and %d bytes", DefaultEmailMaxSize, MaxEmailMaxSize)
	}

	usernames := map[string]string{}
	senders := map[string]string{}
	for _, cu := range c.Customers {
		in := cu.EmailIngress
		if in.Username == "" && in.Password == "" && len(in.AllowedSenders) == 0 && !in.TrustEnvelopeSender {
			continue
		}
		if len(c.Email.Domains) == 0 {
			bad(cu.line, "customer %q: emailIngress needs email.domains, the domains mail is sent to", cu.ID)
		}
		if (in.Username == "") != (in.Password == "") {
			bad(cu.line, "customer %q: emailIngress.username and emailIngress.password go together", cu.ID)
		}
		switch {
		case len(in.AllowedSenders) > 0 && !in.TrustEnvelopeSender:
			bad(cu.line, "customer %q: emailIngress.allowedSenders let mail from those envelope senders in without AUTH, "+
				"and anyone can write any address there: set trustEnvelopeSender: true where the network vouches for the senders, "+
				"or use username and password", cu.ID)
		case in.TrustEnvelopeSender && len(in.AllowedSenders) == 0:
			bad(cu.line, "customer %q: emailIngress.trustEnvelopeSender needs allowedSenders", cu.ID)
		}
		if in.Username != "" {
			if other, dup := usernames[in.Username]; dup {
				bad(cu.line, "customer %q: emailIngress.username %q is already used by customer %q", cu.ID, in.Username, other)
			}
			usernames[in.Username] = cu.ID
		}
		if in.Password != "" && !strings.HasPrefix(in.Password, "plain:") && !strings.HasPrefix(in.Password, "bcrypt:") {
			bad(cu.line, "customer %q: emailIngress.password must be \"bcrypt:<hash>\" or \"plain:<password>\"", cu.ID)
		}
		if rest, ok := strings.CutPrefix(in.Password, "bcrypt:"); ok {
			if _, err := bcrypt.Cost([]byte(rest)); err != nil {
				bad(cu.line, "customer %q: emailIngress.password: %v", cu.ID, err)
			}
		}
		for _, s := range in.AllowedSenders {
			key, ok := senderKey(s)
			if !ok {
				bad(cu.line, "customer %q: emailIngress.allowedSenders: %q is neither an address nor @domain", cu.ID, s)
				continue
			}
			if other, dup := senders[key]; dup {
				bad(cu.line, "customer %q: emailIngress.allowedSenders: %q is already allowed for customer %q", cu.ID, s, other)
			}
			senders[key] = cu.ID
		}
	}
	return errs
}

// EmailMaxSize is the largest email accepted, in bytes.
func (c *Config) EmailMaxSize() int {
	if c.Email.MaxSize > 0 {
		return c.Email.MaxSize
	}
	return DefaultEmailMaxSize
}

// EmailDomain reports whether mail to domain becomes SMS (case-insensitive).
func (c *Config) EmailDomain(domain string) bool {
	for _, d := range c.Email.Domains {
		if strings.EqualFold(d, domain) {
			return true
		}
	}
	return false
}

// EmailCustomerByLogin finds the customer whose emailIngress credentials
// these are. The password is checked only against the hash of the customer
// the username names; a username that names no customer takes as long to
// refuse as a wrong password (see loginMatches).
func (c *Config) EmailCustomerByLogin(username, password string) (Customer, bool) {
	x := c.index()
	cu, known := c.lookup(x.byLogin, username)
	return cu, loginMatches(cu.EmailIngress.Password, known, password, x.emailCost)
}

// EmailCustomerBySender finds the customer that allows sending from address
// without AUTH (emailIngress.trustEnvelopeSender): an exact allowed sender
// wins over an allowed "@domain".
func (c *Config) EmailCustomerBySender(address string) (Customer, bool) {
	addr, ok := senderKey(address)
	if !ok || strings.HasPrefix(addr, "@") {
		return Customer{}, false
	}
	if cu, ok := c.lookup(c.index().bySender, addr); ok {
		return cu, true
	}
	_, domain, _ := strings.Cut(addr, "@")
	return c.lookup(c.index().bySender, "@"+domain)
}

// senderKey is an allowed sender in the form compared: a lower-case address,
// or "@domain" for every address of a domain.
func senderKey(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if d, ok := strings.CutPrefix(s, "@"); ok {
		return s, validDomain(d)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", false
	}
	return strings.ToLower(a.Address), true
}

// validDomain reports whether d looks like a DNS name: dot-separated labels
// of letters, digits and hyphens.
func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
