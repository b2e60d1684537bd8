package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw/payloadcrypt"
)

// protection is what keeps personal data out of Temporal in clear: the keys
// that seal payloads, the key of the hash that names workflows after phone
// numbers, and the codec server that opens payloads for the Temporal UI
// and CLI.
type protection struct {
	keysDir      string
	keysEnv      string // SMSGW_PAYLOAD_KEYS: id=secret,… (environment only: a flag would show in ps)
	activeKey    string
	idKeyFile    string
	idKeyEnv     string // SMSGW_WORKFLOW_ID_KEY
	codecAddr    string
	codecTokens  string // file
	codecEnv     string // SMSGW_CODEC_TOKENS
	codecOrigins string
	oidcIssuer   string
	oidcAudience string
}

// register adds the flags; env(name, def) is a variable's value or def.
func (p *protection) register(fs *flag.FlagSet, env func(name, def string) string, getenv func(string) string) {
	p.keysEnv, p.idKeyEnv, p.codecEnv = getenv("SMSGW_PAYLOAD_KEYS"), getenv("SMSGW_WORKFLOW_ID_KEY"), getenv("SMSGW_CODEC_TOKENS")
	fs.StringVar(&p.keysDir, "payload-keys-dir", env("SMSGW_PAYLOAD_KEYS_DIR", ""), "directory of payload keys, one file per key named by its key ID, holding 32 bytes in base64 or hex (a mounted Kubernetes Secret); keys can also be given as SMSGW_PAYLOAD_KEYS=id=secret,…; env SMSGW_PAYLOAD_KEYS_DIR")
	fs.StringVar(&p.activeKey, "payload-key-active", env("SMSGW_PAYLOAD_KEY_ACTIVE", ""), "ID of the payload key that seals new payloads (the others only open); may be left out when there is one key; env SMSGW_PAYLOAD_KEY_ACTIVE")
	fs.StringVar(&p.idKeyFile, "workflow-id-key-file", env("SMSGW_WORKFLOW_ID_KEY_FILE", ""), "file holding the secret that keys the hash naming inbound workflows after phone numbers (or SMSGW_WORKFLOW_ID_KEY); required with payload keys; env SMSGW_WORKFLOW_ID_KEY_FILE")
	fs.StringVar(&p.codecAddr, "codec-addr", env("SMSGW_CODEC_ADDR", ""), "listen address of the codec server for the Temporal UI and CLI (/codec/decode, /codec/encode); empty: none; env SMSGW_CODEC_ADDR")
	fs.StringVar(&p.codecTokens, "codec-tokens-file", env("SMSGW_CODEC_TOKENS_FILE", ""), "file of the codec server's bearer tokens, one a line (or SMSGW_CODEC_TOKENS, comma-separated); env SMSGW_CODEC_TOKENS_FILE")
	fs.StringVar(&p.oidcIssuer, "codec-oidc-issuer", env("SMSGW_CODEC_OIDC_ISSUER", ""), "OpenID provider whose access tokens the codec server also accepts (a Temporal UI that passes its user's token); env SMSGW_CODEC_OIDC_ISSUER")
	fs.StringVar(&p.oidcAudience, "codec-oidc-audience", env("SMSGW_CODEC_OIDC_AUDIENCE", ""), "audience those access tokens must hold; env SMSGW_CODEC_OIDC_AUDIENCE")
	fs.StringVar(&p.codecOrigins, "codec-origins", env("SMSGW_CODEC_ORIGINS", ""), "comma-separated web origins of the Temporal UIs allowed to call the codec server, e.g. https://temporal.example.com; env SMSGW_CODEC_ORIGINS")
}

// keyring returns the payload keys, or nil when none are configured.
func (p *protection) keyring() (*payloadcrypt.Keyring, error) {
	var keys []payloadcrypt.Key
	if p.keysDir != "" {
		k, err := payloadcrypt.LoadDir(p.keysDir)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k...)
	}
	k, err := payloadcrypt.ParseList(p.keysEnv)
	if err != nil {
		return nil, fmt.Errorf("SMSGW_PAYLOAD_KEYS: %w", err)
	}
	keys = append(keys, k...)
	if len(keys) == 0 {
		if p.activeKey != "" {
			return nil, fmt.Errorf("-payload-key-active %q names a key, but no payload keys are given", p.activeKey)
		}
		return nil, nil
	}
	return payloadcrypt.NewKeyring(keys, p.activeKey)
}

