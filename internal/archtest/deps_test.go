package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is the gateway's module path.
const module = "github.com/smsgw/smsgw"

// A layer names packages of the module and the imports their non-test code
// may have. Patterns are module-relative ("." is the root package) or full
// paths of other modules; a trailing "/..." matches a subtree. Standard
// library imports are allowed unless a layer lists them in forbidStd.
type layer struct {
	name      string
	pkgs      []string
	allow     []string // when set, the only imports allowed (besides the standard library)
	forbid    []string // imports never allowed
	forbidStd []string // standard library imports not allowed
	why       string
}

// layers are docs/architecture.md's rules, from the bottom up.
var layers = []layer{
	{
		name: "domain", pkgs: []string{"."},
		allow: []string{},
		why:   "the domain types and rules depend on nothing but the standard library",
	},
	{
		name: "codecs", pkgs: []string{"gsm7", "segment", "connectors/smppstatus", "connectors/smppwire"},
		allow: []string{"gsm7", "github.com/linxGnu/gosmpp/pdu"},
		why:   "the text and SMPP codecs are pure libraries",
	},
	{
		name: "helpers", pkgs: []string{"internal/promreg"},
		allow: []string{"github.com/prometheus/client_golang/prometheus"},
		why:   "a helper shared across layers may depend on nothing of the module",
	},
	{
		name: "payload encryption", pkgs: []string{"payloadcrypt"},
		allow: []string{"go.temporal.io/api/common/v1", "go.temporal.io/api/failure/v1", "go.temporal.io/api/proxy", "go.temporal.io/sdk/converter",
			"go.temporal.io/sdk/temporal", "google.golang.org/protobuf/..."},
		why: "the payload codec seals what any Temporal client of the gateway sends, and knows nothing of what the payloads mean",
	},
	{
		name: "SMPP session", pkgs: []string{"connectors/smppsession"},
		allow: []string{"connectors/smppwire", "connectors/smppstatus"},
		why:   "the SMPP session engine speaks the protocol for both ends of a bind and knows nothing of who uses it",
	},
	{
		name: "configuration", pkgs: []string{"config", "routing"},
		allow: []string{".", "config", "segment", "connectors/smppstatus", "golang.org/x/crypto/bcrypt", "gopkg.in/yaml.v3"},
		why:   "configuration and routing are pure: they read a file they are given and decide",
	},
	{
		name: "storage", pkgs: []string{"store/..."},
		allow: []string{".", "store/groupcommit", "go.mongodb.org/mongo-driver/v2/...", "github.com/go-sql-driver/mysql",
			"github.com/prometheus/client_golang/prometheus", "github.com/prometheus/client_model/go"},
		why: "storage knows the domain and its database driver, never Temporal, activities or workflows",
	},
	{
		name: "workflows", pkgs: []string{"workflows"},
		allow: []string{".", "activities", "segment",
			"go.temporal.io/sdk/workflow", "go.temporal.io/sdk/temporal", "go.temporal.io/api/enums/v1"},
		forbidStd: []string{"net/...", "os/...", "database/...", "io/fs", "math/rand/...", "crypto/rand", "sync", "log/slog"},
		why:       "workflow code is deterministic: no I/O, no configuration, no clients, no randomness",
	},
	{
		name: "activities", pkgs: []string{"activities"},
		allow: []string{".", "config", "routing", "segment",
			"go.temporal.io/sdk/activity", "go.temporal.io/sdk/temporal", "github.com/prometheus/client_golang/prometheus", "internal/promreg"},
		why: "activities reach stores and channels through interfaces they declare",
	},
	{
		name: "history upkeep", pkgs: []string{"importer", "erasure", "retention"},
		allow: []string{".", "segment", "internal/promreg", "github.com/go-sql-driver/mysql",
			"github.com/prometheus/client_golang/prometheus", "go.temporal.io/api/..."},
		why: "import, retention and erasure reach the stores through interfaces they declare, and Temporal only through its API types",
	},
	{
		name: "admission rules", pkgs: []string{"rules"},
		allow: []string{".", "config", "internal/promreg", "github.com/prometheus/client_golang/prometheus"},
		why:   "the admission rules decide from the configuration and reach the shared list and counters through interfaces",
	},
	{
		name: "notification channels", pkgs: []string{"notify/..."},
		forbid: []string{"activities", "workflows", "lifecycle", "store/...", "connectors/...", "api", "worker", "cmd/...", "go.temporal.io/..."},
		why:    "a channel delivers a domain Delivery; it knows nothing of where it is called from",
	},
	{
		name: "client side", pkgs: []string{"lifecycle"},
		forbid: []string{"store/...", "connectors/...", "notify/...", "api", "worker", "cmd/...", "go.temporal.io/sdk/worker"},
		why:    "the outside of the workflows starts, signals and reads them; it stores nothing itself",
	},
	{
		name: "SMPP server", pkgs: []string{"connectors/smppserver", "connectors/smppserver/..."},
		forbid: []string{"store/...", "activities", "workflows", "lifecycle", "api", "worker", "cmd/...", "go.temporal.io/..."},
		why:    "the customers' SMSC depends on interfaces of its own, implemented by the stores and the lifecycle package",
	},
	{
		name: "connectors", pkgs: []string{"connectors/..."},
		forbid: []string{"store/...", "api", "worker", "cmd/...", "notify/..."},
		why:    "connectors reach the stores through interfaces, and never the wiring",
	},
	{
		name: "API", pkgs: []string{"api", "api/..."},
		forbid: []string{"store/...", "activities", "workflows", "lifecycle", "connectors/...", "worker", "admin", "config", "cmd/...", "go.temporal.io/..."},
		why:    "the API serves the domain's interfaces (Submitter, MessageReader, …) and knows no engine or database",
	},
	{
		name: "configuration service", pkgs: []string{"admin"},
		allow: []string{".", "config", "golang.org/x/crypto/bcrypt", "gopkg.in/yaml.v3"},
		why:   "the admin service changes the configuration through a store interface of its own; the binary wires it to the API and the event store",
	},
	{
		name: "wiring", pkgs: []string{"worker"},
		forbid: []string{"api", "cmd/...", "store/..."},
		why:    "worker wires Temporal workers and connectors; the binary wires the rest",
	},
}

