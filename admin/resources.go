package admin

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
)

// Kind is a kind of resource of the configuration.
type Kind string

// The kinds the admin API changes one at a time.
const (
	Customers  = "customer"
	Connectors = "connector"
	Routes     = "route"
	PriceLists = "price list"
)

// A Resource is one customer, connector or route, with the fields and
// values of the configuration file (docs/configuration.md), as JSON would
// hold them. Secrets are never in a Resource read back: API keys, passwords
// and webhook secrets are left out.
type Resource = map[string]any

// secrets are the fields left out of a resource read back, by path.
var secrets = map[Kind][][]string{
	Customers: {{"apiKeys"}, {"smpp", "password"}, {"emailIngress", "password"},
		{"webhook", "secret"}, {"webhook", "previousSecret"}},
	Connectors: {{"password"}},
}

// resources are the items of a kind in a configuration, and how to name
// and replace them.
type resources struct {
	kind  Kind
	count int
	id    func(i int) string
	get   func(i int) any
	// set replaces item i, or appends at i == count; del removes item i.
	set func(i int, raw []byte) error
	del func(i int)
}

func (k Kind) of(cfg *config.Config) (resources, error) {
	switch k {
	case Customers:
		return resources{k, len(cfg.Customers),
			func(i int) string { return cfg.Customers[i].ID },
			func(i int) any { return cfg.Customers[i] },
			func(i int, raw []byte) error { return setItem(&cfg.Customers, i, raw) },
			func(i int) { cfg.Customers = slices.Delete(cfg.Customers, i, i+1) }}, nil
	case Connectors:
		return resources{k, len(cfg.Connectors),
			func(i int) string { return cfg.Connectors[i].ID },
			func(i int) any { return cfg.Connectors[i] },
			func(i int, raw []byte) error { return setItem(&cfg.Connectors, i, raw) },
			func(i int) { cfg.Connectors = slices.Delete(cfg.Connectors, i, i+1) }}, nil
	case Routes:
		return resources{k, len(cfg.Routes),
			func(i int) string { return cfg.Routes[i].Name },
			func(i int) any { return cfg.Routes[i] },
			func(i int, raw []byte) error { return setItem(&cfg.Routes, i, raw) },
			func(i int) { cfg.Routes = slices.Delete(cfg.Routes, i, i+1) }}, nil
	case PriceLists:
		return resources{k, len(cfg.PriceLists),
			func(i int) string { return cfg.PriceLists[i].ID },
			func(i int) any { return cfg.PriceLists[i] },
			func(i int, raw []byte) error { return setItem(&cfg.PriceLists, i, raw) },
			func(i int) { cfg.PriceLists = slices.Delete(cfg.PriceLists, i, i+1) }}, nil
	}
	return resources{}, smsgw.Errorf(smsgw.EINVALID, "unknown kind %q", k)
}

// idField is the field that names a resource of the kind.
func (k Kind) idField() string {
	if k == Routes {
		return "name"
	}
	return "id"
}

// setItem decodes raw strictly, as the configuration file is decoded, into
// item i of items (appended when i is past the end).
func setItem[T any](items *[]T, i int, raw []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var v T
	if err := dec.Decode(&v); err != nil {
		return smsgw.Errorf(smsgw.EINVALID, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if i == len(*items) {
		*items = append(*items, v)
	} else {
		(*items)[i] = v
	}
	return nil
}

func (r resources) find(id string) int {
	for i := range r.count {
		if r.id(i) == id {
			return i
		}
	}
	return -1
}

// resource is item i as a Resource, secrets left out.
func (r resources) resource(i int) (Resource, error) {
	m, err := toMap(r.get(i))
	if err != nil {
		return nil, err
	}
	for _, path := range secrets[r.kind] {
		removePath(m, path)
	}
	return m, nil
}

func removePath(m map[string]any, path []string) {
	if len(path) == 1 {
		delete(m, path[0])
		return
	}
	if sub, ok := m[path[0]].(map[string]any); ok {
		removePath(sub, path[1:])
		if len(sub) == 0 {
			delete(m, path[0])
		}
	}
}

// toMap is v as its YAML holds it, zero fields left out.
func toMap(v any) (map[string]any, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	raw, err := yaml.Marshal(&n)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	timesAsText(m)
	pruneMap(m)
	return m, nil
}

// timesAsText writes the times in v (a price list's rates' from and until)
// as RFC 3339 text, as the configuration file has them, and leaves out the
// zero ones (a rate without a start or an end).
func timesAsText(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if t, ok := e.(time.Time); ok {
				if t.IsZero() {
					delete(x, k)
				} else {
					x[k] = t.UTC().Format(time.RFC3339Nano)
				}
				continue
			}
			timesAsText(e)
		}
	case []any:
		for _, e := range x {
			timesAsText(e)
		}
	}
}