// idKey returns the secret of the workflow ID hash, or nil.
func (p *protection) idKey() ([]byte, error) {
	secret := p.idKeyEnv
	if p.idKeyFile != "" {
		raw, err := os.ReadFile(p.idKeyFile)
		if err != nil {
			return nil, fmt.Errorf("workflow ID key: %w", err)
		}
		secret = string(raw)
	}
	secret = strings.TrimSpace(secret)
	if secret != "" && len(secret) < 16 {
		return nil, errors.New("workflow ID key: shorter than 16 characters; `openssl rand -base64 32` makes one")
	}
	if secret == "" {
		return nil, nil
	}
	return []byte(secret), nil
}

// check loads what a serving role needs and says what is missing.
func (p *protection) check(logger *slog.Logger) (*payloadcrypt.Keyring, []byte, error) {
	keys, err := p.keyring()
	if err != nil {
		return nil, nil, err
	}
	idKey, err := p.idKey()
	if err != nil {
		return nil, nil, err
	}
	switch {
	case keys == nil && p.codecAddr != "":
		return nil, nil, errors.New("-codec-addr: the codec server needs payload keys (-payload-keys-dir or SMSGW_PAYLOAD_KEYS)")
	case keys != nil && idKey == nil:
		return nil, nil, errors.New("payload keys are set but no workflow ID key (-workflow-id-key-file or SMSGW_WORKFLOW_ID_KEY): workflow IDs would be reversible hashes of phone numbers")
	case keys == nil:
		logger.Warn("no payload keys: message texts and phone numbers are stored in clear in Temporal (see docs/security.md)")
	default:
		logger.Info("payloads sealed", "active_key", keys.Active(), "keys", strings.Join(keys.IDs(), ","))
	}
	return keys, idKey, nil
}

// codecTokenList reads the codec server's tokens.
func (p *protection) codecTokenList() ([]string, error) {
	var tokens []string
	if p.codecTokens != "" {
		raw, err := os.ReadFile(p.codecTokens)
		if err != nil {
			return nil, fmt.Errorf("codec tokens: %w", err)
		}
		tokens = append(tokens, strings.Split(string(raw), "\n")...)
	}
	tokens = append(tokens, strings.Split(p.codecEnv, ",")...)
	return slices.DeleteFunc(tokens, func(t string) bool { return strings.TrimSpace(t) == "" }), nil
}

