package payloadcrypt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// provider is an OpenID provider on loopback: discovery, keys, and tokens
// signed with them.
type provider struct {
	srv    *httptest.Server
	mu     sync.Mutex
	rsa    map[string]*rsa.PrivateKey
	ec     map[string]*ecdsa.PrivateKey
	served int // key sets served
}

func newProvider(t *testing.T) *provider {
	t.Helper()
	p := &provider{rsa: map[string]*rsa.PrivateKey{}, ec: map[string]*ecdsa.PrivateKey{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": p.srv.URL, "jwks_uri": p.srv.URL + "/keys"})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, _ *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.served++
		b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
		var keys []map[string]string
		for kid, k := range p.rsa {
			keys = append(keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig",
				"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
		}
		for kid, k := range p.ec {
			pub, _ := k.PublicKey.Bytes() // 0x04 || X || Y
			keys = append(keys, map[string]string{"kty": "EC", "kid": kid, "crv": "P-256",
				"x": b64(pub[1:33]), "y": b64(pub[33:])})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) addRSA(t *testing.T, kid string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.rsa[kid] = k
	p.mu.Unlock()
}

func (p *provider) addEC(t *testing.T, kid string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ec[kid] = k
	p.mu.Unlock()
}

// token signs claims with the key kid under alg.
func (p *provider) token(t *testing.T, alg, kid string, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(map[string]string{"alg": alg, "kid": kid, "typ": "JWT"}) + "." + enc(claims)
	digest := sha256.Sum256([]byte(input))
	p.mu.Lock()
	defer p.mu.Unlock()
	var sig []byte
	switch {
	case alg == "RS256":
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, p.rsa[kid], crypto.SHA256, digest[:]); err != nil {
			t.Fatal(err)
		}
	case alg == "ES256":
		r, s, err := ecdsa.Sign(rand.Reader, p.ec[kid], digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	case alg == "HS256": // the public modulus as an HMAC secret: the old algorithm confusion
		m := hmac.New(sha256.New, p.rsa[kid].N.Bytes())
		m.Write([]byte(input))
		sig = m.Sum(nil)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestOIDCAccessTokens(t *testing.T) {
	p := newProvider(t)
	p.addRSA(t, "r1")
	p.addEC(t, "e1")
	now := time.Now()
	o := &OIDC{Issuer: p.srv.URL, Audience: "temporal-ui", Now: func() time.Time { return now }}
	good := func() map[string]any {
		return map[string]any{"iss": p.srv.URL, "aud": []string{"account", "temporal-ui"}, "sub": "u-17",
			"email": "ana@example.com", "exp": now.Add(5 * time.Minute).Unix()}
	}
	with := func(k string, v any) map[string]any {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}

	if user, err := o.Verify(t.Context(), p.token(t, "RS256", "r1", good())); err != nil || user != "ana@example.com" {
		t.Fatalf("RS256 token: %q, %v", user, err)
	}
	if user, err := o.Verify(t.Context(), p.token(t, "ES256", "e1", with("email", nil))); err != nil || user != "u-17" {
		t.Fatalf("ES256 token: %q, %v", user, err)
	}

	tampered := p.token(t, "RS256", "r1", good())
	parts := strings.Split(tampered, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + p.srv.URL + `","aud":"temporal-ui","sub":"root","exp":9999999999}`))
	for name, c := range map[string]struct {
		token string
		want  string
	}{
		"other issuer":    {p.token(t, "RS256", "r1", with("iss", "https://evil.example")), "issuer"},
		"other audience":  {p.token(t, "RS256", "r1", with("aud", "somebody-else")), "audience"},
		"expired":         {p.token(t, "RS256", "r1", with("exp", now.Add(-2*time.Minute).Unix())), "expired"},
		"no expiry":       {p.token(t, "RS256", "r1", with("exp", nil)), "expired"},
		"not yet":         {p.token(t, "RS256", "r1", with("nbf", now.Add(5*time.Minute).Unix())), "not valid yet"},
		"alg none":        {p.token(t, "none", "r1", good()), "not accepted"},
		"HS256 confusion": {p.token(t, "HS256", "r1", good()), "not accepted"},
		"tampered claims": {strings.Join(parts, "."), "does not verify"},
		"garbage":         {"x.y.z", "JWT header"},
		"not a JWT":       {"static-token", "not a JWT"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := o.Verify(t.Context(), c.token)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}

	// The provider rotates its keys: a token under a new key makes the keys
	// be read again (at most every refetchAfter).
	p.addRSA(t, "r2")
	fresh := p.token(t, "RS256", "r2", good())
	if _, err := o.Verify(t.Context(), fresh); err == nil || !strings.Contains(err.Error(), "not one of the provider's") {
		t.Fatalf("a new key within %s of the last read: %v", refetchAfter, err)
	}
	now = now.Add(refetchAfter)
	if _, err := o.Verify(t.Context(), p.token(t, "RS256", "r2", good())); err != nil {
		t.Fatalf("a token under the provider's new key: %v", err)
	}
}

// TestCodecServerTakesUIAccessTokens: the codec server with OIDC opens
// payloads for a UI that passes its user's access token, and refuses a
// token of another audience.
func TestCodecServerTakesUIAccessTokens(t *testing.T) {
	p := newProvider(t)
	p.addRSA(t, "r1")
	keys := ring(t, "", newKey(t, "a"))
	h, err := Handler(HandlerOptions{Keys: keys, OIDC: &OIDC{Issuer: p.srv.URL, Audience: "temporal-ui"}, Origins: []string{"https://temporal.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	sealed, _ := Codec{Keys: keys}.Encode([]*commonpb.Payload{message(t)})
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: sealed})
	claims := map[string]any{"iss": p.srv.URL, "aud": "temporal-ui", "sub": "ana", "exp": time.Now().Add(time.Minute).Unix()}
	code, _, out := post(t, srv.URL+"/codec/decode", string(body), "Authorization", "Bearer "+p.token(t, "RS256", "r1", claims), "Origin", "https://temporal.example.com")
	if code != 200 || !strings.Contains(out, base64Of(t, message(t).Data)) {
		t.Fatalf("decode with the UI's access token: %d %s", code, out)
	}
	// Several browsers at once share the provider's keys.
	token := p.token(t, "RS256", "r1", claims)
	var wg sync.WaitGroup
	codes := make(chan int, 8)
	for range 8 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/codec/decode", strings.NewReader(string(body)))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != 200 {
			t.Fatalf("a decode among several at once: HTTP %d", code)
		}
	}
	claims["aud"] = "another-app"
	if code, _, _ := post(t, srv.URL+"/codec/decode", string(body), "Authorization", "Bearer "+p.token(t, "RS256", "r1", claims)); code != http.StatusUnauthorized {
		t.Fatalf("a token for another audience: HTTP %d", code)
	}
	if code, _, _ := post(t, srv.URL+"/codec/decode", string(body)); code != http.StatusUnauthorized {
		t.Fatalf("no token: HTTP %d", code)
	}
}
