package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
