package admin_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/admin"
	"github.com/smsgw/smsgw/config"
)

// memStore keeps versions in memory, with the store's rules: versions
// follow each other, and one taken is a conflict.
type memStore struct {
	mu       sync.Mutex
	versions []smsgw.ConfigVersion
	// beforePut, when set, runs before each put, outside the lock.
	beforePut func()
}

func (m *memStore) PutConfigVersion(_ context.Context, v smsgw.ConfigVersion) error {
	if f := m.beforePut; f != nil {
		m.beforePut = nil
		f()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if int(v.Version) != len(m.versions)+1 {
		return smsgw.Errorf(smsgw.ECONFLICT, "version %d taken", v.Version)
	}
	m.versions = append(m.versions, v)
	return nil
}

func (m *memStore) LatestConfigVersion(context.Context) (smsgw.ConfigVersion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.versions) == 0 {
		return smsgw.ConfigVersion{}, smsgw.Errorf(smsgw.ENOTFOUND, "none")
	}
	return m.versions[len(m.versions)-1], nil
}

func (m *memStore) ConfigVersionNumber(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.versions)), nil
}

func (m *memStore) ListConfigVersions(_ context.Context, before int64, limit int) ([]smsgw.ConfigVersion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []smsgw.ConfigVersion
	for i := len(m.versions) - 1; i >= 0 && len(out) < limit; i-- {
		if before == 0 || m.versions[i].Version < before {
			v := m.versions[i]
			v.Config = nil
			out = append(out, v)
		}
	}
	return out, nil
}

const bootstrap = `
admin:
  keys: [{name: ops, key: "plain:admin-key"}]
customers:
  - id: acme
    apiKeys: ["plain:acme-key"]
connectors:
  - {id: sim, address: "127.0.0.1:2775", systemId: gw, password: upsecret}
routes:
  - {name: australia, prefixes: ["+61"], connectors: [sim]}
`