// testOnly are packages for tests: no other code imports them.
var testOnly = []string{"internal/testenv", "connectors/smppwire/smppwiretest", "importer/sqlboxtest"}

// pkg is what `go list -json` says of a package, as far as the rules need.
type pkg struct {
	ImportPath string
	Imports    []string
}

// TestImportsFollowTheLayers runs `go list` over the module and fails on
// every import that docs/architecture.md does not allow.
func TestImportsFollowTheLayers(t *testing.T) {
	pkgs := list(t)
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages; run from within the module", len(pkgs))
	}
	for _, p := range pkgs {
		rel := relative(p.ImportPath)
		for _, imp := range p.Imports {
			if slices.Contains(testOnly, relative(imp)) {
				t.Errorf("%s imports %s outside its tests", rel, relative(imp))
			}
			if strings.HasPrefix(relative(imp), "cmd/") {
				t.Errorf("%s imports %s: nothing imports a command", rel, relative(imp))
			}
		}
		for _, l := range layers {
			if !matchAny(l.pkgs, rel) {
				continue
			}
			for _, imp := range p.Imports {
				if msg := l.check(imp); msg != "" {
					t.Errorf("%s (%s) imports %s: %s; %s (docs/architecture.md)", rel, l.name, relative(imp), msg, l.why)
				}
			}
		}
	}
}

// check returns why an import breaks the layer's rules, or "".
func (l layer) check(imp string) string {
	rel := relative(imp)
	if standard(imp) {
		if matchAny(l.forbidStd, imp) {
			return "not in this layer"
		}
		return ""
	}
	if rel == "proto/smsgw/v1" && !slices.Contains(l.pkgs, "api") {
		return "only the API speaks protobuf"
	}
	if matchAny(l.forbid, rel) {
		return "forbidden"
	}
	if l.allow != nil && !matchAny(l.allow, rel) {
		return "not among the imports this layer allows"
	}
	return ""
}

// TestRulesCatchForbiddenImports shows the rules at work on imports that
// must be refused.
func TestRulesCatchForbiddenImports(t *testing.T) {
	cases := []struct {
		layer, pkg, imp string
	}{
		{"storage", "store/mongostore", module + "/activities"},
		{"storage", "store/mysqlstore", "go.temporal.io/sdk/client"},
		{"workflows", "workflows", module + "/config"},
		{"workflows", "workflows", "go.temporal.io/sdk/client"},
		{"workflows", "workflows", "net/http"},
		{"SMPP server", "connectors/smppserver", module + "/store/mongostore"},
		{"SMPP session", "connectors/smppsession", module + "/config"},
		{"SMPP session", "connectors/smppsession", "github.com/prometheus/client_golang/prometheus"},
		{"domain", ".", module + "/activities"},
		{"API", "api", module + "/workflows"},
	}
	for _, c := range cases {
		i := slices.IndexFunc(layers, func(l layer) bool { return l.name == c.layer })
		if i < 0 {
			t.Fatalf("no layer %q", c.layer)
		}
		if !matchAny(layers[i].pkgs, c.pkg) {
			t.Errorf("layer %s does not cover %s", c.layer, c.pkg)
		}
		if layers[i].check(c.imp) == "" {
			t.Errorf("layer %s allows %s to import %s", c.layer, c.pkg, c.imp)
		}
	}
}

func list(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// relative gives an import path of the module relative to it ("." for the
// root); other paths are returned as they are.
func relative(path string) string {
	if path == module {
		return "."
	}
	if rest, ok := strings.CutPrefix(path, module+"/"); ok {
		return rest
	}
	return path
}

// standard tells standard library paths: no dot in their first element.
func standard(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".") && relative(path) == path
}

func matchAny(patterns []string, path string) bool {
	for _, p := range patterns {
		if sub, ok := strings.CutSuffix(p, "/..."); ok {
			if path == sub || strings.HasPrefix(path, sub+"/") {
				return true
			}
		} else if path == p {
			return true
		}
	}
	return false
}
