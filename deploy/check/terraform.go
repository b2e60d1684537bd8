package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Terraform's `validate` needs the providers, which cannot be downloaded
// here, so this is the part of it that needs none: every file parses, every
// variable and output is documented, every reference (var., local., module.,
// data., resources) names something declared, and every call of a local
// module passes exactly the variables the module declares.

// tfModule is what one directory of .tf files declares.
type tfModule struct {
	dir       string
	variables map[string]tfVariable
	outputs   map[string]bool
	locals    map[string]bool
	modules   map[string]*hclsyntax.Block
	resources map[string]bool // type.name
	data      map[string]bool // type.name
	iterators map[string]bool // dynamic block iterators
	bodies    []*hclsyntax.Body
}

type tfVariable struct {
	required bool // no default
}

// metaArguments of a module block, which are not the module's variables.
var metaArguments = map[string]bool{"source": true, "version": true, "count": true, "for_each": true, "providers": true, "depends_on": true}

// referenceRoots that need no declaration.
var referenceRoots = map[string]bool{"count": true, "each": true, "path": true, "self": true, "terraform": true}

// checkTerraform checks a root module and every local module it calls.
func checkTerraform(dir string, _ []byte) (string, []error) {
	seen := map[string]*tfModule{}
	problems := checkTerraformModule(dir, seen)
	files := 0
	for _, m := range seen {
		if m != nil {
			files += len(m.bodies)
		}
	}
	return fmt.Sprintf("%d modules, %d files", len(seen), files), problems
}

func checkTerraformModule(dir string, seen map[string]*tfModule) []error {
	dir = filepath.Clean(dir)
	if _, done := seen[dir]; done {
		return nil
	}
	m, problems := loadTerraformModule(dir)
	seen[dir] = m
	if m == nil {
		return problems
	}
	for _, body := range m.bodies {
		problems = append(problems, m.checkReferences(body)...)
	}
	for _, name := range sortedBlockNames(m.modules) {
		block := m.modules[name]
		source, ok := staticString(block.Body.Attributes["source"])
		if !ok || !(strings.HasPrefix(source, "./") || strings.HasPrefix(source, "../")) {
			continue // registry or remote modules cannot be read offline
		}
		childDir := filepath.Join(dir, source)
		problems = append(problems, checkTerraformModule(childDir, seen)...)
		child := seen[filepath.Clean(childDir)]
		if child == nil {
			continue
		}
		problems = append(problems, m.checkModuleCall(name, block, child)...)
	}
	return problems
}

func loadTerraformModule(dir string) (*tfModule, []error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, []error{err}
	}
	if len(paths) == 0 {
		return nil, []error{fmt.Errorf("%s: no .tf files", dir)}
	}
	m := &tfModule{
		dir: dir, variables: map[string]tfVariable{}, outputs: map[string]bool{}, locals: map[string]bool{},
		modules: map[string]*hclsyntax.Block{}, resources: map[string]bool{}, data: map[string]bool{}, iterators: map[string]bool{},
	}
	var problems []error
	parser := hclparse.NewParser()
	for _, path := range paths {
		src, err := os.ReadFile(path)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		file, diags := parser.ParseHCL(src, path)
		if diags.HasErrors() {
			problems = append(problems, diagErrors(diags)...)
			continue
		}
		body, ok := file.Body.(*hclsyntax.Body)
		if !ok {
			problems = append(problems, fmt.Errorf("%s: not native HCL syntax", path))
			continue
		}
		m.bodies = append(m.bodies, body)
		problems = append(problems, m.declare(path, body)...)
	}
	return m, problems
}

// declare records the top-level declarations of one file.
func (m *tfModule) declare(path string, body *hclsyntax.Body) []error {
	var problems []error
	dup := func(kind, name string, exists bool, block *hclsyntax.Block) {
		if exists {
			problems = append(problems, fmt.Errorf("%s: %s %q declared twice", pos(block.DefRange()), kind, name))
		}
	}
	for _, b := range body.Blocks {
		switch b.Type {
		case "variable":
			name := b.Labels[0]
			_, exists := m.variables[name]
			dup("variable", name, exists, b)
			_, hasDefault := b.Body.Attributes["default"]
			m.variables[name] = tfVariable{required: !hasDefault}
			for _, attr := range []string{"description", "type"} {
				if _, ok := b.Body.Attributes[attr]; !ok {
					problems = append(problems, fmt.Errorf("%s: variable %q has no %s", pos(b.DefRange()), name, attr))
				}
			}
		case "output":
			name := b.Labels[0]
			dup("output", name, m.outputs[name], b)
			m.outputs[name] = true
			if _, ok := b.Body.Attributes["description"]; !ok {
				problems = append(problems, fmt.Errorf("%s: output %q has no description", pos(b.DefRange()), name))
			}
		case "locals":
			for name := range b.Body.Attributes {
				dup("local", name, m.locals[name], b)
				m.locals[name] = true
			}
		case "module":
			name := b.Labels[0]
			_, exists := m.modules[name]
			dup("module", name, exists, b)
			m.modules[name] = b
			for _, nested := range b.Body.Blocks {
				problems = append(problems, fmt.Errorf("%s: module %q: a module block takes no %q block", pos(nested.DefRange()), name, nested.Type))
			}
		case "resource":
			addr := b.Labels[0] + "." + b.Labels[1]
			dup("resource", addr, m.resources[addr], b)
			m.resources[addr] = true
		case "data":
			addr := b.Labels[0] + "." + b.Labels[1]
			dup("data source", addr, m.data[addr], b)
			m.data[addr] = true
		case "terraform", "provider", "check", "moved", "import", "removed":
		default:
			problems = append(problems, fmt.Errorf("%s: unknown top-level block %q", pos(b.DefRange()), b.Type))
		}
		collectIterators(b.Body, m.iterators)
	}
	return problems
}