// serveCodec serves the codec protocol under /codec/ on p.codecAddr until
// ctx is done.
func (p *protection) serveCodec(ctx context.Context, keys *payloadcrypt.Keyring, namespace string, logger *slog.Logger) error {
	tokens, err := p.codecTokenList()
	if err != nil {
		return err
	}
	var origins []string
	for _, o := range strings.Split(p.codecOrigins, ",") {
		if o = strings.TrimSuffix(strings.TrimSpace(o), "/"); o != "" {
			origins = append(origins, o)
		}
	}
	var oidc *payloadcrypt.OIDC
	switch {
	case p.oidcIssuer != "" && p.oidcAudience != "":
		oidc = &payloadcrypt.OIDC{Issuer: p.oidcIssuer, Audience: p.oidcAudience}
	case p.oidcIssuer != "" || p.oidcAudience != "":
		return errors.New("-codec-oidc-issuer and -codec-oidc-audience go together")
	}
	h, err := payloadcrypt.Handler(payloadcrypt.HandlerOptions{
		Keys: keys, Tokens: tokens, OIDC: oidc, Origins: origins, Namespace: namespace, Logger: logger.With("component", "codec"),
	})
	if err != nil {
		return fmt.Errorf("%w (-codec-tokens-file, SMSGW_CODEC_TOKENS or -codec-oidc-issuer)", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/codec/", h)
	ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/readyz", ok) // the probes of the chart's codec-server Deployment
	ln, err := net.Listen("tcp", p.codecAddr)
	if err != nil {
		return err
	}
	logger.Info("codec server listening", "addr", ln.Addr().String(), "origins", strings.Join(origins, ","))
	return serveUntilDone(ctx, ln, &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
}

// codecServer runs only the codec server: it needs the payload keys and
// its tokens, and neither Temporal nor a database.
func codecServer(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("codec-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	s.register(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if s.protection.codecAddr == "" {
		s.protection.codecAddr = ":8089"
	}
	logger := s.logger(stderr).With("role", "codec-server")
	keys, err := s.protection.keyring()
	if err != nil {
		return err
	}
	if keys == nil {
		return errors.New("no payload keys (-payload-keys-dir or SMSGW_PAYLOAD_KEYS)")
	}
	return s.protection.serveCodec(ctx, keys, s.temporalNamespace, logger)
}

// payloadKeysReport tells which payload keys the workflows of a namespace
// use, so an operator knows when an old key can go: it counts the payloads
// per key ID in the histories of the open workflows and of those closed
// within -closed-within. It reads metadata only and changes nothing.
func payloadKeysReport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("payload-keys", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	s.register(fs, getenv)
	closedWithin := fs.Duration("closed-within", 24*time.Hour, "also scan workflows closed within this long (0: open workflows only)")
	limit := fs.Int("max-workflows", 10000, "scan at most this many workflows (the most recent first)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	keys, err := s.protection.keyring()
	if err != nil {
		return err
	}
	tc, err := s.dialTemporal(ctx, s.logger(stderr))
	if err != nil {
		return err
	}
	defer tc.Close()

	query, what := "ExecutionStatus = 'Running'", "open workflows"
	if *closedWithin > 0 {
		query += fmt.Sprintf(" OR CloseTime > '%s'", time.Now().Add(-*closedWithin).UTC().Format(time.RFC3339))
		what += " and workflows closed within " + closedWithin.String()
	}
	scan := keyScan{temporal: tc, namespace: s.temporalNamespace, byKey: map[string]*keyUsage{}}
	if err := scan.run(ctx, query, *limit); err != nil {
		return err
	}
	if scan.truncated {
		what += " (stopped at -max-workflows)"
	}
	fmt.Fprintf(stdout, "scanned %d %s in namespace %s\n", scan.scanned, what, s.temporalNamespace)
	scan.print(stdout, keys)
	return nil
}

// keyUsage is what one key ID seals in the workflows scanned.
type keyUsage struct{ payloads, workflows, open int }

// keyScan counts payloads per key ID over the histories of the workflows
// a visibility query finds.
type keyScan struct {
	temporal  client.Client
	namespace string
	byKey     map[string]*keyUsage
	scanned   int
	truncated bool
}

func (k *keyScan) run(ctx context.Context, query string, limit int) error {
	var token []byte
	for {
		resp, err := k.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: k.namespace, Query: query, NextPageToken: token, PageSize: 100,
		})
		if err != nil {
			return fmt.Errorf("list workflows: %w", err)
		}
		for _, wf := range resp.GetExecutions() {
			if k.scanned == limit {
				k.truncated = true
				return nil
			}
			k.scanned++
			if err := k.add(ctx, wf.GetExecution(), wf.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING); err != nil {
				return err
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return nil
		}
	}
}

// add counts the payloads of one workflow's history.
func (k *keyScan) add(ctx context.Context, wf *commonpb.WorkflowExecution, running bool) error {
	counts := map[string]int{}
	it := k.temporal.GetWorkflowHistory(ctx, wf.GetWorkflowId(), wf.GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return fmt.Errorf("history of %s: %w", wf.GetWorkflowId(), err)
		}
		if err := payloadcrypt.CountKeys(ev, counts); err != nil {
			return err
		}
	}
	for id, n := range counts {
		u := k.byKey[id]
		if u == nil {
			u = &keyUsage{}
			k.byKey[id] = u
		}
		u.payloads += n
		u.workflows++
		if running {
			u.open++
		}
	}
	return nil
}

// print writes a line per key ID, noting the active key, keys found but
// not held by keys, and keys held but not found.
func (k *keyScan) print(w io.Writer, keys *payloadcrypt.Keyring) {
	line := func(id string, u keyUsage, note string) {
		fmt.Fprintf(w, "%-24s %10d %10d %10d  %s\n", id, u.payloads, u.workflows, u.open, note)
	}
	fmt.Fprintf(w, "%-24s %10s %10s %10s\n", "KEY ID", "PAYLOADS", "WORKFLOWS", "OPEN")
	for _, id := range slices.Sorted(maps.Keys(k.byKey)) {
		note := ""
		switch {
		case id == payloadcrypt.Clear:
			note = "not sealed"
		case keys != nil && id == keys.Active():
			note = "active"
		case keys != nil && !slices.Contains(keys.IDs(), id):
			note = "NOT HELD by this configuration"
		}
		line(id, *k.byKey[id], note)
	}
	if keys == nil {
		return
	}
	for _, id := range keys.IDs() {
		if k.byKey[id] == nil {
			line(id, keyUsage{}, "held, not used by the workflows scanned")
		}
	}
}
