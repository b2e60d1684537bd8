// Package payloadcrypt encrypts what the gateway hands to Temporal: every
// payload (workflow inputs and results, activity arguments, signals, memos,
// markers, failure messages) is sealed with AES-256-GCM under a key the
// gateway holds, so Temporal's database, its visibility store and anyone
// with access to the Temporal UI see ciphertext. Each payload names the key
// it was sealed with; a Keyring holds several keys at once (one seals, all
// open), so keys rotate while workflows run.
//
// The same Keyring serves the codec HTTP protocol of the Temporal UI and
// CLI (Handler), and counts which keys the histories in a namespace use
// (CountKeys).
package payloadcrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

// Key is one named key. Its ID travels in the metadata of every payload
// sealed with it, so it must stay the same as long as such payloads exist
// (for the namespace's retention after the last workflow using it closed).
type Key struct {
	ID     string
	Secret []byte // KeySize bytes
}

// Keyring holds the keys a process knows: Active seals, all of them open.
type Keyring struct {
	active string
	aeads  map[string]cipher.AEAD
	ids    []string
}

// NewKeyring returns a Keyring over keys that seals with the key named
// active; active may be empty when there is exactly one key.
func NewKeyring(keys []Key, active string) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("no payload keys")
	}
	r := &Keyring{aeads: map[string]cipher.AEAD{}}
	for _, k := range keys {
		if err := checkKeyID(k.ID); err != nil {
			return nil, err
		}
		if _, dup := r.aeads[k.ID]; dup {
			return nil, fmt.Errorf("payload key %q given twice", k.ID)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("payload key %q has %d bytes, want %d", k.ID, len(k.Secret), KeySize)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("payload key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("payload key %q: %w", k.ID, err)
		}
		r.aeads[k.ID] = aead
		r.ids = append(r.ids, k.ID)
	}
	slices.Sort(r.ids)
	switch {
	case active == "" && len(keys) == 1:
		active = keys[0].ID
	case active == "":
		return nil, fmt.Errorf("%d payload keys (%s) and none named active", len(keys), strings.Join(r.ids, ", "))
	}
	if _, ok := r.aeads[active]; !ok {
		return nil, fmt.Errorf("active payload key %q is not among the keys (%s)", active, strings.Join(r.ids, ", "))
	}
	r.active = active
	return r, nil
}

// Active is the ID of the key that seals.
func (r *Keyring) Active() string { return r.active }

// IDs are the IDs of every key held, sorted.
func (r *Keyring) IDs() []string { return slices.Clone(r.ids) }

// checkKeyID accepts IDs that are file names and metadata values alike.
func checkKeyID(id string) error {
	if id == "" || len(id) > 64 || id[0] == '.' {
		return fmt.Errorf("payload key ID %q: want 1 to 64 of A-Z a-z 0-9 . _ -, not starting with a dot", id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("payload key ID %q: want 1 to 64 of A-Z a-z 0-9 . _ -, not starting with a dot", id)
		}
	}
	return nil
}

// ParseSecret reads a key's 32 bytes written as base64 (standard or URL
// alphabet, padded or not) or as 64 hex digits; surrounding white space is
// ignored. `openssl rand -base64 32` makes one.
func ParseSecret(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	if len(text) == 2*KeySize {
		if b, err := hex.DecodeString(text); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("key holds %d bytes, want %d", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("key is neither base64 nor hex of %d bytes", KeySize)
}

// LoadDir reads every key in dir: each regular file whose name does not
// start with a dot is a key, its name the key's ID. A Kubernetes Secret
// mounted as a volume has this form (its own ..data entries are skipped).
func LoadDir(dir string) ([]Key, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("payload keys: %w", err)
	}
	var keys []Key
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		info, err := os.Stat(path) // follows the links of a mounted Secret
		if err != nil {
			return nil, fmt.Errorf("payload key %s: %w", path, err)
		}
		if !info.Mode().IsRegular() {
			continue
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("payload key %s: %w", path, err)
		}
		secret, err := ParseSecret(string(raw))
		if err != nil {
			return nil, fmt.Errorf("payload key %s: %w", path, err)
		}
		keys = append(keys, Key{ID: e.Name(), Secret: secret})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("payload keys: no key file in %s", dir)
	}
	return keys, nil
}

// ParseList reads keys written as "id=secret" pairs separated by commas,
// semicolons or white space: the form of an environment variable.
func ParseList(list string) ([]Key, error) {
	var keys []Key
	for _, item := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\t' || r == '\r' }) {
		id, text, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("payload key %q: want id=secret", truncate(item))
		}
		// Base64 may end in "=": the ID is up to the first one.
		secret, err := ParseSecret(text)
		if err != nil {
			return nil, fmt.Errorf("payload key %q: %w", id, err)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	return keys, nil
}

// truncate keeps an error from echoing a whole secret.
func truncate(s string) string {
	if len(s) > 8 {
		return s[:8] + "…"
	}
	return s
}
