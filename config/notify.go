package config

import (
	"net"
	"net/mail"
	"strings"
	"time"
)

// Notification channel names, as written in notify.channels.
var notifyChannels = map[string]bool{"webhook": true, "smpp": true, "email": true}

// MaxNotifyRetry caps notify.retryFor: a notification older than a week is
// kept for redelivery instead.
const MaxNotifyRetry = 7 * 24 * time.Hour

// validateNotify checks notification preferences, the SMTP relay they go out
// through, and the numbers that route mobile-originated messages.
func (c *Config) validateNotify() []error {
	var errs problems
	bad := errs.add

	if r := c.SMTP; r.Address != "" || r.From != "" || r.Username != "" {
		if _, port, err := net.SplitHostPort(r.Address); err != nil || port == "" {
			bad(0, "smtp.address must be host:port")
		}
		if _, err := mail.ParseAddress(r.From); err != nil {
			bad(0, "smtp.from must be an email address: %v", err)
		}
		if (r.Username == "") != (r.Password == "") {
			bad(0, "smtp.username and smtp.password go together")
		}
	}

	owners := map[string]string{} // number|keyword → customer
	for _, cu := range c.Customers {
		n := cu.Notify
		seen := map[string]bool{}
		for _, ch := range n.Channels {
			if !notifyChannels[ch] {
				bad(cu.line, "customer %q: notify.channels: unknown channel %q (webhook, smpp or email)", cu.ID, ch)
			}
			if seen[ch] {
				bad(cu.line, "customer %q: notify.channels lists %q twice", cu.ID, ch)
			}
			seen[ch] = true
		}
		if seen["email"] {
			if len(n.Email) == 0 {
				bad(cu.line, "customer %q: notify.channels has email but notify.email lists no recipient", cu.ID)
			}
			if c.SMTP.Address == "" {
				bad(cu.line, "customer %q: notify.channels has email but no smtp relay is configured", cu.ID)
			}
		}
		switch n.Statuses {
		case "", "final", "all":
		default:
			bad(cu.line, "customer %q: notify.statuses must be final or all", cu.ID)
		}
		for _, addr := range n.Email {
			if _, err := mail.ParseAddress(addr); err != nil {
				bad(cu.line, "customer %q: notify.email %q is not an email address", cu.ID, addr)
			}
		}
		if n.RetryFor < 0 || n.RetryFor > MaxNotifyRetry || (n.RetryFor > 0 && n.RetryFor < time.Second) {
			bad(cu.line, "customer %q: notify.retryFor must be between 1s and %s", cu.ID, MaxNotifyRetry)
		}

		for _, num := range cu.Numbers {
			digits, ok := InboundNumber(num.Number)
			if !ok {
				bad(cu.line, "customer %q: number %q must be 3 to 15 digits, with an optional leading +", cu.ID, num.Number)
				continue
			}
			if strings.ContainsAny(num.Keyword, " \t\r\n") {
				bad(cu.line, "customer %q: keyword %q of number %s must be one word", cu.ID, num.Keyword, num.Number)
			}
			key := digits + "|" + strings.ToUpper(num.Keyword)
			if other, dup := owners[key]; dup {
				what := "number " + num.Number
				if num.Keyword != "" {
					what += " with keyword " + num.Keyword
				}
				bad(cu.line, "customer %q: %s is already owned by customer %q", cu.ID, what, other)
			}
			owners[key] = cu.ID
		}
	}
	return errs
}

// InboundNumber returns the digits of a virtual number or short code, as
// mobile-originated messages are matched: without a leading '+' or "00".
// ok is false unless it is 3 to 15 digits.
func InboundNumber(s string) (digits string, ok bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "+")
	if len(s) > 5 && strings.HasPrefix(s, "00") {
		s = s[2:]
	}
	if len(s) < 3 || len(s) > 15 {
		return "", false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return "", false
		}
	}
	return s, true
}
