package payloadcrypt

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"
)

// OIDC checks the access tokens the Temporal UI sends to a codec server
// when its "pass the user access token" option is on: JWTs that the UI's
// OpenID provider signed for the user who is signed in. A token is taken
// when its signature verifies under one of the provider's published keys
// (RS256/384/512 or ES256/384; found through the provider's discovery
// document), its issuer is Issuer, its audience holds Audience, and it has
// not expired.
type OIDC struct {
	Issuer   string // e.g. https://login.example.com/realms/staff
	Audience string // the audience the provider puts in the UI's access tokens
	Client   *http.Client
	Now      func() time.Time

	mu      sync.Mutex
	jwksURI string
	keys    map[string]crypto.PublicKey
	fetched time.Time
}

// clockSkew is how far the clocks of the provider and this process may
// disagree about expiry.
const clockSkew = time.Minute

// refetchAfter limits how often an unknown key ID makes the keys be read
// again (the provider rotated its keys, or someone sends junk).
const refetchAfter = 30 * time.Second

// Verify checks token and returns who it names (its sub claim, or email
// when there is one), for the audit log.
func (o *OIDC) Verify(ctx context.Context, token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("not a JWT")
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return "", fmt.Errorf("JWT header: %w", err)
	}
	hash, ok := map[string]crypto.Hash{"RS256": crypto.SHA256, "RS384": crypto.SHA384, "RS512": crypto.SHA512,
		"ES256": crypto.SHA256, "ES384": crypto.SHA384}[header.Alg]
	if !ok {
		return "", fmt.Errorf("JWT algorithm %q not accepted", truncate(header.Alg))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", fmt.Errorf("JWT signature: %w", err)
	}
	key, err := o.key(ctx, header.Kid)
	if err != nil {
		return "", err
	}
	h := hash.New()
	h.Write([]byte(parts[0] + "." + parts[1]))
	if err := verifySignature(header.Alg, key, hash, h.Sum(nil), sig); err != nil {
		return "", err
	}

	var claims struct {
		Iss   string          `json:"iss"`
		Aud   json.RawMessage `json:"aud"`
		Exp   *float64        `json:"exp"`
		Nbf   *float64        `json:"nbf"`
		Sub   string          `json:"sub"`
		Email string          `json:"email"`
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return "", fmt.Errorf("JWT claims: %w", err)
	}
	now := o.now()
	switch {
	case claims.Iss != o.Issuer:
		return "", fmt.Errorf("JWT issuer %q is not %q", truncate(claims.Iss), o.Issuer)
	case !audienceHolds(claims.Aud, o.Audience):
		return "", fmt.Errorf("JWT audience is not %q", o.Audience)
	case claims.Exp == nil || now.After(time.Unix(int64(*claims.Exp), 0).Add(clockSkew)):
		return "", errors.New("JWT expired or without expiry")
	case claims.Nbf != nil && now.Add(clockSkew).Before(time.Unix(int64(*claims.Nbf), 0)):
		return "", errors.New("JWT not valid yet")
	}
	if claims.Email != "" {
		return claims.Email, nil
	}
	return claims.Sub, nil
}

func (o *OIDC) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// audienceHolds reports whether aud (a string or a list of them) holds want.
func audienceHolds(aud json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(aud, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(aud, &many) == nil {
		for _, a := range many {
			if a == want {
				return true
			}
		}
	}
	return false
}

func verifySignature(alg string, key crypto.PublicKey, hash crypto.Hash, digest, sig []byte) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if alg[:2] != "RS" {
			break
		}
		if err := rsa.VerifyPKCS1v15(k, hash, digest, sig); err != nil {
			return errors.New("JWT signature does not verify")
		}
		return nil
	case *ecdsa.PublicKey:
		size := (k.Params().BitSize + 7) / 8
		if alg[:2] != "ES" || len(sig) != 2*size {
			break
		}
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(k, digest, r, s) {
			return errors.New("JWT signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("JWT algorithm %s does not match its key", alg)
}

// key returns the provider's key kid, reading the provider's keys when
// they were never read, are older than an hour, or lack kid (not more often
// than refetchAfter).
func (o *OIDC) key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k, ok := o.keys[kid]
	age := o.now().Sub(o.fetched)
	if ok && age < time.Hour {
		return k, nil
	}
	if o.keys == nil || age >= refetchAfter {
		if err := o.fetch(ctx); err != nil {
			if ok { // the provider is away: the key known keeps working
				return k, nil
			}
			return nil, err
		}
		if k, ok = o.keys[kid]; ok {
			return k, nil
		}
	}
	return nil, fmt.Errorf("JWT key %q is not one of the provider's", truncate(kid))
}

// fetch reads the provider's discovery document (once) and its keys.
func (o *OIDC) fetch(ctx context.Context) error {
	if o.jwksURI == "" {
		var disc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := o.getJSON(ctx, strings.TrimSuffix(o.Issuer, "/")+"/.well-known/openid-configuration", &disc); err != nil {
			return err
		}
		if disc.Issuer != o.Issuer || disc.JWKSURI == "" {
			return fmt.Errorf("OpenID discovery of %s names issuer %q and keys %q", o.Issuer, disc.Issuer, disc.JWKSURI)
		}
		o.jwksURI = disc.JWKSURI
	}
	var set struct {
		Keys []struct {
			Kty, Kid, Use, Crv, N, E, X, Y string
		} `json:"keys"`
	}
	if err := o.getJSON(ctx, o.jwksURI, &set); err != nil {
		return err
	}
	keys := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		if k.Use == "enc" {
			continue
		}
		if pub, err := publicKey(k.Kty, k.Crv, k.N, k.E, k.X, k.Y); err == nil {
			keys[k.Kid] = pub
		}
	}
	o.keys, o.fetched = keys, o.now()
	return nil
}

func (o *OIDC) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	c := o.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("OpenID provider: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("OpenID provider: %s answered %s", url, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("OpenID provider: %s: %w", url, err)
	}
	return nil
}

// publicKey builds a JWK's public key: RSA, or EC on P-256 or P-384.
func publicKey(kty, crv, n, e, x, y string) (crypto.PublicKey, error) {
	num := func(s string) (*big.Int, error) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) == 0 {
			return nil, errors.New("bad JWK number")
		}
		return new(big.Int).SetBytes(b), nil
	}
	switch kty {
	case "RSA":
		nn, err := num(n)
		if err != nil {
			return nil, err
		}
		ee, err := num(e)
		if err != nil || !ee.IsInt64() || ee.Int64() < 3 || ee.Int64() > 1<<31 {
			return nil, errors.New("bad JWK exponent")
		}
		if nn.BitLen() < 2048 {
			return nil, errors.New("RSA key under 2048 bits")
		}
		return &rsa.PublicKey{N: nn, E: int(ee.Int64())}, nil
	case "EC":
		curves := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384()}
		curve := curves[crv]
		if curve == nil {
			return nil, fmt.Errorf("curve %q not accepted", crv)
		}
		xb, errX := base64.RawURLEncoding.DecodeString(x)
		yb, errY := base64.RawURLEncoding.DecodeString(y)
		size := (curve.Params().BitSize + 7) / 8
		if errX != nil || errY != nil || len(xb) != size || len(yb) != size {
			return nil, errors.New("bad JWK point")
		}
		return ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, xb...), yb...))
	}
	return nil, fmt.Errorf("key type %q not accepted", kty)
}
