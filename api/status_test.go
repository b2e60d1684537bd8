package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	smsgw "github.com/smsgw/smsgw"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// domainStatuses reads every constant of type Status declared in the domain
// package's source, so a status added there is checked here without anyone
// remembering to list it.
func domainStatuses(t *testing.T) []smsgw.Status {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []smsgw.Status
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name.Name != "smsgw" {
			t.Fatalf("%s is package %s, want the domain package smsgw", name, f.Name.Name)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				if typ, ok := vs.Type.(*ast.Ident); !ok || typ.Name != "Status" {
					continue
				}
				for i, v := range vs.Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: status %s is not a string literal", fset.Position(v.Pos()), vs.Names[i].Name)
					}
					s, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, smsgw.Status(s))
				}
			}
		}
	}
	if len(out) < 8 {
		t.Fatalf("found %d statuses in the domain source (%v); the parser missed some", len(out), out)
	}
	return out
}

// Every status of the domain has its own API value, named alike, and every
// API value but UNSPECIFIED is a status of the domain.
func TestEveryStatusHasAProtoValue(t *testing.T) {
	statuses := domainStatuses(t)
	mapped := map[smsgwv1.MessageStatus]smsgw.Status{}
	for _, s := range statuses {
		if !s.Valid() {
			t.Errorf("domain status %s is not Valid()", s)
		}
		p := statusToProto(s)
		if p == smsgwv1.MessageStatus_MESSAGE_STATUS_UNSPECIFIED || p.String() != "MESSAGE_STATUS_"+string(s) {
			t.Errorf("status %s maps to %s", s, p)
		}
		if other, dup := mapped[p]; dup {
			t.Errorf("statuses %s and %s both map to %s", other, s, p)
		}
		mapped[p] = s
	}
	for v, name := range smsgwv1.MessageStatus_name {
		p := smsgwv1.MessageStatus(v)
		if _, ok := mapped[p]; !ok && p != smsgwv1.MessageStatus_MESSAGE_STATUS_UNSPECIFIED {
			t.Errorf("API value %s is no domain status's", name)
		}
	}
	if statusToProto("BOGUS") != smsgwv1.MessageStatus_MESSAGE_STATUS_UNSPECIFIED {
		t.Error("an unknown status must map to UNSPECIFIED")
	}
}
