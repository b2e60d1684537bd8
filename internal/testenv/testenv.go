// Package testenv gives tests real databases: a MongoDB-wire server for the
// event store and a MySQL-wire server for reporting. It never skips: a test
// that needs a database and cannot reach one fails, naming the environment
// variable to set.
//
//   - SMSGW_TEST_MONGODB_URI: a MongoDB (or FerretDB) to use. When unset,
//     each test starts its own devdb (embedded FerretDB on SQLite files in a
//     temporary directory), from $SMSGW_DEVDB or <repo>/bin/devdb, building it
//     from <repo>/dev when it is missing.
//   - SMSGW_TEST_MYSQL_DSN: a server to create test databases on, default
//     root@tcp(127.0.0.1:3306)/.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Environment variables read by this package.
const (
	EnvMongoURI = "SMSGW_TEST_MONGODB_URI"
	EnvMySQLDSN = "SMSGW_TEST_MYSQL_DSN"
	EnvDevDB    = "SMSGW_DEVDB"
)

// DefaultMySQLDSN is the server used when SMSGW_TEST_MYSQL_DSN is unset.
const DefaultMySQLDSN = "root@tcp(127.0.0.1:3306)/"

// startTimeout bounds how long devdb may take to print its address.
const startTimeout = 60 * time.Second

// MongoURI returns the URI of a MongoDB-wire server for this test: the one in
// SMSGW_TEST_MONGODB_URI, or a devdb started for the test and stopped when it
// ends. Pair it with MongoDatabase so tests do not see each other's data.
func MongoURI(t testing.TB) string {
	t.Helper()
	skipShort(t, "a MongoDB-wire server")
	if uri := os.Getenv(EnvMongoURI); uri != "" {
		return uri
	}
	bin, err := devdbBinary()
	if err != nil {
		t.Fatalf("testenv: no MongoDB for the test: set %s, or make devdb available (%s): %v", EnvMongoURI, EnvDevDB, err)
	}
	return startDevDB(t, bin, "-mysql-addr", "", "-mongo-addr", "127.0.0.1:0", "-data", t.TempDir()).MongoURI
}

// MongoDatabase returns a database name no other test uses.
func MongoDatabase(t testing.TB) string {
	t.Helper()
	return "smsgw_test_" + randomHex(t, 6)
}

// MySQLDSN creates a fresh database on the server in SMSGW_TEST_MYSQL_DSN
// (default root@tcp(127.0.0.1:3306)/), drops it when the test ends, and
// returns a DSN for it with parseTime=true&loc=UTC.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	skipShort(t, "a MySQL server")
	base := os.Getenv(EnvMySQLDSN)
	if base == "" {
		base = DefaultMySQLDSN
	}
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("testenv: %s=%q: %v", EnvMySQLDSN, base, err)
	}
	cfg.DBName = ""
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("testenv: %s=%q: %v", EnvMySQLDSN, base, err)
	}
	defer admin.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := "smsgw_test_" + randomHex(t, 6)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: cannot create a test database on %s (set %s to a reachable MySQL or MariaDB server): %v",
			cfg.Addr, EnvMySQLDSN, err)
	}
	dropCfg := cfg.Clone()
	t.Cleanup(func() {
		db, err := sql.Open("mysql", dropCfg.FormatDSN())
		if err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// DevDB is a devdb process started for a test.
type DevDB struct {
	MongoURI string // empty when the MongoDB-wire server is disabled
	MySQLDSN string // empty when the MySQL-wire server is disabled
	stop     func()
}

// Stop stops the servers now, for tests of what happens when a database goes
// away. It is also done when the test ends.
func (d *DevDB) Stop() { d.stop() }

// StartDevDB starts devdb with args (its flags) for this test and stops it
// when the test ends.
func StartDevDB(t testing.TB, args ...string) *DevDB {
	t.Helper()
	skipShort(t, "devdb")
	bin, err := devdbBinary()
	if err != nil {
		t.Fatalf("testenv: devdb is not available (set %s): %v", EnvDevDB, err)
	}
	return startDevDB(t, bin, args...)
}

func startDevDB(t testing.TB, bin string, args ...string) *DevDB {
	t.Helper()
	want := map[string]bool{}
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "-mongo-addr":
			want["MONGODB_URI"] = args[i+1] != ""
		case "-mysql-addr":
			want["MYSQL_DSN"] = args[i+1] != ""
		}
	}
	for _, k := range []string{"MONGODB_URI", "MYSQL_DSN"} {
		if _, given := want[k]; !given {
			want[k] = true // devdb's defaults enable both
		}
	}

	cmd := exec.Command(bin, append([]string{"-exit-on-eof"}, args...)...)
	stdin, err := cmd.StdinPipe() // closed when the test process dies, so devdb follows
	if err != nil {
		t.Fatalf("testenv: devdb: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("testenv: devdb: %v", err)
	}
	var stderr SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
			_ = stdin.Close()
		})
	}
	t.Cleanup(stop)

	type result struct {
		lines map[string]string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		lines := map[string]string{}
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), "=")
			if ok && want[k] {
				lines[k] = v
			}
			if len(lines) == countTrue(want) {
				done <- result{lines: lines}
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
		}
		done <- result{err: fmt.Errorf("devdb exited before it was ready (got %v)", lines)}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("testenv: %v\n%s", r.err, stderr.String())
		}
		return &DevDB{MongoURI: r.lines["MONGODB_URI"], MySQLDSN: r.lines["MYSQL_DSN"], stop: stop}
	case <-time.After(startTimeout):
		t.Fatalf("testenv: devdb not ready after %s\n%s", startTimeout, stderr.String())
	}
	return nil
}

func countTrue(m map[string]bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

// devdbBinary returns the path of devdb: $SMSGW_DEVDB, or <repo>/bin/devdb,
// which it builds from <repo>/dev when missing. Delete bin/devdb to rebuild it.
func devdbBinary() (string, error) {
	if p := os.Getenv(EnvDevDB); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvDevDB, p, err)
		}
		return p, nil
	}
	buildOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			buildErr = err
			return
		}
		bin := filepath.Join(root, "bin", "devdb")
		if _, err := os.Stat(bin); err == nil {
			builtPath = bin
			return
		}
		// Build to a private name and rename, so test binaries of several
		// packages building at once never see a half-written file.
		tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
		cmd := exec.Command("go", "build", "-o", tmp, "./cmd/devdb")
		cmd.Dir = filepath.Join(root, "dev")
		out, err := cmd.CombinedOutput()
		if err != nil {
			_ = os.Remove(tmp)
			buildErr = fmt.Errorf("go build ./cmd/devdb in %s: %w\n%s", cmd.Dir, err, out)
			return
		}
		if err := os.Rename(tmp, bin); err != nil {
			buildErr = err
			return
		}
		builtPath = bin
	})
	return builtPath, buildErr
}

// repoRoot finds the main module's directory from the working directory,
// which go test sets to the package under test.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/smsgw/smsgw\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of github.com/smsgw/smsgw above the working directory")
		}
		dir = parent
	}
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testenv: random: %v", err)
	}
	return hex.EncodeToString(b)
}

// SyncBuffer is a bytes.Buffer safe for writers and readers on several
// goroutines: a log's output that a test reads while it is written.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// skipShort skips a test that needs a real server when tests run with
// -short (`make unit`); `make test` runs them all.
func skipShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("needs %s; run without -short", what)
	}
}
