package config

import (
	"context"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/smsgw/smsgw"
)

// Live holds the configuration in force and replaces it when the file changes.
// A file that fails to load is refused and the previous configuration stays.
type Live struct {
	path   string
	logger *slog.Logger
	state  atomic.Pointer[snapshot]
	// fileChanged, when set, takes a changed file instead of putting it in
	// force (see OnFileChange).
	fileChanged atomic.Pointer[func(*Config) error]
}

type snapshot struct {
	cfg     *Config
	modTime time.Time
	idx     *customerIndex
	// customers are cfg.Customers as domain values, in the same order, so
	// the configuration's index finds them.
	customers []*smsgw.Customer
	// admins are the admin keys' names by the hash of the key.
	admins map[string]string
}

// NewLive loads path once; the error is returned if that first load fails.
func NewLive(path string, logger *slog.Logger) (*Live, error) {
	l := &Live{path: path, logger: logger}
	if err := l.reload(); err != nil {
		return nil, err
	}
	return l, nil
}

// Static wraps an already loaded configuration that never reloads.
func Static(cfg *Config) *Live {
	l := &Live{logger: slog.New(slog.DiscardHandler)}
	l.state.Store(newSnapshot(cfg, time.Time{}))
	return l
}

func newSnapshot(cfg *Config, mod time.Time) *snapshot {
	return &snapshot{cfg: cfg, modTime: mod, idx: cfg.index(), customers: cfg.DomainCustomers(), admins: cfg.adminIndex()}
}

// customer returns the domain customer at m[key].
func (s *snapshot) customer(m map[string]int, key string) (*smsgw.Customer, bool) {
	i, ok := m[key]
	if !ok {
		return nil, false
	}
	return s.customers[i], true
}

func (l *Live) reload() error {
	st, err := os.Stat(l.path)
	if err != nil {
		return err
	}
	cfg, err := Load(l.path)
	if err != nil {
		return err
	}
	if f := l.fileChanged.Load(); f != nil {
		// The file's modification time is noted either way, so a change
		// that was refused is not taken again until the file changes again.
		old := l.state.Load()
		l.state.Store(&snapshot{cfg: old.cfg, modTime: st.ModTime(), idx: old.idx, customers: old.customers, admins: old.admins})
		return (*f)(cfg)
	}
	l.state.Store(newSnapshot(cfg, st.ModTime()))
	return nil
}

// OnFileChange hands every later change of the file, once it loads, to f
// instead of putting it in force: the gateway then keeps its configuration
// in a store, and f records the file there as a change (see the admin
// package), which comes back through Set.
func (l *Live) OnFileChange(f func(*Config) error) { l.fileChanged.Store(&f) }

// Set puts cfg in force, as a reload of the file would.
func (l *Live) Set(cfg *Config) {
	l.state.Store(newSnapshot(cfg, l.state.Load().modTime))
}

// FileConfig loads the file the configuration came from, without putting
// it in force; nil without a file.
func (l *Live) FileConfig() (*Config, error) {
	if l.path == "" {
		return nil, nil
	}
	return Load(l.path)
}

// Watch checks the file every interval and reloads it when it changed, until
// ctx is done.
func (l *Live) Watch(ctx context.Context, interval time.Duration) {
	if l.path == "" {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := os.Stat(l.path)
		if err != nil || st.ModTime().Equal(l.state.Load().modTime) {
			continue
		}
		if err := l.reload(); err != nil {
			l.logger.Error("configuration refused; the previous one stays in force", "path", l.path, "err", err)
			continue
		}
		l.logger.Info("configuration reloaded", "path", l.path)
	}
}

// Config returns the configuration in force.
func (l *Live) Config() *Config { return l.state.Load().cfg }

// CustomerByAPIKey finds the customer owning an API key.
func (l *Live) CustomerByAPIKey(key string) (*smsgw.Customer, bool) {
	st := l.state.Load()
	return st.customer(st.idx.byAPIKey, smsgw.HashAPIKey(key))
}

// AdminByKey returns the name of the admin key key, if it is one.
func (l *Live) AdminByKey(key string) (string, bool) {
	name, ok := l.state.Load().admins[smsgw.HashAPIKey(key)]
	return name, ok
}

// Customer finds a customer by ID.
func (l *Live) Customer(id string) (*smsgw.Customer, bool) {
	st := l.state.Load()
	return st.customer(st.idx.byID, id)
}
