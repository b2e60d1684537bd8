// Package admin keeps the gateway's configuration in a store and changes it
// for the admin API: customers, their API keys, connectors and routes. Every
// change is a new version of the whole configuration, validated as the
// configuration file is (config.Parse), stored with the audit record of who
// changed what, and put in force on every replica, which poll the stored
// version (Service.Run). Once a version is stored it wins over the
// configuration file: the file only bootstraps an empty store
// (Service.Start).
package admin

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
)

// Store keeps the configuration's versions (the MongoDB store does).
type Store interface {
	// PutConfigVersion stores version v.Version, which must follow the
	// latest; a version another change stored first is an ECONFLICT.
	PutConfigVersion(ctx context.Context, v smsgw.ConfigVersion) error
	// LatestConfigVersion is ENOTFOUND while no version is stored.
	LatestConfigVersion(ctx context.Context) (smsgw.ConfigVersion, error)
	// ConfigVersionNumber is 0 while no version is stored.
	ConfigVersionNumber(ctx context.Context) (int64, error)
	// ListConfigVersions lists audit records, newest first, before a version (0: the latest).
	ListConfigVersions(ctx context.Context, before int64, limit int) ([]smsgw.ConfigVersion, error)
}

// Options configure a Service. Store and Live are required.
type Options struct {
	Store Store
	// Live is the configuration in force in this process; every version
	// stored or seen is put in force there.
	Live   *config.Live
	Logger *slog.Logger
	// Lookup resolves ${NAME} references (os.LookupEnv when nil).
	Lookup func(string) (string, bool)
	Now    func() time.Time
	// FileWins has Start store a configuration file that differs from the
	// stored configuration as a change, instead of only reporting it: for
	// development, where the file is what one edits.
	FileWins bool
}

// Service changes the stored configuration and keeps this process's in step
// with it.
type Service struct {
	store  Store
	live   *config.Live
	log    *slog.Logger
	lookup func(string) (string, bool)
	now    func() time.Time
	// fileWins: see Options.FileWins.
	fileWins bool

	mu       sync.Mutex
	applied  int64 // the version in force in this process
	refused  int64 // the last version that did not load here, logged once
	changeMu sync.Mutex
}

// New returns a Service; call Start before anything else.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Lookup == nil {
		o.Lookup = os.LookupEnv
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{store: o.Store, live: o.Live, log: o.Logger, lookup: o.Lookup, now: o.Now, fileWins: o.FileWins}
}

// state is one version of the configuration, parsed.
type state struct {
	version int64
	cfg     *config.Config
	keys    []smsgw.APIKeyInfo
}

// Start puts the stored configuration in force. With none stored yet, file
// (the configuration file, named source in the audit log) becomes version
// 1. Otherwise a file that differs from the stored configuration is
// reported in the log, with the differences, and not applied.
func (s *Service) Start(ctx context.Context, file *config.Config, source string) error {
	latest, err := s.store.LatestConfigVersion(ctx)
	if smsgw.ErrorCode(err) == smsgw.ENOTFOUND {
		var raw []byte
		if raw, err = file.Marshal(); err != nil {
			return err
		}
		v := smsgw.ConfigVersion{Version: 1, At: s.now(), Who: "bootstrap", Action: "bootstrap from " + source,
			Changes: config.Diff(&config.Config{}, file), Config: raw}
		err = s.store.PutConfigVersion(ctx, v)
		if err == nil {
			s.apply(1, file)
			s.log.Info("configuration stored: the file bootstrapped the store", "file", source, "version", 1)
			return nil
		}
		if smsgw.ErrorCode(err) != smsgw.ECONFLICT {
			return fmt.Errorf("bootstrap the stored configuration: %w", err)
		}
		// Another replica bootstrapped it first: take its version.
		latest, err = s.store.LatestConfigVersion(ctx)
	}
	if err != nil {
		return fmt.Errorf("read the stored configuration: %w", err)
	}
	st, err := s.parse(latest)
	if err != nil {
		return fmt.Errorf("stored configuration version %d: %w", latest.Version, err)
	}
	s.apply(st.version, st.cfg)
	if diff := config.Diff(st.cfg, file); len(diff) > 0 && s.fileWins {
		s.log.Info("the configuration file differs from the stored configuration: stored as a change", "file", source)
		return s.FileChanged(ctx, file)
	} else if len(diff) > 0 {
		s.log.Warn("the configuration file differs from the stored configuration, which stays in force (`smsgw ctl import` applies a file)",
			"file", source, "version", st.version, "differences", strings.Join(diff, "\n"))
	}
	return nil
}