func parse(t *testing.T, raw string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(raw), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// replica is one process: its configuration in force and its service.
func replica(t *testing.T, store admin.Store, file string) (*admin.Service, *config.Live) {
	t.Helper()
	cfg := parse(t, file)
	live := config.Static(cfg)
	s := admin.New(admin.Options{Store: store, Live: live, Logger: slog.New(slog.DiscardHandler)})
	if err := s.Start(context.Background(), cfg, "test.yaml"); err != nil {
		t.Fatal(err)
	}
	return s, live
}

func TestChangesAreVersionedValidatedAndAudited(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	s, live := replica(t, store, bootstrap)
	if s.Version() != 1 {
		t.Fatalf("bootstrap: version %d", s.Version())
	}

	// A customer with an SMPP password: stored as bcrypt, never returned.
	cu, v, err := s.Create(ctx, "ops", admin.Customers, map[string]any{
		"id": "beta", "tps": float64(20), "maxBacklog": float64(100), "allowedSenders": []any{"BETA"},
		"numbers": []any{map[string]any{"number": "+61400000002", "keyword": "STOP"}},
		"smpp":    map[string]any{"systemId": "beta", "password": "beta-pw"},
		"notify":  map[string]any{"channels": []any{"smpp"}},
	}, 0)
	if err != nil || v != 2 {
		t.Fatalf("create: version %d, %v", v, err)
	}
	if smpp, _ := cu["smpp"].(map[string]any); smpp["password"] != nil || smpp["systemId"] != "beta" {
		t.Errorf("the customer read back: %v", cu)
	}
	got, ok := live.Config().Customer("beta")
	if !ok || !strings.HasPrefix(got.SMPP.Password, "bcrypt:") || got.TPS != 20 || got.MaxBacklog != 100 {
		t.Fatalf("in force: %+v", got)
	}
	if _, known, ok := live.Config().SMPPLogin("beta", "beta-pw"); !known || !ok {
		t.Error("the SMPP password does not log in")
	}

	// Validated as the file is, with the file's messages.
	_, _, err = s.Create(ctx, "ops", admin.Routes, map[string]any{"name": "nz", "prefixes": []any{"+64"}, "connectors": []any{"nowhere"}}, 0)
	if smsgw.ErrorCode(err) != smsgw.EINVALID || !strings.Contains(err.Error(), `route nz: unknown connector "nowhere"`) || strings.Contains(err.Error(), "line ") {
		t.Errorf("route to an unknown connector: %v", err)
	}
	_, _, err = s.Update(ctx, "ops", admin.Customers, "beta", map[string]any{"tpz": float64(1)}, 0)
	if smsgw.ErrorCode(err) != smsgw.EINVALID || !strings.Contains(err.Error(), "tpz") {
		t.Errorf("unknown field: %v", err)
	}
	if _, _, err := s.Create(ctx, "ops", admin.Customers, map[string]any{"id": "acme"}, 0); smsgw.ErrorCode(err) != smsgw.ECONFLICT {
		t.Errorf("duplicate customer: %v", err)
	}

	// Optimistic concurrency: a change against an old version is refused.
	if _, _, err := s.Update(ctx, "ops", admin.Customers, "beta", map[string]any{"tps": float64(5)}, 1); smsgw.ErrorCode(err) != smsgw.ECONFLICT {
		t.Errorf("update against version 1 at version 2: %v", err)
	}
	cu, v, err = s.Update(ctx, "ops", admin.Customers, "beta", map[string]any{"tps": float64(5), "allowedSenders": nil}, 2)
	if err != nil || v != 3 || cu["tps"] != 5 || cu["allowedSenders"] != nil {
		t.Fatalf("update: %v version %d, %v", cu, v, err)
	}
	if got, _ := live.Config().Customer("beta"); !strings.HasPrefix(got.SMPP.Password, "bcrypt:") {
		t.Error("a patch without the password lost it")
	}

	// A change that changes nothing makes no version.
	if _, v, err := s.Update(ctx, "ops", admin.Customers, "beta", map[string]any{"tps": float64(5)}, 0); err != nil || v != 3 {
		t.Errorf("no-op update: version %d, %v", v, err)
	}

	// Keys: shown once, stored hashed, revoked by ID.
	key, info, v, err := s.CreateAPIKey(ctx, "ops", "beta", 0)
	if err != nil || v != 4 || !strings.HasPrefix(key, info.Prefix) || len(info.ID) != 12 {
		t.Fatalf("create key: %q %+v version %d, %v", key, info, v, err)
	}
	if c, ok := live.CustomerByAPIKey(key); !ok || c.ID != "beta" {
		t.Fatal("the new key does not authenticate")
	}
	keys, _, err := s.ListAPIKeys(ctx, "beta")
	if err != nil || len(keys) != 1 || keys[0].ID != info.ID || keys[0].Prefix != info.Prefix || keys[0].CreatedAt.IsZero() {
		t.Fatalf("list keys: %+v, %v", keys, err)
	}
	if _, err := s.RevokeAPIKey(ctx, "ops", "beta", info.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := live.CustomerByAPIKey(key); ok {
		t.Error("a revoked key still authenticates")
	}

	// Disable: the customer's key is refused, its ID still known.
	if _, _, err := s.SetCustomerDisabled(ctx, "ops", "acme", true, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := live.CustomerByAPIKey("acme-key"); ok {
		t.Error("a disabled customer's key authenticates")
	}
	if _, ok := live.Customer("acme"); !ok {
		t.Error("a disabled customer is unknown by its ID")
	}

	// The audit log: who, what, secrets redacted, newest first.
	audit, err := s.Audit(ctx, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range audit {
		actions = append(actions, fmt.Sprintf("%d %s %s", e.Version, e.Who, e.Action))
		for _, c := range e.Changes {
			for _, secret := range []string{"beta-pw", "bcrypt:", "upsecret", key} {
				if strings.Contains(c, secret) {
					t.Errorf("audit entry %d shows a secret: %s", e.Version, c)
				}
			}
		}
	}
	want := []string{"6 ops disable customer acme", "5 ops revoke API key " + info.ID + " of customer beta",
		"4 ops create API key " + info.ID + " of customer beta", "3 ops update customer beta", "2 ops create customer beta",
		"1 bootstrap bootstrap from test.yaml"}
	if !slices.Equal(actions, want) {
		t.Errorf("audit:\n%s\nwant\n%s", strings.Join(actions, "\n"), strings.Join(want, "\n"))
	}
	if c := strings.Join(audit[3].Changes, "\n"); !strings.Contains(c, "~ customer beta: allowedSenders [BETA] → -; tps 20 → 5") {
		t.Errorf("changes of version 3: %s", c)
	}
}

func TestReplicasFollowTheStoreAndTheStoreWinsOverTheFile(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	a, _ := replica(t, store, bootstrap)
	// The second replica starts with a file that differs: the store wins.
	b, liveB := replica(t, store, strings.Replace(bootstrap, "plain:acme-key", "plain:other-key", 1))
	if _, ok := liveB.CustomerByAPIKey("acme-key"); !ok {
		t.Fatal("the second replica took its file over the stored configuration")
	}
	if _, _, err := a.Create(ctx, "ops", admin.Customers, map[string]any{"id": "gamma"}, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := liveB.Config().Customer("gamma"); ok {
		t.Fatal("the second replica has the change before it polled")
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := liveB.Config().Customer("gamma"); !ok || b.Version() != 2 {
		t.Fatalf("the second replica after polling: version %d", b.Version())
	}

	// Two changes at once: the one that loses the race is made again on the
	// version the other made, and neither is lost.
	store.beforePut = func() {
		if _, _, err := b.Create(ctx, "ops", admin.Customers, map[string]any{"id": "delta"}, 0); err != nil {
			t.Error(err)
		}
	}
	if _, v, err := a.Create(ctx, "ops", admin.Customers, map[string]any{"id": "epsilon"}, 0); err != nil || v != 4 {
		t.Fatalf("the change that lost the race: version %d, %v", v, err)
	}
	for _, id := range []string{"delta", "epsilon"} {
		if _, _, err := a.Get(ctx, admin.Customers, id); err != nil {
			t.Errorf("customer %s: %v", id, err)
		}
	}
}

func TestImportExportAndDryRun(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	s, _ := replica(t, store, bootstrap)
	raw, v, err := s.Export(ctx)
	if err != nil || v != 1 {
		t.Fatal(v, err)
	}
	// The export is a configuration file.
	exported := parse(t, string(raw))
	if len(exported.Customers) != 1 || len(exported.Admin.Keys) != 1 {
		t.Fatalf("export:\n%s", raw)
	}
	changed := strings.Replace(string(raw), "id: acme", "id: acme\n    tps: 7", 1)
	changes, v, err := s.Import(ctx, "ops", []byte(changed), true, 0)
	if err != nil || v != 1 || len(changes) != 1 || changes[0] != "~ customer acme: tps - → 7" {
		t.Fatalf("dry run: %q version %d, %v", changes, v, err)
	}
	if n, _ := store.ConfigVersionNumber(ctx); n != 1 {
		t.Fatal("a dry run stored a version")
	}
	if _, v, err = s.Import(ctx, "ops", []byte(changed), false, 0); err != nil || v != 2 {
		t.Fatalf("import: version %d, %v", v, err)
	}
	// An import that would leave no admin key is refused.
	noAdmin := parse(t, changed)
	noAdmin.Admin.Keys = nil
	rawNoAdmin, _ := noAdmin.Marshal()
	if _, _, err := s.Import(ctx, "ops", rawNoAdmin, false, 0); smsgw.ErrorCode(err) != smsgw.EINVALID || !strings.Contains(err.Error(), "admin") {
		t.Errorf("import without admin keys: %v", err)
	}
	if _, _, err := s.Import(ctx, "ops", []byte("customers: [{id: a}, {id: a}]"), false, 0); smsgw.ErrorCode(err) != smsgw.EINVALID || !strings.Contains(err.Error(), `duplicate id "a"`) {
		t.Errorf("invalid import: %v", err)
	}
}

func TestFileChangesWhileRunningAreChanges(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	s, live := replica(t, store, bootstrap)
	if err := s.FileChanged(ctx, parse(t, strings.Replace(bootstrap, "plain:acme-key", "plain:acme-key-2", 1))); err != nil {
		t.Fatal(err)
	}
	if _, ok := live.CustomerByAPIKey("acme-key-2"); !ok {
		t.Fatal("the changed file is not in force")
	}
	audit, _ := s.Audit(ctx, 0, 1)
	if len(audit) != 1 || audit[0].Who != "file" || audit[0].At.After(time.Now()) {
		t.Fatalf("audit: %+v", audit)
	}
}

func TestFileWinsStoresADifferingFileAtStart(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	replica(t, store, bootstrap)
	changed := strings.Replace(bootstrap, "plain:acme-key", "plain:acme-key-2", 1)
	cfg := parse(t, changed)
	live := config.Static(cfg)
	s := admin.New(admin.Options{Store: store, Live: live, FileWins: true})
	if err := s.Start(ctx, cfg, "dev.yaml"); err != nil {
		t.Fatal(err)
	}
	if s.Version() != 2 {
		t.Fatalf("version %d, want 2", s.Version())
	}
	if _, ok := live.CustomerByAPIKey("acme-key-2"); !ok {
		t.Error("the file's key is not in force")
	}
	if audit, _ := s.Audit(ctx, 0, 1); len(audit) != 1 || audit[0].Who != "file" {
		t.Errorf("audit: %+v", audit)
	}
}

// lateFirstRead is a store whose first look at the latest version misses
// the version another replica has just stored, as when replicas start
// together: the replica's own bootstrap then conflicts.
type lateFirstRead struct {
	*memStore
	missed bool
}

func (s *lateFirstRead) LatestConfigVersion(ctx context.Context) (smsgw.ConfigVersion, error) {
	if !s.missed {
		s.missed = true
		return smsgw.ConfigVersion{}, smsgw.Errorf(smsgw.ENOTFOUND, "no configuration is stored")
	}
	return s.memStore.LatestConfigVersion(ctx)
}

func TestReplicaThatLosesTheBootstrapTakesTheStoredVersion(t *testing.T) {
	store := &memStore{}
	replica(t, store, bootstrap)
	b, liveB := replica(t, &lateFirstRead{memStore: store}, strings.Replace(bootstrap, "plain:acme-key", "plain:other-key", 1))
	if _, ok := liveB.CustomerByAPIKey("acme-key"); !ok || b.Version() != 1 {
		t.Fatalf("the replica that lost the bootstrap: version %d, stored configuration not in force", b.Version())
	}
}
