package smsgw

import "time"

// ConfigVersion is one version of the gateway's configuration as the admin
// API keeps it: the whole configuration, and the audit record of the change
// that made it. Versions are numbered 1, 2, 3… with no gaps; the highest is
// the configuration in force on every replica.
type ConfigVersion struct {
	Version int64
	At      time.Time
	// Who made the change: an admin key's name, "file" for a change of the
	// configuration file while the gateway ran, "bootstrap" for the first.
	Who string
	// Action says what was asked: "create customer acme", "import", …
	Action string
	// Changes are the differences from the version before, one per line,
	// with secrets redacted.
	Changes []string
	// Config is the configuration as YAML; empty in audit listings.
	Config []byte
	// Keys describe the customers' API keys created through the admin API.
	Keys []APIKeyInfo
}

// APIKeyInfo describes a customer's API key without the key itself.
type APIKeyInfo struct {
	// ID names the key: the first 12 hex digits of its SHA-256.
	ID         string
	CustomerID string
	// Prefix is the key's first characters, to recognise it by; empty for a
	// key that came from the configuration file.
	Prefix    string
	CreatedAt time.Time
}