// pruneMap removes empty and zero values, as config.Marshal leaves them out.
func pruneMap(m map[string]any) {
	for k, v := range m {
		switch x := v.(type) {
		case nil:
			delete(m, k)
		case string:
			if x == "" {
				delete(m, k)
			}
		case bool:
			if !x {
				delete(m, k)
			}
		case int:
			if x == 0 {
				delete(m, k)
			}
		case float64:
			if x == 0 {
				delete(m, k)
			}
		case []any:
			if len(x) == 0 {
				delete(m, k)
			}
		case map[string]any:
			pruneMap(x)
			if len(x) == 0 {
				delete(m, k)
			}
		}
	}
}

// integral turns whole float64 numbers (JSON's only numbers) into ints, so
// that they decode into the configuration's integer fields.
func integral(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = integral(e)
		}
	case []any:
		for i, e := range x {
			x[i] = integral(e)
		}
	}
	return v
}

// mergePatch applies patch to m as a JSON merge patch (RFC 7386): a null
// removes a field, an object is merged into the object it replaces,
// anything else replaces the value.
func mergePatch(m, patch map[string]any) {
	for k, v := range patch {
		if v == nil {
			delete(m, k)
			continue
		}
		if pv, ok := v.(map[string]any); ok {
			if mv, ok := m[k].(map[string]any); ok {
				mergePatch(mv, pv)
				continue
			}
		}
		m[k] = v
	}
}

// List returns every resource of a kind, in the order of the
// configuration, and the version it was read from.
func (s *Service) List(ctx context.Context, kindName string) ([]Resource, int64, error) {
	kind := Kind(kindName)
	st, err := s.current(ctx)
	if err != nil {
		return nil, 0, err
	}
	r, err := kind.of(st.cfg)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Resource, 0, r.count)
	for i := range r.count {
		m, err := r.resource(i)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, m)
	}
	return out, st.version, nil
}

// Get returns one resource and the version it was read from.
func (s *Service) Get(ctx context.Context, kindName string, id string) (Resource, int64, error) {
	kind := Kind(kindName)
	st, err := s.current(ctx)
	if err != nil {
		return nil, 0, err
	}
	r, err := kind.of(st.cfg)
	if err != nil {
		return nil, 0, err
	}
	i := r.find(id)
	if i < 0 {
		return nil, 0, errNotFound(kind, id)
	}
	m, err := r.resource(i)
	return m, st.version, err
}

// Create adds a resource, the last of its kind, and returns it as stored
// with the new version. Plain passwords in it are stored as bcrypt hashes.
func (s *Service) Create(ctx context.Context, who string, kindName string, spec Resource, expected int64) (Resource, int64, error) {
	kind := Kind(kindName)
	id, _ := spec[kind.idField()].(string)
	if id == "" {
		return nil, 0, smsgw.Errorf(smsgw.EINVALID, "%s: %s is required", kind, kind.idField())
	}
	if err := checkSpec(kind, spec); err != nil {
		return nil, 0, err
	}
	v, err := s.change(ctx, who, fmt.Sprintf("create %s %s", kind, id), expected, func(st *state) error {
		r, err := kind.of(st.cfg)
		if err != nil {
			return err
		}
		if r.find(id) >= 0 {
			return smsgw.Errorf(smsgw.ECONFLICT, "%s %q already exists", kind, id)
		}
		return s.put(r, r.count, spec)
	})
	if err != nil {
		return nil, 0, err
	}
	return s.read(ctx, kindName, id, v)
}

// Update changes a resource with patch, a JSON merge patch (RFC 7386) of
// its fields: the fields given replace theirs, null removes one, and the
// others, secrets included, stay as they are.
func (s *Service) Update(ctx context.Context, who string, kindName string, id string, patch Resource, expected int64) (Resource, int64, error) {
	kind := Kind(kindName)
	if newID, ok := patch[kind.idField()]; ok && newID != id {
		return nil, 0, smsgw.Errorf(smsgw.EINVALID, "%s %q: %s cannot change", kind, id, kind.idField())
	}
	if err := checkSpec(kind, patch); err != nil {
		return nil, 0, err
	}
	v, err := s.change(ctx, who, fmt.Sprintf("update %s %s", kind, id), expected, func(st *state) error {
		r, err := kind.of(st.cfg)
		if err != nil {
			return err
		}
		i := r.find(id)
		if i < 0 {
			return errNotFound(kind, id)
		}
		m, err := toMap(r.get(i)) // with its secrets
		if err != nil {
			return err
		}
		mergePatch(m, patch)
		return s.put(r, i, m)
	})
	if err != nil {
		return nil, 0, err
	}
	return s.read(ctx, kindName, id, v)
}