// Run polls the stored version every interval and puts a newer one in
// force, until ctx is done.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("stored configuration not read; the configuration in force stays", "err", err)
		}
	}
}

// Refresh puts the stored configuration in force if it is newer than the
// one in force.
func (s *Service) Refresh(ctx context.Context) error {
	n, err := s.store.ConfigVersionNumber(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	current, refused := s.applied, s.refused
	s.mu.Unlock()
	if n <= current || n == refused {
		return nil
	}
	latest, err := s.store.LatestConfigVersion(ctx)
	if err != nil {
		return err
	}
	st, err := s.parse(latest)
	if err != nil {
		s.mu.Lock()
		s.refused = latest.Version
		s.mu.Unlock()
		s.log.Error("stored configuration refused here; the configuration in force stays", "version", latest.Version, "err", err)
		return nil
	}
	if s.apply(st.version, st.cfg) {
		s.log.Info("configuration changed", "version", st.version, "who", latest.Who, "action", latest.Action)
	}
	return nil
}

// Version is the configuration version in force in this process.
func (s *Service) Version() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

// apply puts version v in force unless a later one already is.
func (s *Service) apply(v int64, cfg *config.Config) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v <= s.applied {
		return false
	}
	s.live.Set(cfg)
	s.applied = v
	return true
}

// FileChanged records a changed configuration file as a change, made by
// "file" (config.Live.OnFileChange calls it).
func (s *Service) FileChanged(ctx context.Context, cfg *config.Config) error {
	_, err := s.change(ctx, "file", "configuration file changed", 0, func(st *state) error {
		st.cfg = cfg
		return nil
	})
	return err
}

// parse reads a stored version.
func (s *Service) parse(v smsgw.ConfigVersion) (*state, error) {
	cfg, err := config.Parse(v.Config, s.lookup)
	if err != nil {
		return nil, err
	}
	return &state{version: v.Version, cfg: cfg, keys: v.Keys}, nil
}

