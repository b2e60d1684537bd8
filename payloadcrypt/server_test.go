package payloadcrypt

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

func codecServer(t *testing.T, keys *Keyring) *httptest.Server {
	t.Helper()
	h, err := Handler(HandlerOptions{Keys: keys, Tokens: []string{"old-token", "s3cret"}, Origins: []string{"http://ui.example:8233"}, Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/codec/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, url, body string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if req.Header.Get("X-Method") != "" {
		req.Method = req.Header.Get("X-Method")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestCodecServer(t *testing.T) {
	keys := ring(t, "", newKey(t, "a"))
	srv := codecServer(t, keys)
	plain, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{message(t)}})

	// Encode, then decode what came back: the text again.
	code, _, sealed := post(t, srv.URL+"/codec/encode", string(plain), "Authorization", "Bearer s3cret", "X-Namespace", "default")
	if code != 200 || strings.Contains(sealed, "493817") || !strings.Contains(sealed, "encryption-key-id") {
		t.Fatalf("encode: %d %s", code, sealed)
	}
	code, hdr, opened := post(t, srv.URL+"/codec/decode", sealed, "Authorization", "Bearer old-token", "X-Namespace", "default")
	var out commonpb.Payloads
	if code != 200 || hdr.Get("Content-Type") != "application/json" || protojson.Unmarshal([]byte(opened), &out) != nil ||
		len(out.Payloads) != 1 || !strings.Contains(string(out.Payloads[0].Data), "493817") {
		t.Fatalf("decode: %d %s", code, opened)
	}

	// The Temporal UI's form: the token in the path, a browser origin.
	code, hdr, opened = post(t, srv.URL+"/codec/s3cret/decode", sealed, "Origin", "http://ui.example:8233", "X-Namespace", "default")
	if code != 200 || !strings.Contains(opened, base64Of(t, out.Payloads[0].Data)) || hdr.Get("Access-Control-Allow-Origin") != "http://ui.example:8233" {
		t.Fatalf("decode with the token in the path: %d %v %s", code, hdr, opened)
	}

	for name, c := range map[string]struct {
		path   string
		header []string
		want   int
	}{
		"no token":        {"/codec/decode", nil, http.StatusUnauthorized},
		"wrong token":     {"/codec/decode", []string{"Authorization", "Bearer s3cre"}, http.StatusUnauthorized},
		"wrong path tok":  {"/codec/nope/decode", nil, http.StatusUnauthorized},
		"other namespace": {"/codec/decode", []string{"Authorization", "Bearer s3cret", "X-Namespace", "other"}, http.StatusForbidden},
		"other origin":    {"/codec/s3cret/decode", []string{"Origin", "http://evil.example"}, http.StatusForbidden},
		"GET":             {"/codec/decode", []string{"Authorization", "Bearer s3cret", "X-Method", "GET"}, http.StatusMethodNotAllowed},
		"other path":      {"/codec/s3cret/peek", nil, http.StatusNotFound},
		"bad JSON":        {"/codec/decode", []string{"Authorization", "Bearer s3cret", "X-Body", "{"}, http.StatusBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			body := sealed
			for i := 0; i+1 < len(c.header); i += 2 {
				if c.header[i] == "X-Body" {
					body = c.header[i+1]
				}
			}
			code, _, resp := post(t, srv.URL+c.path, body, c.header...)
			if code != c.want {
				t.Fatalf("HTTP %d %s, want %d", code, resp, c.want)
			}
			if code != 200 && strings.Contains(resp, "493817") {
				t.Fatal("a refused request got the text")
			}
		})
	}

	// A payload of a key not held comes back as it is; the others open.
	foreign, _ := Codec{Keys: ring(t, "", newKey(t, "z"))}.Encode([]*commonpb.Payload{message(t)})
	mine, _ := Codec{Keys: keys}.Encode([]*commonpb.Payload{message(t)})
	mixed, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{foreign[0], mine[0]}})
	code, _, opened = post(t, srv.URL+"/codec/decode", string(mixed), "Authorization", "Bearer s3cret")
	out.Reset()
	if code != 200 || protojson.Unmarshal([]byte(opened), &out) != nil || len(out.Payloads) != 2 ||
		string(out.Payloads[0].Metadata[MetadataKeyID]) != "z" || !strings.Contains(string(out.Payloads[1].Data), "493817") {
		t.Fatalf("mixed decode: %d %s", code, opened)
	}
}

func base64Of(t *testing.T, b []byte) string {
	t.Helper()
	j, _ := protojson.Marshal(&commonpb.Payload{Data: b})
	s := string(j)
	return s[strings.Index(s, `"data":"`)+8 : strings.LastIndex(s, `"`)]
}

func TestCodecServerPreflight(t *testing.T) {
	srv := codecServer(t, ring(t, "", newKey(t, "a")))
	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/codec/decode", nil)
	req.Header.Set("Origin", "http://ui.example:8233")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace,authorization")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "http://ui.example:8233" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "X-Namespace") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
		h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, h)
	}
	req.Header.Set("Origin", "http://evil.example")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestCodecServerNeedsAToken(t *testing.T) {
	if _, err := Handler(HandlerOptions{Keys: ring(t, "", newKey(t, "a")), Tokens: []string{" "}}); err == nil {
		t.Fatal("a codec server without a token was built")
	}
}
