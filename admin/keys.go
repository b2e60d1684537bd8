package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
)

// keyIDLen is the length of a key's ID: that many hex digits of its SHA-256.
const keyIDLen = 12

// keyPrefixLen is how much of a new key its description keeps.
const keyPrefixLen = 10

// CreateAPIKey makes a new API key for a customer. The key is returned
// here, once; only its SHA-256 is stored.
func (s *Service) CreateAPIKey(ctx context.Context, who, customerID string, expected int64) (string, smsgw.APIKeyInfo, int64, error) {
	var secret [20]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", smsgw.APIKeyInfo{}, 0, fmt.Errorf("new API key: %w", err)
	}
	key := "sk_" + hex.EncodeToString(secret[:])
	hash := smsgw.HashAPIKey(key)
	info := smsgw.APIKeyInfo{ID: hash[:keyIDLen], CustomerID: customerID, Prefix: key[:keyPrefixLen], CreatedAt: s.now().UTC()}
	v, err := s.change(ctx, who, fmt.Sprintf("create API key %s of customer %s", info.ID, customerID), expected, func(st *state) error {
		cu := customer(st.cfg, customerID)
		if cu == nil {
			return errNotFound(Customers, customerID)
		}
		cu.APIKeys = append(cu.APIKeys, "sha256:"+hash)
		st.keys = append(st.keys, info)
		return nil
	})
	if err != nil {
		return "", smsgw.APIKeyInfo{}, 0, err
	}
	return key, info, v, nil
}

// ListAPIKeys describes a customer's API keys: ID, prefix and creation time.
func (s *Service) ListAPIKeys(ctx context.Context, customerID string) ([]smsgw.APIKeyInfo, int64, error) {
	st, err := s.current(ctx)
	if err != nil {
		return nil, 0, err
	}
	cu := customer(st.cfg, customerID)
	if cu == nil {
		return nil, 0, errNotFound(Customers, customerID)
	}
	out := []smsgw.APIKeyInfo{}
	for _, k := range cu.APIKeys {
		h, err := config.APIKeyHash(k)
		if err != nil {
			continue
		}
		info := smsgw.APIKeyInfo{ID: h[:keyIDLen], CustomerID: customerID}
		if i := slices.IndexFunc(st.keys, func(k smsgw.APIKeyInfo) bool { return k.ID == info.ID && k.CustomerID == customerID }); i >= 0 {
			info = st.keys[i]
		}
		out = append(out, info)
	}
	return out, st.version, nil
}

// RevokeAPIKey removes a customer's API key by its ID. Every replica
// refuses it once it has the new version (within its poll interval).
func (s *Service) RevokeAPIKey(ctx context.Context, who, customerID, keyID string, expected int64) (int64, error) {
	if len(keyID) != keyIDLen {
		return 0, smsgw.Errorf(smsgw.EINVALID, "a key ID is %d hex digits", keyIDLen)
	}
	keyID = strings.ToLower(keyID)
	return s.change(ctx, who, fmt.Sprintf("revoke API key %s of customer %s", keyID, customerID), expected, func(st *state) error {
		cu := customer(st.cfg, customerID)
		if cu == nil {
			return errNotFound(Customers, customerID)
		}
		n := len(cu.APIKeys)
		cu.APIKeys = slices.DeleteFunc(cu.APIKeys, func(k string) bool {
			h, err := config.APIKeyHash(k)
			return err == nil && h[:keyIDLen] == keyID
		})
		if len(cu.APIKeys) == n {
			return smsgw.Errorf(smsgw.ENOTFOUND, "customer %q has no API key %s", customerID, keyID)
		}
		return nil
	})
}

func customer(cfg *config.Config, id string) *config.Customer {
	for i := range cfg.Customers {
		if cfg.Customers[i].ID == id {
			return &cfg.Customers[i]
		}
	}
	return nil
}