// current reads the latest stored version, parsed afresh so that an edit
// can change it freely.
func (s *Service) current(ctx context.Context) (*state, error) {
	latest, err := s.store.LatestConfigVersion(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.parse(latest)
	if err != nil {
		return nil, fmt.Errorf("stored configuration version %d: %w", latest.Version, err)
	}
	return st, nil
}

// lineRef is the position in the YAML a validation error names: the
// configuration a change makes has no file, so it is left out.
var lineRef = regexp.MustCompile(`(?m)^line \d+: `)

// maxAttempts bounds how often a change with no expected version is tried
// again after another change took its version number.
const maxAttempts = 5

// change makes one versioned change: edit changes a fresh copy of the
// latest version, and the result, validated as the configuration file is,
// is stored as the next version with its audit record and put in force
// here. expected, when not 0, is the version the change was made against:
// any other latest version is an ECONFLICT. A change that changes nothing
// stores nothing and returns the latest version.
func (s *Service) change(ctx context.Context, who, action string, expected int64, edit func(*state) error) (int64, error) {
	s.changeMu.Lock() // changes from one replica go one at a time
	defer s.changeMu.Unlock()
	for attempt := 1; ; attempt++ {
		cur, err := s.current(ctx)
		if err != nil {
			return 0, err
		}
		if expected != 0 && cur.version != expected {
			return 0, smsgw.Errorf(smsgw.ECONFLICT, "the configuration is at version %d, not %d: read it again and retry", cur.version, expected)
		}
		old := cur.cfg
		next := &state{version: cur.version, keys: cur.keys}
		if next.cfg, err = s.parseCopy(old); err != nil {
			return 0, err
		}
		if err := edit(next); err != nil {
			return 0, err
		}
		raw, err := next.cfg.Marshal()
		if err != nil {
			return 0, err
		}
		cfg, err := config.Parse(raw, s.lookup)
		if err != nil {
			return 0, smsgw.Errorf(smsgw.EINVALID, "%s", lineRef.ReplaceAllString(err.Error(), ""))
		}
		if len(old.Admin.Keys) > 0 && len(cfg.Admin.Keys) == 0 {
			return 0, smsgw.Errorf(smsgw.EINVALID, "the change leaves no admin key: it would lock every admin out")
		}
		changes := config.Diff(old, cfg)
		if len(changes) == 0 {
			return cur.version, nil
		}
		v := smsgw.ConfigVersion{Version: cur.version + 1, At: s.now(), Who: who, Action: action, Changes: changes,
			Config: raw, Keys: keptKeys(cfg, next.keys)}
		err = s.store.PutConfigVersion(ctx, v)
		if smsgw.ErrorCode(err) == smsgw.ECONFLICT && expected == 0 && attempt < maxAttempts {
			continue
		}
		if err != nil {
			return 0, err
		}
		s.apply(v.Version, cfg)
		s.log.Info("configuration changed", "version", v.Version, "who", who, "action", action, "changes", strings.Join(changes, "\n"))
		return v.Version, nil
	}
}

// parseCopy returns a copy of cfg that can be changed without touching cfg.
func (s *Service) parseCopy(cfg *config.Config) (*config.Config, error) {
	raw, err := cfg.Marshal()
	if err != nil {
		return nil, err
	}
	return config.Parse(raw, s.lookup)
}

// keptKeys are the descriptions of the API keys cfg still has.
func keptKeys(cfg *config.Config, keys []smsgw.APIKeyInfo) []smsgw.APIKeyInfo {
	have := map[string]string{}
	for _, cu := range cfg.Customers {
		for _, k := range cu.APIKeys {
			if h, err := config.APIKeyHash(k); err == nil {
				have[h[:keyIDLen]] = cu.ID
			}
		}
	}
	var out []smsgw.APIKeyInfo
	for _, k := range keys {
		if have[k.ID] == k.CustomerID {
			out = append(out, k)
		}
	}
	return out
}

// Export returns the configuration in force as YAML, and its version.
func (s *Service) Export(ctx context.Context) ([]byte, int64, error) {
	latest, err := s.store.LatestConfigVersion(ctx)
	if err != nil {
		return nil, 0, err
	}
	return latest.Config, latest.Version, nil
}

// Import makes a configuration file (YAML, as `smsgw check-config` reads
// it) the configuration, as one change; with dryRun it only returns the
// differences.
func (s *Service) Import(ctx context.Context, who string, raw []byte, dryRun bool, expected int64) ([]string, int64, error) {
	cfg, err := config.Parse(raw, s.lookup)
	if err != nil {
		return nil, 0, smsgw.Errorf(smsgw.EINVALID, "%v", err)
	}
	if dryRun {
		cur, err := s.current(ctx)
		if err != nil {
			return nil, 0, err
		}
		if expected != 0 && cur.version != expected {
			return nil, 0, smsgw.Errorf(smsgw.ECONFLICT, "the configuration is at version %d, not %d", cur.version, expected)
		}
		return config.Diff(cur.cfg, cfg), cur.version, nil
	}
	var changes []string
	v, err := s.change(ctx, who, "import", expected, func(st *state) error {
		changes = config.Diff(st.cfg, cfg)
		st.cfg = cfg
		return nil
	})
	return changes, v, err
}

// Audit lists the audit records of the changes, newest first.
func (s *Service) Audit(ctx context.Context, before int64, limit int) ([]smsgw.ConfigVersion, error) {
	return s.store.ListConfigVersions(ctx, before, limit)
}

// AdminByKey returns the name of the admin key key, if it is one.
func (s *Service) AdminByKey(key string) (string, bool) { return s.live.AdminByKey(key) }

// errNotFound is a missing resource of a kind.
func errNotFound(kind Kind, id string) error {
	return smsgw.Errorf(smsgw.ENOTFOUND, "%s %q not found", kind, id)
}
