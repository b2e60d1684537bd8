package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smsgw/smsgw/importer"
)

func TestCustomerMapping(t *testing.T) {
	path := filepath.Join(t.TempDir(), "map")
	if err := os.WriteFile(path, []byte("# old account, customer\nacme acme\nreseller=other\n\n*  catchall\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := customerMapping("", path)
	if err != nil {
		t.Fatal(err)
	}
	for account, want := range map[string]string{"acme": "acme", "reseller": "other", "anyone": "catchall"} {
		if got, ok := m.lookup(account); !ok || got != want {
			t.Errorf("%s: %q %v, want %q", account, got, ok, want)
		}
	}
	if all, err := customerMapping("acme", ""); err != nil {
		t.Fatal(err)
	} else if got, ok := all.lookup("whatever"); !ok || got != "acme" {
		t.Errorf("-customer: %q %v", got, ok)
	}
	strict := filepath.Join(t.TempDir(), "strict")
	os.WriteFile(strict, []byte("acme acme\n"), 0o600)
	if m, _ := customerMapping("", strict); func() bool { _, ok := m.lookup("other"); return ok }() {
		t.Error("an account not in the map was mapped")
	}
	for name, content := range map[string]string{"three fields": "a b c\n", "twice": "a x\na y\n", "empty": "# nothing\n"} {
		p := filepath.Join(t.TempDir(), "bad")
		os.WriteFile(p, []byte(content), 0o600)
		if _, err := customerMapping("", p); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := customerMapping("acme", path); err == nil {
		t.Error("-customer with -customer-map: no error")
	}
	if _, err := customerMapping("", ""); err == nil {
		t.Error("no mapping: no error")
	}
}

func TestProgressDisplay(t *testing.T) {
	p := importer.Progress{Done: 50, Total: 200, Summary: importer.Summary{Imported: 40, Updated: 8, Skipped: map[string]int64{"x": 2}, Position: 1050}}
	var bar bytes.Buffer
	d := newProgressDisplay("bar", &bar)
	d.update(p)
	d.done()
	if got := bar.String(); !strings.HasPrefix(got, "\r[#######.......................] 50/200  imported 40  updated 8  skipped 2  refused 0") || !strings.HasSuffix(got, "\n") {
		t.Errorf("bar %q", got)
	}
	var lines bytes.Buffer
	d = newProgressDisplay("auto", &lines) // not a terminal
	d.update(p)
	d.done()
	if got := lines.String(); !strings.HasPrefix(got, "progress: 50 of 200 records, imported 40, updated 8, skipped 2, refused 0, at 1050\n") || strings.Contains(got, "\r") {
		t.Errorf("lines %q", got)
	}
}
