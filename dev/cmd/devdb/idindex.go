package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the driver FerretDB's SQLite handler registers too
)

// FerretDB v1 on SQLite gives every collection a unique index on
// _ferretdb_sjson->"_id", but its finds, updates and deletes by _id filter
// on _ferretdb_sjson->'$._id': the same value, written as another
// expression, which SQLite does not match to the index, so every lookup
// by _id reads the whole table (EXPLAIN QUERY PLAN: SCAN). An opt-out list
// of 50,000 numbers would be read whole at every submission.
//
// idIndexer mends that from outside: it gives each collection's table an
// index on the expression the lookups use, so that SQLite searches it
// instead. It looks for new collections every pass, in every database
// file in the data directory. Collections that are only appended to and
// never looked up by _id (skip) get none: each index is one more entry an
// insert must compute and write. The unique index stays FerretDB's own;
// the added one is invisible to MongoDB clients (listIndexes reads
// FerretDB's metadata) and goes with its table when the collection is
// dropped.
type idIndexer struct {
	dir  string
	skip map[string]bool
	log  *slog.Logger

	open map[string]openFile // by database file
}

// openFile is a database file and the connection to it.
type openFile struct {
	db   *sql.DB
	info os.FileInfo // to tell the file from another one created in its place
}

// idLookupIndexSuffix ends the name of an added index.
const idLookupIndexSuffix = "__id_lookup"

func newIDIndexer(dir string, skip []string, log *slog.Logger) *idIndexer {
	x := &idIndexer{dir: dir, skip: map[string]bool{}, log: log, open: map[string]openFile{}}
	for _, s := range skip {
		if s = strings.TrimSpace(s); s != "" {
			x.skip[s] = true
		}
	}
	return x
}

// run makes a pass at once and then every interval until ctx is done.
func (x *idIndexer) run(ctx context.Context, every time.Duration) {
	defer x.close()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := x.pass(ctx); err != nil && ctx.Err() == nil {
			x.log.Warn("cannot index the lookups by _id", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pass indexes the collections that have no lookup index yet.
func (x *idIndexer) pass(ctx context.Context) error {
	files, err := filepath.Glob(filepath.Join(x.dir, "*.sqlite"))
	if err != nil {
		return fmt.Errorf("list the database files: %w", err)
	}
	seen := map[string]bool{}
	for _, file := range files {
		seen[file] = true
		if err := x.indexFile(ctx, file); err != nil {
			return err
		}
	}
	for file, f := range x.open { // dropped databases
		if !seen[file] {
			_ = f.db.Close()
			delete(x.open, file)
		}
	}
	return nil
}

func (x *idIndexer) indexFile(ctx context.Context, file string) error {
	db, err := x.conn(file)
	if err != nil || db == nil {
		return err
	}
	rows, err := db.QueryContext(ctx, `SELECT c.name, c.table_name FROM _ferretdb_collections c
		WHERE NOT EXISTS (SELECT 1 FROM sqlite_master m WHERE m.type = 'index' AND m.name = c.table_name || ?)`, idLookupIndexSuffix)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil // a database FerretDB is still creating
		}
		return fmt.Errorf("read the collections of %s: %w", file, err)
	}
	var todo [][2]string
	for rows.Next() {
		var name, table string
		if err := rows.Scan(&name, &table); err != nil {
			rows.Close()
			return fmt.Errorf("read the collections of %s: %w", file, err)
		}
		if !x.skip[name] {
			todo = append(todo, [2]string{name, table})
		}
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("read the collections of %s: %w", file, err)
	}
	for _, c := range todo {
		name, table := c[0], c[1]
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, table+idLookupIndexSuffix, table)
		if _, err := db.ExecContext(ctx, q); err != nil {
			if strings.Contains(err.Error(), "no such table") {
				continue // dropped meanwhile
			}
			return fmt.Errorf("index the lookups by _id of %s in %s: %w", name, file, err)
		}
		x.log.Debug("lookups by _id indexed", "collection", name, "file", filepath.Base(file))
	}
	return nil
}

// conn returns the connection to a database file, opened again when the
// file was dropped and created anew since; nil when it is gone.
func (x *idIndexer) conn(file string) (*sql.DB, error) {
	info, err := os.Stat(file)
	if err != nil {
		return nil, nil // dropped meanwhile
	}
	if f, ok := x.open[file]; ok {
		if os.SameFile(f.info, info) {
			return f.db, nil
		}
		_ = f.db.Close()
		delete(x.open, file)
	}
	// FerretDB keeps the file in WAL mode; a write here waits its turn.
	// mode=rw: a file dropped meanwhile is not created again here.
	db, err := sql.Open("sqlite", "file:"+file+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", file, err)
	}
	db.SetMaxOpenConns(1)
	x.open[file] = openFile{db: db, info: info}
	return db, nil
}

func (x *idIndexer) close() {
	for _, f := range x.open {
		_ = f.db.Close()
	}
}
