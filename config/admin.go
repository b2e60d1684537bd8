package config

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Admin is who may use the admin API.
type Admin struct {
	// Keys are the admin API keys, each with a name the audit log records.
	Keys []AdminKey `yaml:"keys"`
}

// AdminKey is one admin API key: Key is "sha256:<hex>" (see `smsgw
// hash-key`), or, for development only, "plain:<key>".
type AdminKey struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

// validateAdmin checks the admin keys: each named once, each a valid hash,
// and none also a customer's API key.
func (c *Config) validateAdmin(customerKeys map[string]string) []error {
	var errs []error
	names := map[string]bool{}
	hashes := map[string]bool{}
	for i, k := range c.Admin.Keys {
		switch {
		case !validName(k.Name):
			errs = append(errs, fmt.Errorf("admin.keys[%d]: name must be letters, digits, '-' or '_'", i))
		case names[k.Name]:
			errs = append(errs, fmt.Errorf("admin.keys[%d]: name %q is used twice", i, k.Name))
		}
		names[k.Name] = true
		h, err := apiKeyHash(k.Key)
		if err != nil {
			errs = append(errs, fmt.Errorf("admin key %q: %v", k.Name, err))
			continue
		}
		if hashes[h] {
			errs = append(errs, fmt.Errorf("admin key %q: the key is listed twice", k.Name))
		}
		hashes[h] = true
		if cu, ok := customerKeys[h]; ok {
			errs = append(errs, fmt.Errorf("admin key %q: the key is also customer %q's API key", k.Name, cu))
		}
	}
	return errs
}

// adminIndex maps the hash of each admin key to its name.
func (c *Config) adminIndex() map[string]string {
	m := make(map[string]string, len(c.Admin.Keys))
	for _, k := range c.Admin.Keys {
		if h, err := apiKeyHash(k.Key); err == nil {
			m[h] = k.Name
		}
	}
	return m
}

// APIKeyHash returns the hex SHA-256 an API key entry of the configuration
// ("sha256:<hex>" or "plain:<key>") stands for.
func APIKeyHash(entry string) (string, error) { return apiKeyHash(entry) }

// Marshal writes the configuration as YAML that Parse reads back to the same
// configuration. Empty and zero fields are left out: they mean the defaults.
func (c *Config) Marshal() ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(c); err != nil {
		return nil, fmt.Errorf("encode configuration: %w", err)
	}
	prune(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("encode configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode configuration: %w", err)
	}
	return buf.Bytes(), nil
}

// prune removes the mapping entries whose values are empty or zero, so that
// only what differs from the defaults is written. It reports whether n
// itself is empty after pruning.
func prune(n *yaml.Node) bool {
	switch n.Kind {
	case yaml.MappingNode:
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !prune(n.Content[i+1]) {
				kept = append(kept, n.Content[i], n.Content[i+1])
			}
		}
		n.Content = kept
		return len(n.Content) == 0
	case yaml.SequenceNode:
		for _, c := range n.Content {
			prune(c)
		}
		return len(n.Content) == 0
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return true
		case "!!str":
			return n.Value == ""
		case "!!int", "!!float":
			return n.Value == "0"
		case "!!bool":
			return n.Value == "false"
		case "!!timestamp":
			return n.Value == zeroTime // a rate without a start or an end
		}
	}
	return false
}

// zeroTime is how a zero time.Time is written.
var zeroTime = time.Time{}.Format(time.RFC3339)

// secretFields are the fields whose values never appear in a difference.
var secretFields = map[string]bool{
	"password": true, "secret": true, "previousSecret": true, "apiKeys": true, "key": true,
}