// Delete removes a resource. A connector a route uses, or a customer a
// route names, is refused as the configuration file would be.
func (s *Service) Delete(ctx context.Context, who string, kindName string, id string, expected int64) (int64, error) {
	kind := Kind(kindName)
	return s.change(ctx, who, fmt.Sprintf("delete %s %s", kind, id), expected, func(st *state) error {
		r, err := kind.of(st.cfg)
		if err != nil {
			return err
		}
		i := r.find(id)
		if i < 0 {
			return errNotFound(kind, id)
		}
		r.del(i)
		return nil
	})
}

// Put creates the resource id, or replaces it whole with spec (fields
// left out of spec are gone), and returns it as stored, the new version,
// and whether it was created. Kinds with secrets are not replaced whole
// (their secrets would be lost): they are changed with Update.
func (s *Service) Put(ctx context.Context, who string, kindName string, id string, spec Resource, expected int64) (Resource, int64, bool, error) {
	kind := Kind(kindName)
	if len(secrets[kind]) > 0 {
		return nil, 0, false, smsgw.Errorf(smsgw.EINVALID, "a %s is not replaced whole: change it with a patch", kind)
	}
	if id == "" {
		return nil, 0, false, smsgw.Errorf(smsgw.EINVALID, "%s: %s is required", kind, kind.idField())
	}
	if given, ok := spec[kind.idField()]; ok && given != id {
		return nil, 0, false, smsgw.Errorf(smsgw.EINVALID, "%s %q: the body's %s %v is not the one of the path", kind, id, kind.idField(), given)
	}
	spec[kind.idField()] = id
	if err := checkSpec(kind, spec); err != nil {
		return nil, 0, false, err
	}
	var created bool
	v, err := s.change(ctx, who, fmt.Sprintf("put %s %s", kind, id), expected, func(st *state) error {
		r, err := kind.of(st.cfg)
		if err != nil {
			return err
		}
		i := r.find(id)
		created = i < 0
		if created {
			i = r.count
		}
		return s.put(r, i, spec)
	})
	if err != nil {
		return nil, 0, false, err
	}
	m, v, err := s.read(ctx, kindName, id, v)
	return m, v, created, err
}

// SetCustomerDisabled disables a customer (its credentials stop working
// on every replica) or enables it again.
func (s *Service) SetCustomerDisabled(ctx context.Context, who, id string, disabled bool, expected int64) (Resource, int64, error) {
	action := "disable"
	if !disabled {
		action = "enable"
	}
	v, err := s.change(ctx, who, fmt.Sprintf("%s customer %s", action, id), expected, func(st *state) error {
		for i := range st.cfg.Customers {
			if st.cfg.Customers[i].ID == id {
				st.cfg.Customers[i].Disabled = disabled
				return nil
			}
		}
		return errNotFound(Customers, id)
	})
	if err != nil {
		return nil, 0, err
	}
	return s.read(ctx, Customers, id, v)
}

// read returns a resource as version v (or a later one) holds it.
func (s *Service) read(ctx context.Context, kindName string, id string, v int64) (Resource, int64, error) {
	m, got, err := s.Get(ctx, kindName, id)
	if err != nil {
		return nil, 0, err
	}
	return m, max(v, got), nil
}

// checkSpec refuses what a resource may not set through the API.
func checkSpec(kind Kind, spec Resource) error {
	if kind == Customers {
		if _, ok := spec["apiKeys"]; ok {
			return smsgw.Errorf(smsgw.EINVALID, "customer: apiKeys are not set here: create and revoke keys with the keys endpoints")
		}
	}
	return nil
}

// put decodes m into item i of r, hashing plain passwords first.
func (s *Service) put(r resources, i int, m Resource) error {
	if r.kind == Customers {
		for _, section := range []string{"smpp", "emailIngress"} {
			if err := hashPassword(m, section); err != nil {
				return err
			}
		}
	}
	raw, err := yaml.Marshal(integral(m))
	if err != nil {
		return err
	}
	return r.set(i, raw)
}

// hashPassword replaces a plain m[section].password with its bcrypt form:
// the plain password is accepted once and never kept. A value already
// "bcrypt:…" is kept; "plain:<password>" is hashed as <password>.
func hashPassword(m Resource, section string) error {
	sec, ok := m[section].(map[string]any)
	if !ok {
		return nil
	}
	pw, ok := sec["password"].(string)
	if !ok || pw == "" || strings.HasPrefix(pw, "bcrypt:") {
		return nil
	}
	pw = strings.TrimPrefix(pw, "plain:")
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return smsgw.Errorf(smsgw.EINVALID, "%s.password: %v", section, err)
	}
	sec["password"] = "bcrypt:" + string(hash)
	return nil
}
