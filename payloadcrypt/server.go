package payloadcrypt

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// HandlerOptions configure a codec server.
type HandlerOptions struct {
	Keys *Keyring
	// Tokens are the bearer tokens accepted; several let a token rotate.
	Tokens []string
	// OIDC, when set, also accepts the access tokens of a Temporal UI that
	// passes its user's token. Tokens or OIDC are required.
	OIDC *OIDC
	// Origins are the web origins (scheme://host:port) of the Temporal UIs
	// allowed to call from a browser; "*" allows any.
	Origins []string
	// Namespace, when set, is the only namespace served: a request whose
	// X-Namespace header names another is refused.
	Namespace string
	// MaxBody bounds a request's body; 0 means 8 MiB.
	MaxBody int64
	Logger  *slog.Logger
}

// Handler serves the codec protocol of the Temporal UI and CLI: a POST to a
// path ending in /decode opens the payloads it is given, one ending in
// /encode seals them, both as {"payloads":[…]} in protobuf JSON.
//
// A request is authenticated by a token, given either as
// "Authorization: Bearer <token>" (the CLI's --codec-auth) or as the path
// segment before /decode or /encode (…/codec/<token>/decode), for a
// Temporal UI whose codec endpoint setting is a URL and which sends no
// header of its own choosing; or, with OIDC, by the user's access token a
// Temporal UI passes as a bearer token. Browsers get CORS answers for the
// allowed origins, preflight included.
func Handler(o HandlerOptions) (http.Handler, error) {
	if o.Keys == nil {
		return nil, errors.New("codec server: no payload keys")
	}
	h := &handler{o: o}
	for _, t := range o.Tokens {
		if t = strings.TrimSpace(t); t != "" {
			h.tokens = append(h.tokens, sha256.Sum256([]byte(t)))
		}
	}
	if len(h.tokens) == 0 && o.OIDC == nil {
		return nil, errors.New("codec server: no token configured; every request must be authenticated")
	}
	if h.o.MaxBody <= 0 {
		h.o.MaxBody = 8 << 20
	}
	if h.o.Logger == nil {
		h.o.Logger = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

type handler struct {
	o      HandlerOptions
	tokens [][32]byte
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin != "" {
		if !h.originAllowed(origin) {
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Add("Vary", "Origin")
	}
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization")
		w.Header().Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	segments := strings.Split(strings.TrimSuffix(r.URL.Path, "/"), "/")
	op := segments[len(segments)-1]
	if op != "decode" && op != "encode" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	pathToken := ""
	if len(segments) >= 2 {
		pathToken = segments[len(segments)-2]
	}
	bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	user, ok := h.authenticate(r, bearer, pathToken)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="smsgw codec"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	ns := r.Header.Get("X-Namespace")
	if h.o.Namespace != "" && ns != "" && ns != h.o.Namespace {
		http.Error(w, "namespace not served here", http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.o.MaxBody))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	var in commonpb.Payloads
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &in); err != nil {
		http.Error(w, "body is not {\"payloads\":[…]} in protobuf JSON", http.StatusBadRequest)
		return
	}
	var out []*commonpb.Payload
	sealed, opened := 0, 0
	if op == "encode" {
		out, err = Codec{Keys: h.o.Keys}.Encode(in.Payloads)
		if err != nil {
			http.Error(w, "cannot seal the payloads", http.StatusInternalServerError)
			return
		}
		sealed = len(out)
	} else {
		// A payload that cannot be opened (a key no longer held, damage) is
		// given back as it is, so the rest still show.
		out = make([]*commonpb.Payload, len(in.Payloads))
		for i, p := range in.Payloads {
			out[i] = p
			if string(p.GetMetadata()[MetadataEncoding]) != EncodingSealed {
				continue
			}
			if o, err := h.o.Keys.open(p); err == nil {
				out[i] = o
				opened++
			}
		}
	}
	resp, err := protojson.Marshal(&commonpb.Payloads{Payloads: out})
	if err != nil {
		http.Error(w, "cannot write the payloads", http.StatusInternalServerError)
		return
	}
	h.o.Logger.Info("codec request", "op", op, "namespace", ns, "user", user, "payloads", len(in.Payloads),
		"opened", opened, "sealed", sealed, "remote", r.RemoteAddr, "origin", origin)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(resp)
}

// authenticate says who a request comes from: "token" for a configured
// token, the user an access token names, or false.
func (h *handler) authenticate(r *http.Request, bearer, pathToken string) (string, bool) {
	if h.valid(bearer) || h.valid(pathToken) {
		return "token", true
	}
	if h.o.OIDC == nil || bearer == "" {
		return "", false
	}
	user, err := h.o.OIDC.Verify(r.Context(), bearer)
	if err != nil {
		h.o.Logger.Warn("codec request refused", "err", err, "remote", r.RemoteAddr)
		return "", false
	}
	return user, true
}

func (h *handler) originAllowed(origin string) bool {
	return slices.Contains(h.o.Origins, "*") || slices.Contains(h.o.Origins, origin)
}

// valid compares a presented token with every configured one in constant
// time (of their hashes, so lengths do not show either).
func (h *handler) valid(token string) bool {
	if token == "" {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	ok := 0
	for _, t := range h.tokens {
		ok |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	return ok == 1
}
