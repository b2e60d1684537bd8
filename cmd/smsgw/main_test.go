package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smsgw/smsgw/workflows"
)

func runCmd(args ...string) (int, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, func(string) string { return "" }, &out, &errOut)
	return code, out.String() + errOut.String()
}

func TestCheckConfig(t *testing.T) {
	if code, out := runCmd("check-config", "../../config/testdata/two-carriers.yaml"); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("valid file: exit %d\n%s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("routes:\n  - {name: r, prefixes: [\"61\"], connectors: [ghost]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := runCmd("check-config", bad)
	if code != 1 || !strings.Contains(out, `line 2: route r: prefix "61"`) || !strings.Contains(out, `unknown connector "ghost"`) {
		t.Fatalf("bad file: exit %d\n%s", code, out)
	}

	manifests := filepath.Join(t.TempDir(), "rendered.yaml")
	if err := os.WriteFile(manifests, []byte(`apiVersion: v1
kind: Service
metadata: {name: api}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: smsgw-config}
data:
  config.yaml: |
    customers:
      - {id: a, apiKeys: ["${KEY}"]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = runCmd("check-config", "-manifests", manifests)
	if code != 1 || !strings.Contains(out, "ConfigMap smsgw-config: line 2: customer \"a\": api key must be") {
		t.Fatalf("ConfigMap with a bad key: exit %d\n%s", code, out)
	}
}

func TestUsage(t *testing.T) {
	if code, out := runCmd(); code != 2 || !strings.Contains(out, "usage: smsgw <role>") {
		t.Fatalf("no role: exit %d\n%s", code, out)
	}
	if code, out := runCmd("nonsense"); code != 2 || !strings.Contains(out, `unknown role "nonsense"`) {
		t.Fatalf("unknown role: exit %d\n%s", code, out)
	}
	if code, out := runCmd("hash-key", "demo-key"); code != 0 || !strings.HasPrefix(out, "sha256:") || len(strings.TrimSpace(out)) != 71 {
		t.Fatalf("hash-key: exit %d %q", code, out)
	}
}

// TestPayloadKeySettings: what the serving roles refuse before they connect
// to anything, and the codec server started on its own.
func TestPayloadKeySettings(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "k1"), []byte("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "k2"), []byte("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := "../../config/testdata/two-carriers.yaml"
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"no workflow ID key": {[]string{"all", "-config", cfg, "-payload-keys-dir", dir, "-payload-key-active", "k2"}, "no workflow ID key"},
		"no active key":      {[]string{"all", "-config", cfg, "-payload-keys-dir", dir}, "none named active"},
		"unknown active key": {[]string{"all", "-config", cfg, "-payload-keys-dir", dir, "-payload-key-active", "k3"}, `"k3" is not among`},
		"codec without keys": {[]string{"all", "-config", cfg, "-codec-addr", "127.0.0.1:0"}, "the codec server needs payload keys"},
		"codec no token":     {[]string{"codec-server", "-payload-keys-dir", dir, "-payload-key-active", "k1", "-codec-addr", "127.0.0.1:0"}, "no token configured"},
		"no keys directory":  {[]string{"codec-server", "-payload-keys-dir", filepath.Join(dir, "missing")}, "payload keys"},
		"issuer alone":       {[]string{"codec-server", "-payload-keys-dir", dir, "-payload-key-active", "k1", "-codec-oidc-issuer", "https://login.example.com"}, "go together"},
	} {
		t.Run(name, func(t *testing.T) {
			if code, out := runCmd(c.args...); code != 1 || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, want 1 and %q:\n%s", code, c.want, out)
			}
		})
	}
}

// The Temporal dev server's arguments come one a line, as the scripts read
// them, with every search attribute and the queues' checkpoint interval.
func TestTemporalDevArgs(t *testing.T) {
	code, out := runCmd("temporal-dev-args")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := []string{`history.transferProcessorUpdateAckInterval="1s"`, `history.visibilityProcessorUpdateAckInterval="1s"`, "journal_mode=wal"}
	want = append(want, workflows.SearchAttributeFlags...)
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("no line %q in\n%s", w, out)
		}
	}
	if code, out := runCmd("temporal-dev-args", "extra"); code != 1 || !strings.Contains(out, "takes no arguments") {
		t.Fatalf("an argument: exit %d\n%s", code, out)
	}
}
