package calendarguard

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// marker starts the comment that lets a fixed date stand. What follows it
// must say why the date never meets the real clock.
const marker = "// fixed date:"

// clockFuncs are the functions of package time that read the real clock.
// A reference counts as well as a call: `now: time.Now` is a clock too.
var clockFuncs = map[string]bool{"Now": true, "Since": true, "Until": true}

// skipped are directories, relative to the repository root, that are not
// the gateway's own code: vendored protos and the dev tools module.
var skipped = map[string]bool{"third_party": true, "dev": true}

// yearInString finds a 4-digit year (1900-2099) at the start of a run of
// digits: "2026-11-26", "20261126", "26 Nov 2026", but not "15:04" or the
// 2-digit years of SMPP times ("261126140358000+").
var yearInString = regexp.MustCompile(`(?:^|[^0-9])(?:19|20)[0-9]{2}`)

// TestNoFixedDatesNearTheRealClock fails on a fixed date in a test file of a
// package whose non-test code reads the real clock, unless the date is
// annotated with the reason it never meets that clock.
func TestNoFixedDatesNearTheRealClock(t *testing.T) {
	root := repoRoot(t)
	dirs, err := goFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, dir := range slices.Sorted(maps.Keys(dirs)) {
		files := dirs[dir]
		if len(files.tests) == 0 {
			continue
		}
		fset := token.NewFileSet()
		var found []finding
		for _, path := range files.tests {
			dates, err := fixedDatesInFile(fset, path, nil)
			if err != nil {
				t.Errorf("%s: %v", rel(root, path), err)
				continue
			}
			found = append(found, dates...)
			checked++
		}
		if len(found) == 0 {
			continue
		}
		clock, err := clockRead(fset, files.sources)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if clock == nil {
			continue // the package never reads the clock: its fixed dates cannot meet it
		}
		for _, f := range found {
			t.Error(report(root, f, rel(root, dir), clock))
		}
	}
	if checked == 0 {
		t.Fatalf("no test files found under %s", root)
	}
}

// report is the failure message for one unannotated fixed date.
func report(root string, f finding, pkgDir string, clock *clockUse) string {
	return fmt.Sprintf("%s:%d: fixed date %s in a test of ./%s, whose code reads the real clock (%s at %s:%d).\n"+
		"\tOnce the calendar passes this date, a comparison with the clock (TTL, expiry, \"older than\", signature time) can fail every run.\n"+
		"\tMake the test date-independent: inject a clock into the code under test (a Now func() time.Time field or a WithClock option),\n"+
		"\tor derive the date from the real clock (time.Now().UTC().Truncate(time.Second)).\n"+
		"\tIf this date never meets the real clock, say why on this line or the line directly above:\n"+
		"\t\t%s <reason, e.g. ParseSMPPTime takes now as an argument>",
		rel(root, f.pos.Filename), f.pos.Line, f.what, filepath.ToSlash(pkgDir),
		clock.name, rel(root, clock.pos.Filename), clock.pos.Line, marker)
}

// finding is one unannotated fixed date.
type finding struct {
	pos  token.Position
	what string // the call, shortened
}

// clockUse is where a package first reads the real clock.
type clockUse struct {
	name string // "time.Now"
	pos  token.Position
}

type dirFiles struct {
	tests, sources []string
}

// repoRoot walks up from the working directory to the directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// goFiles lists the .go files of each directory under root, test files and
// the others apart, leaving out testdata, hidden directories and skipped.
func goFiles(root string) (map[string]*dirFiles, error) {
	dirs := map[string]*dirFiles{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
				skipped[filepath.ToSlash(rel(root, path))]) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		dir := filepath.Dir(path)
		if dirs[dir] == nil {
			dirs[dir] = &dirFiles{}
		}
		if strings.HasSuffix(path, "_test.go") {
			dirs[dir].tests = append(dirs[dir].tests, path)
		} else {
			dirs[dir].sources = append(dirs[dir].sources, path)
		}
		return nil
	})
	return dirs, err
}

// timeNames are the names under which f imports package time (usually just
// "time"; "." for a dot import). It is empty when f does not import it.
func timeNames(f *ast.File) map[string]bool {
	names := map[string]bool{}
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p != "time" {
			continue
		}
		switch {
		case imp.Name == nil:
			names["time"] = true
		case imp.Name.Name != "_":
			names[imp.Name.Name] = true
		}
	}
	return names
}

// timeFunc reports the name of the package time function e refers to, or "".
func timeFunc(e ast.Expr, pkg map[string]bool) string {
	switch e := e.(type) {
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && x.Name != "." && pkg[x.Name] {
			return e.Sel.Name
		}
	case *ast.Ident:
		if pkg["."] {
			return e.Name
		}
	}
	return ""
}

