package smsgw

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
)

// Customer is an account that submits messages. Credentials are stored hashed.
type Customer struct {
	ID            string
	Name          string
	APIKeyHashes  []string // hex SHA-256 of each API key
	WebhookURL    string   // default receipt webhook; a message's callbackUrl overrides it
	WebhookSecret string   // HMAC key for webhook signatures
	// WebhookPreviousSecret, while a secret is being rotated, is the one
	// before WebhookSecret: webhooks carry a signature under each.
	WebhookPreviousSecret string
}

// WebhookSecrets are the keys webhooks are signed with: the secret, then
// the previous one during a rotation. None: webhooks go unsigned.
func (c *Customer) WebhookSecrets() []string {
	var out []string
	for _, s := range []string{c.WebhookSecret, c.WebhookPreviousSecret} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// HashAPIKey returns the hex SHA-256 of an API key, the form kept in configuration.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// HasAPIKey reports whether key is one of the customer's keys, in constant time per key.
func (c *Customer) HasAPIKey(key string) bool {
	h := HashAPIKey(key)
	ok := false
	for _, k := range c.APIKeyHashes {
		if subtle.ConstantTimeCompare([]byte(k), []byte(h)) == 1 {
			ok = true
		}
	}
	return ok
}