// Diff lists what changed from old to new, one line per changed item: "+"
// added, "-" removed, "~" changed with its fields as old → new. Secrets
// (passwords, webhook secrets, API keys) show only that they changed.
func Diff(old, new *Config) []string {
	var out []string
	items := func(kind string, a, b any, key func(v reflect.Value, i int) string) {
		av, bv := reflect.ValueOf(a), reflect.ValueOf(b)
		olds := map[string]reflect.Value{}
		var order []string
		for i := range av.Len() {
			k := key(av, i)
			olds[k] = av.Index(i)
			order = append(order, k)
		}
		seen := map[string]bool{}
		for i := range bv.Len() {
			k := key(bv, i)
			seen[k] = true
			o, ok := olds[k]
			if !ok {
				out = append(out, fmt.Sprintf("+ %s %s", kind, k))
				continue
			}
			if fields := fieldChanges("", o.Interface(), bv.Index(i).Interface()); len(fields) > 0 {
				out = append(out, fmt.Sprintf("~ %s %s: %s", kind, k, strings.Join(fields, "; ")))
			}
		}
		for _, k := range order {
			if !seen[k] {
				out = append(out, fmt.Sprintf("- %s %s", kind, k))
			}
		}
	}
	byField := func(field string) func(v reflect.Value, i int) string {
		return func(v reflect.Value, i int) string {
			if s := v.Index(i).FieldByName(field).String(); s != "" {
				return s
			}
			return fmt.Sprintf("#%d", i+1)
		}
	}
	items("customer", old.Customers, new.Customers, byField("ID"))
	items("connector", old.Connectors, new.Connectors, byField("ID"))
	items("route", old.Routes, new.Routes, byField("Name"))
	items("price list", old.PriceLists, new.PriceLists, byField("ID"))
	if routeOrder(old) != routeOrder(new) && len(old.Routes) == len(new.Routes) {
		out = append(out, "~ routes: order changed")
	}
	items("admin key", old.Admin.Keys, new.Admin.Keys, byField("Name"))
	// Every other section (smtp, email, webhooks, retention, …) field by
	// field, so a section added to Config is compared without a change here.
	ov, nv := reflect.ValueOf(*old), reflect.ValueOf(*new)
	for i := range ov.NumField() {
		f := ov.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" || listedSections[name] {
			continue
		}
		if f.Type.Kind() == reflect.Slice {
			if !reflect.DeepEqual(asAny(ov.Field(i).Interface()), asAny(nv.Field(i).Interface())) {
				out = append(out, fmt.Sprintf("~ %s: changed", name))
			}
			continue
		}
		if fields := fieldChanges("", ov.Field(i).Interface(), nv.Field(i).Interface()); len(fields) > 0 {
			out = append(out, fmt.Sprintf("~ %s: %s", name, strings.Join(fields, "; ")))
		}
	}
	return out
}

// listedSections are the sections Diff compares item by item.
var listedSections = map[string]bool{"customers": true, "connectors": true, "routes": true, "priceLists": true, "admin": true}

func routeOrder(c *Config) string {
	names := make([]string, len(c.Routes))
	for i, r := range c.Routes {
		names[i] = r.Name
	}
	return strings.Join(names, "\x00")
}

// fieldChanges compares two values of one configuration type, field by
// field as the YAML names them, and describes the fields that differ.
func fieldChanges(prefix string, a, b any) []string {
	am, bm := asMap(a), asMap(b)
	keys := map[string]bool{}
	for k := range am {
		keys[k] = true
	}
	for k := range bm {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var out []string
	for _, k := range sorted {
		av, bv := am[k], bm[k]
		if reflect.DeepEqual(av, bv) {
			continue
		}
		name := prefix + k
		if secretFields[k] {
			out = append(out, name+" changed (secret)")
			continue
		}
		if sa, ok := av.(map[string]any); ok {
			if sb, ok := bv.(map[string]any); ok {
				out = append(out, fieldChanges(name+".", sa, sb)...)
				continue
			}
		}
		out = append(out, fmt.Sprintf("%s %s → %s", name, flow(redact(av)), flow(redact(bv))))
	}
	return out
}

// asAny is v as the YAML would hold it, zero fields left out.
func asAny(v any) any {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil
	}
	prune(&n)
	var out any
	_ = n.Decode(&out)
	return out
}

// asMap is v as the YAML would hold it, zero fields left out.
func asMap(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil
	}
	prune(&n)
	var m map[string]any
	_ = n.Decode(&m)
	return m
}

// redact replaces the secrets inside a value written as YAML.
func redact(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			if secretFields[k] {
				out[k] = "(secret)"
			} else {
				out[k] = redact(x)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = redact(x)
		}
		return out
	}
	return v
}

var flowSpaces = regexp.MustCompile(`\s*\n\s*`)

// flow writes a value on one line ("-" when absent).
func flow(v any) string {
	if v == nil {
		return "-"
	}
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	setFlow(&n)
	raw, err := yaml.Marshal(&n)
	if err != nil {
		return fmt.Sprint(v)
	}
	return flowSpaces.ReplaceAllString(strings.TrimSpace(string(raw)), " ")
}

func setFlow(n *yaml.Node) {
	n.Style |= yaml.FlowStyle
	for _, c := range n.Content {
		setFlow(c)
	}
}