// fixedDatesInFile returns the unannotated fixed dates of a test file: calls
// of time.Date whose year is an integer literal, and of time.Parse or
// time.ParseInLocation whose value is a string literal with a 4-digit year.
// src, when not nil, is the file's content.
func fixedDatesInFile(fset *token.FileSet, path string, src []byte) ([]finding, error) {
	if src == nil {
		var err error
		if src, err = os.ReadFile(path); err != nil {
			return nil, err
		}
	}
	f, err := parser.ParseFile(fset, path, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	pkg := timeNames(f)
	if len(pkg) == 0 {
		return nil, nil
	}
	annotated := map[int]bool{}
	for _, g := range f.Comments {
		for _, c := range g.List {
			if reason, ok := strings.CutPrefix(c.Text, marker); ok && strings.TrimSpace(reason) != "" {
				annotated[fset.Position(c.Slash).Line] = true
			}
		}
	}
	var out []finding
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || !isFixedDate(call, timeFunc(call.Fun, pkg)) {
			return true
		}
		pos := fset.Position(call.Pos())
		if annotated[pos.Line] || annotated[pos.Line-1] {
			return true
		}
		what := strings.Join(strings.Fields(string(src[pos.Offset:fset.Position(call.End()).Offset])), " ")
		if len(what) > 60 {
			what = what[:57] + "..."
		}
		out = append(out, finding{pos: pos, what: what})
		return true
	})
	return out, nil
}

func isFixedDate(call *ast.CallExpr, fn string) bool {
	switch fn {
	case "Date":
		if len(call.Args) == 0 {
			return false
		}
		lit, ok := ast.Unparen(call.Args[0]).(*ast.BasicLit)
		return ok && lit.Kind == token.INT
	case "Parse", "ParseInLocation":
		if len(call.Args) < 2 {
			return false
		}
		lit, ok := ast.Unparen(call.Args[1]).(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return false
		}
		s, err := strconv.Unquote(lit.Value)
		return err == nil && yearInString.MatchString(s)
	}
	return false
}

// clockRead returns where the first of files reads the real clock, or nil
// when none does.
func clockRead(fset *token.FileSet, files []string) (*clockUse, error) {
	var errs []error
	for _, path := range files {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if use := clockInFile(fset, f); use != nil {
			return use, nil
		}
	}
	return nil, errors.Join(errs...)
}

func clockInFile(fset *token.FileSet, f *ast.File) *clockUse {
	pkg := timeNames(f)
	if len(pkg) == 0 {
		return nil
	}
	var use *clockUse
	var visit func(n ast.Node) bool
	visit = func(n ast.Node) bool {
		if use != nil {
			return false
		}
		switch n := n.(type) {
		case *ast.SelectorExpr, *ast.Ident:
			if name := timeFunc(n.(ast.Expr), pkg); clockFuncs[name] {
				use = &clockUse{name: "time." + name, pos: fset.Position(n.Pos())}
				return false
			}
			if sel, ok := n.(*ast.SelectorExpr); ok {
				ast.Inspect(sel.X, visit) // not sel.Sel: x.Now is not time.Now, even under a dot import
				return false
			}
		}
		return true
	}
	ast.Inspect(f, visit)
	return use
}

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil {
		return filepath.ToSlash(r)
	}
	return path
}

// TestDetector checks the rule itself on small sources, so that the guard
// cannot pass by finding nothing.
func TestDetector(t *testing.T) {
	const test = `package p

import (
	"time"
	tm "time"
)

var a = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

// fixed date: Format takes the time as an argument
var b = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

var c = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC) // fixed date: only formatted

// fixed date:
var d = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

// fixed date: too far above

var e = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

var year = 2026
var f = time.Date(year, 11, 26, 0, 0, 0, 0, time.UTC)
var g = tm.Date(2026, 11, 26, 0, 0, 0, 0, tm.UTC)
var h, _ = time.Parse(time.RFC3339, "2026-11-26T00:00:00Z")
var i, _ = time.ParseInLocation("20060102", "20261126", time.UTC)
var j, _ = time.Parse("15:04", "14:03")
var k, _ = time.Parse(time.RFC3339, s)
var s = "2026-11-26T00:00:00Z"
`
	fset := token.NewFileSet()
	found, err := fixedDatesInFile(fset, "p_test.go", []byte(test))
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, f := range found {
		lines = append(lines, f.pos.Line)
	}
	// a, d (no reason), e (comment not directly above), g (renamed import), h, i.
	if want := []int{8, 16, 20, 24, 25, 26}; !slices.Equal(lines, want) {
		t.Errorf("fixed dates on lines %v, want %v (%+v)", lines, want, found)
	}
	if len(found) > 0 && found[0].what != "time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)" {
		t.Errorf("finding described as %q", found[0].what)
	}

	for _, c := range []struct {
		src  string
		want string
	}{
		{"package p\nimport \"time\"\nfunc f() time.Duration { return 5 * time.Second }\n", ""},
		{"package p\nimport \"time\"\nfunc f() bool { return time.Since(t0) > 0 }\nvar t0 time.Time\n", "time.Since"},
		{"package p\nimport \"time\"\ntype s struct{ now func() time.Time }\nvar x = s{now: time.Now}\n", "time.Now"},
		{"package p\nimport clock \"time\"\nvar d = clock.Until(clock.Time{})\n", "time.Until"},
		{"package p\nimport . \"time\"\nvar n = Now()\n", "time.Now"},
		{"package p\nfunc Now() int { return 0 }\nvar n = Now()\n", ""},
		{"package p\nimport . \"time\"\nvar d = Second\nvar n = x.Now()\n", ""},
	} {
		f, err := parser.ParseFile(fset, "p.go", c.src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if use := clockInFile(fset, f); use != nil {
			got = use.name
		}
		if got != c.want {
			t.Errorf("clock read in %q: %q, want %q", c.src, got, c.want)
		}
	}
}