func collectIterators(body *hclsyntax.Body, into map[string]bool) {
	for _, b := range body.Blocks {
		if b.Type == "dynamic" && len(b.Labels) == 1 {
			name := b.Labels[0]
			if it, ok := staticString(b.Body.Attributes["iterator"]); ok {
				name = it
			}
			into[name] = true
		}
		collectIterators(b.Body, into)
	}
}

// notReferences are attributes, per block type, whose expressions are not
// references: type constraints, attribute paths, provider addresses.
var notReferences = map[string]map[string]bool{
	"variable":  {"type": true},
	"lifecycle": {"ignore_changes": true},
	"resource":  {"provider": true},
	"data":      {"provider": true},
	"module":    {"providers": true},
}

// checkReferences checks every reference in every expression of a body.
func (m *tfModule) checkReferences(body *hclsyntax.Body) []error {
	return m.checkBlockReferences("", body)
}

func (m *tfModule) checkBlockReferences(blockType string, body *hclsyntax.Body) []error {
	var problems []error
	for _, name := range sortedAttrNames(body.Attributes) {
		if notReferences[blockType][name] {
			continue
		}
		for _, tr := range body.Attributes[name].Expr.Variables() {
			if err := m.checkTraversal(tr); err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", pos(tr.SourceRange()), err))
			}
		}
	}
	for _, b := range body.Blocks {
		problems = append(problems, m.checkBlockReferences(b.Type, b.Body)...)
	}
	return problems
}

func (m *tfModule) checkTraversal(tr hcl.Traversal) error {
	root := tr.RootName()
	step := func(i int) string {
		if i < len(tr) {
			if a, ok := tr[i].(hcl.TraverseAttr); ok {
				return a.Name
			}
		}
		return ""
	}
	switch {
	case referenceRoots[root] || m.iterators[root]:
		return nil
	case root == "var":
		if _, ok := m.variables[step(1)]; !ok {
			return fmt.Errorf("var.%s is not declared in %s", step(1), m.dir)
		}
	case root == "local":
		if !m.locals[step(1)] {
			return fmt.Errorf("local.%s is not declared in %s", step(1), m.dir)
		}
	case root == "module":
		if _, ok := m.modules[step(1)]; !ok {
			return fmt.Errorf("module.%s is not declared in %s", step(1), m.dir)
		}
	case root == "data":
		if addr := step(1) + "." + step(2); !m.data[addr] {
			return fmt.Errorf("data.%s is not declared in %s", addr, m.dir)
		}
	case strings.Contains(root, "_"):
		if addr := root + "." + step(1); !m.resources[addr] {
			return fmt.Errorf("resource %s is not declared in %s", addr, m.dir)
		}
	default:
		return fmt.Errorf("unknown reference %q", root)
	}
	return nil
}

// checkModuleCall: the call passes only declared variables, every required
// one, and the caller reads only declared outputs.
func (m *tfModule) checkModuleCall(name string, block *hclsyntax.Block, child *tfModule) []error {
	var problems []error
	for _, arg := range sortedAttrNames(block.Body.Attributes) {
		if metaArguments[arg] {
			continue
		}
		if _, ok := child.variables[arg]; !ok {
			problems = append(problems, fmt.Errorf("%s: module %q: %s declares no variable %q", pos(block.Body.Attributes[arg].SrcRange), name, child.dir, arg))
		}
	}
	for _, v := range sortedVariableNames(child.variables) {
		if _, passed := block.Body.Attributes[v]; child.variables[v].required && !passed {
			problems = append(problems, fmt.Errorf("%s: module %q: required variable %q not passed", pos(block.DefRange()), name, v))
		}
	}
	for _, body := range m.bodies {
		problems = append(problems, outputReads(body, name, child)...)
	}
	return problems
}

func outputReads(body *hclsyntax.Body, module string, child *tfModule) []error {
	var problems []error
	for _, attr := range sortedAttrNames(body.Attributes) {
		for _, tr := range body.Attributes[attr].Expr.Variables() {
			if tr.RootName() != "module" || len(tr) < 2 {
				continue
			}
			if a, ok := tr[1].(hcl.TraverseAttr); !ok || a.Name != module {
				continue
			}
			// module.NAME.OUTPUT or module.NAME[index].OUTPUT
			for _, s := range tr[2:] {
				if a, ok := s.(hcl.TraverseAttr); ok {
					if !child.outputs[a.Name] {
						problems = append(problems, fmt.Errorf("%s: module.%s has no output %q", pos(tr.SourceRange()), module, a.Name))
					}
					break
				}
			}
		}
	}
	for _, b := range body.Blocks {
		problems = append(problems, outputReads(b.Body, module, child)...)
	}
	return problems
}

func staticString(attr *hclsyntax.Attribute) (string, bool) {
	if attr == nil {
		return "", false
	}
	v, diags := attr.Expr.Value(nil)
	if diags.HasErrors() || !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
		return "", false
	}
	return v.AsString(), true
}

func diagErrors(diags hcl.Diagnostics) []error {
	var out []error
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		where := ""
		if d.Subject != nil {
			where = pos(*d.Subject) + ": "
		}
		out = append(out, errors.New(where+d.Summary+": "+d.Detail))
	}
	return out
}

func pos(r hcl.Range) string {
	return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line)
}

func sortedAttrNames(attrs hclsyntax.Attributes) []string {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func sortedBlockNames(m map[string]*hclsyntax.Block) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func sortedVariableNames(m map[string]tfVariable) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
