// Command devdb runs the databases smsgw needs on a developer machine, in one
// process and with no setup: a MongoDB-wire server (FerretDB on SQLite files)
// for the event store, and a MySQL-wire server (go-mysql-server, in memory) for
// reporting. It lives in its own Go module so that the production binary
// carries no database.
//
// When a service is ready devdb prints one line for it on stdout:
//
//	MONGODB_URI=mongodb://127.0.0.1:27017/
//	MYSQL_DSN=root@tcp(127.0.0.1:3306)/smsgw?parseTime=true&loc=UTC
//
// and it stops on SIGINT or SIGTERM. An empty address disables a service;
// port 0 lets the system choose one (the printed lines carry the real port).
//
// Usage:
//
//	devdb [-mongo-addr 127.0.0.1:27017] [-mysql-addr 127.0.0.1:3306] [-data .data/ferretdb] [-mysql-db smsgw] [-id-index-skip events,correlations_archive] [-exit-on-eof] [-v]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	sqle "github.com/dolthub/go-mysql-server"
	"github.com/dolthub/go-mysql-server/memory"
	"github.com/dolthub/go-mysql-server/server"
	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/sirupsen/logrus"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// A development database on a developer's machine: a larger heap
		// for a quarter of the collector's work (GOGC still overrides).
		debug.SetGCPercent(400)
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// config is what the flags say.
type config struct {
	mongoAddr string
	mysqlAddr string
	dataDir   string
	mysqlDB   string
	exitOnEOF bool
	verbose   bool
	// idIndexSkip names the collections given no index for their lookups
	// by _id (idIndexer): those only appended to.
	idIndexSkip []string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("devdb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.mongoAddr, "mongo-addr", "127.0.0.1:27017", `MongoDB-wire listen address ("" disables it, port 0 picks a free port)`)
	fs.StringVar(&c.mysqlAddr, "mysql-addr", "127.0.0.1:3306", `MySQL-wire listen address ("" disables it, port 0 picks a free port)`)
	fs.StringVar(&c.dataDir, "data", filepath.Join(".data", "ferretdb"), "directory for the MongoDB-wire server's SQLite files")
	fs.StringVar(&c.mysqlDB, "mysql-db", "smsgw", "database created in the MySQL-wire server")
	fs.BoolVar(&c.exitOnEOF, "exit-on-eof", false, "also stop when stdin is closed (so a parent process that dies takes devdb with it)")
	fs.BoolVar(&c.verbose, "v", false, "log at debug level")
	skip := fs.String("id-index-skip", "events,correlations_archive", "comma-separated collections that get no index for their lookups by _id (only appended to, or read by other fields: an index would cost every insert for nothing)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	c.idIndexSkip = strings.Split(*skip, ",")
	if c.mongoAddr == "" && c.mysqlAddr == "" {
		return c, errors.New("both -mongo-addr and -mysql-addr are empty: nothing to run")
	}
	if c.mysqlDB == "" {
		return c, errors.New("-mysql-db must not be empty")
	}
	return c, nil
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "devdb:", err)
		return 2
	}
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.exitOnEOF {
		ctx = stopAtEOF(ctx, stdin)
	}

	errc := make(chan error, 2)
	running := 0
	if c.mongoAddr != "" {
		uri, done, err := startMongo(ctx, c, log)
		if err != nil {
			log.Error("cannot start the MongoDB-wire server", "err", err)
			return 1
		}
		running++
		go func() { errc <- <-done }()
		fmt.Fprintf(stdout, "MONGODB_URI=%s\n", uri)
	}
	if c.mysqlAddr != "" {
		dsn, done, err := startMySQL(ctx, c, stderr, c.verbose)
		if err != nil {
			log.Error("cannot start the MySQL-wire server", "err", err)
			stop()
			waitAll(errc, running)
			return 1
		}
		running++
		go func() { errc <- <-done }()
		fmt.Fprintf(stdout, "MYSQL_DSN=%s\n", dsn)
	}

	<-ctx.Done()
	code := 0
	if err := waitAll(errc, running); err != nil {
		log.Error("stopped with an error", "err", err)
		code = 1
	}
	return code
}

// waitAll waits for n servers to stop and returns the first error.
func waitAll(errc <-chan error, n int) error {
	var first error
	for range n {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// stopAtEOF returns a context that is also cancelled when r reaches EOF.
func stopAtEOF(ctx context.Context, r io.Reader) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		_, _ = io.Copy(io.Discard, bufio.NewReader(r))
		cancel()
	}()
	return ctx
}

// startMongo starts FerretDB with its SQLite handler on c.dataDir. The
// returned channel yields once the server has stopped, after ctx is done.
func startMongo(ctx context.Context, c config, log *slog.Logger) (string, <-chan error, error) {
	dir, err := filepath.Abs(c.dataDir)
	if err != nil {
		return "", nil, fmt.Errorf("data directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", nil, fmt.Errorf("data directory: %w", err)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: c.mongoAddr},
		Logger:   log.With("server", "ferretdb"),
		Handler:  "sqlite",
		// WAL with synchronous=normal: a commit survives a crash of devdb,
		// only a power cut may lose the last ones, and writes need no fsync
		// each (which costs tens of milliseconds on slow disks). The files
		// are read through a memory map (up to 256 MiB each), shared by
		// the server's connections, instead of a read call for every page
		// a connection's own cache does not hold.
		SQLiteURL: "file:" + dir + "/?_pragma=synchronous(normal)&_pragma=mmap_size(268435456)",
	})
	if err != nil {
		return "", nil, fmt.Errorf("ferretdb: %w", err)
	}
	indexed := make(chan struct{})
	go func() {
		defer close(indexed)
		newIDIndexer(dir, c.idIndexSkip, log).run(ctx, time.Second)
	}()
	done := make(chan error, 1)
	go func() {
		err := f.Run(ctx)
		<-indexed // its pass ended with ctx: no connection left open
		done <- err
	}()
	// MongoDBURI waits until Run has opened the listener.
	return f.MongoDBURI(), done, nil
}

// startMySQL starts go-mysql-server in memory with one empty database. Root
// has no password. Statements and transactions run one at a time (see
// serialHandler). The returned channel yields once the server has stopped,
// after ctx is done.
func startMySQL(ctx context.Context, c config, stderr io.Writer, verbose bool) (string, <-chan error, error) {
	logrus.SetOutput(stderr)
	logrus.SetLevel(logrus.ErrorLevel)
	if verbose {
		logrus.SetLevel(logrus.DebugLevel)
	}

	pro := memory.NewDBProvider()
	pro.WithOption(memory.NativeIndexProvider(true))
	if err := pro.CreateDatabase(sql.NewEmptyContext(), c.mysqlDB); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", c.mysqlDB, err)
	}
	engine := sqle.NewDefault(pro)
	serial := func(h mysql.Handler) (mysql.Handler, error) { return newSerialHandler(h), nil }
	srv, err := server.NewServerWithHandler(server.Config{Protocol: "tcp", Address: c.mysqlAddr},
		engine, sql.NewContext, memory.NewSessionBuilder(pro), nil, serial)
	if err != nil {
		return "", nil, fmt.Errorf("go-mysql-server: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		_ = srv.Start() // returns when the listener is closed
	}()
	go func() {
		<-ctx.Done()
		done <- srv.Close()
	}()
	dsn := fmt.Sprintf("root@tcp(%s)/%s?parseTime=true&loc=UTC", srv.Listener.Addr(), c.mysqlDB)
	return dsn, done, nil
}
