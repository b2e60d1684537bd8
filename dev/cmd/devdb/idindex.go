package main

import (
	"context"
	"database/sql"
	"errors"
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
// file in the data directory. Collections that are only appended to or
// read by other fields (skip) get none: each index is one more entry an
// insert must compute and write. The unique index stays FerretDB's own;
// the added one is invisible to MongoDB clients (listIndexes reads
// FerretDB's metadata) and goes with its table when the collection is
// dropped.
type idIndexer struct {
	dir  string
	skip map[string]bool
	log  *slog.Logger

	failed map[string]failure // by "file\x00table": not tried again until after
}

// failure is an index that could not be made, and when to try it again.
type failure struct {
	err   string
	again time.Time
}

// idIndexPrefix begins the name of every added index. FerretDB names its
// own indexes after their table, and no table's name can begin with its
// reserved prefix, so no index of FerretDB's takes this name.
const idIndexPrefix = "_ferretdb_smsgw_id_"

// idIndexRetry is how long a collection whose index failed waits before
// the next try, so that a lasting failure is logged once a while, not
// every pass.
const idIndexRetry = time.Minute

func newIDIndexer(dir string, skip []string, log *slog.Logger) *idIndexer {
	x := &idIndexer{dir: dir, skip: map[string]bool{}, log: log, failed: map[string]failure{}}
	for _, s := range skip {
		if s = strings.TrimSpace(s); s != "" {
			x.skip[s] = true
		}
	}
	return x
}

// run makes a pass at once and then every interval until ctx is done.
func (x *idIndexer) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		x.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pass indexes, in every database file, the collections that have no
// lookup index yet. A file or a collection that fails is logged and left
// for a later pass; the others are indexed all the same.
func (x *idIndexer) pass(ctx context.Context) {
	files, err := filepath.Glob(filepath.Join(x.dir, "*.sqlite"))
	if err != nil {
		x.log.Warn("cannot list the database files", "dir", x.dir, "err", err)
		return
	}
	for _, file := range files {
		if ctx.Err() != nil {
			return
		}
		if err := x.indexFile(ctx, file); err != nil && ctx.Err() == nil {
			x.fail(file, "", err)
		}
	}
}

// indexFile indexes the collections of one database file. It opens the
// file for the pass only: a connection kept open would keep its WAL
// alive after FerretDB drops the database.
func (x *idIndexer) indexFile(ctx context.Context, file string) error {
	if !x.due(file, "") {
		return nil
	}
	// mode=rw: a file dropped meanwhile is not created again here. FerretDB
	// keeps the file in WAL mode; a write here waits its turn.
	db, err := sql.Open("sqlite", "file:"+file+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	todo, err := unindexed(ctx, db)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "no such table") || strings.Contains(err.Error(), "unable to open") {
			return nil // dropped, or still being created by FerretDB
		}
		return err
	}
	for _, c := range todo {
		name, table := c[0], c[1]
		if x.skip[name] || !x.due(file, table) {
			continue
		}
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, idIndexPrefix+table, table)
		if _, err := db.ExecContext(ctx, q); err != nil {
			if !strings.Contains(err.Error(), "no such table") && ctx.Err() == nil { // else dropped meanwhile
				x.fail(file, table, fmt.Errorf("collection %s: %w", name, err))
			}
			continue
		}
		delete(x.failed, file+"\x00"+table)
		x.log.Debug("lookups by _id indexed", "collection", name, "file", filepath.Base(file))
	}
	delete(x.failed, file+"\x00")
	return nil
}

// unindexed lists the collections (name, table) of a database that have
// no lookup index.
func unindexed(ctx context.Context, db *sql.DB) ([][2]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT c.name, c.table_name FROM _ferretdb_collections c
		WHERE NOT EXISTS (SELECT 1 FROM sqlite_master m WHERE m.type = 'index' AND m.name = ? || c.table_name)`, idIndexPrefix)
	if err != nil {
		return nil, fmt.Errorf("read the collections: %w", err)
	}
	defer rows.Close()
	var todo [][2]string
	for rows.Next() {
		var name, table string
		if err := rows.Scan(&name, &table); err != nil {
			return nil, fmt.Errorf("read the collections: %w", err)
		}
		todo = append(todo, [2]string{name, table})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the collections: %w", err)
	}
	return todo, nil
}

// due reports whether a file or table ("" for the file) may be tried:
// not failed, or failed long enough ago.
func (x *idIndexer) due(file, table string) bool {
	f, ok := x.failed[file+"\x00"+table]
	return !ok || time.Now().After(f.again)
}

// fail logs a failure, once for as long as it stays the same, and holds
// the file or table back until idIndexRetry has passed.
func (x *idIndexer) fail(file, table string, err error) {
	key := file + "\x00" + table
	if f, ok := x.failed[key]; !ok || f.err != err.Error() {
		x.log.Warn("cannot index the lookups by _id", "file", filepath.Base(file), "err", err)
	}
	x.failed[key] = failure{err: err.Error(), again: time.Now().Add(idIndexRetry)}
}
