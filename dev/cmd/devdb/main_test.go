package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// start runs devdb in the test process on free ports and returns the lines
// it printed. Closing stdin (at cleanup) stops it.
func start(t *testing.T, args ...string) map[string]string {
	t.Helper()
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	var stderr strings.Builder
	var mu sync.Mutex
	done := make(chan int, 1)
	go func() {
		code := run(append([]string{"-exit-on-eof"}, args...), stdinR, stdoutW, lockedWriter{&mu, &stderr})
		stdoutW.Close()
		done <- code
	}()
	t.Cleanup(func() {
		stdinW.Close()
		select {
		case code := <-done:
			if code != 0 {
				mu.Lock()
				t.Errorf("devdb exited with %d\n%s", code, stderr.String())
				mu.Unlock()
			}
		case <-time.After(15 * time.Second):
			t.Error("devdb did not stop when stdin closed")
		}
	})
	lines := map[string]string{}
	sc := bufio.NewScanner(stdoutR)
	want := 0
	for _, a := range args {
		if strings.HasPrefix(a, "127.0.0.1:") {
			want++
		}
	}
	for len(lines) < want && sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		lines[k] = v
	}
	go io.Copy(io.Discard, stdoutR) //nolint:errcheck
	if len(lines) < want {
		t.Fatalf("devdb printed %v", lines)
	}
	return lines
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestServesBothProtocols(t *testing.T) {
	lines := start(t, "-mongo-addr", "127.0.0.1:0", "-mysql-addr", "127.0.0.1:0", "-data", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	uri := lines["MONGODB_URI"]
	if !strings.HasPrefix(uri, "mongodb://127.0.0.1:") {
		t.Fatalf("MONGODB_URI=%q", uri)
	}
	client, err := mongo.Connect(ctx, options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	coll := client.Database("devdbtest").Collection("c")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}, {Key: "n", Value: 1}}); err != nil {
		t.Fatalf("insert: %v", err)
	}
	if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != 1 {
		t.Fatalf("count = %d, %v", n, err)
	}

	dsn := lines["MYSQL_DSN"]
	if !strings.HasPrefix(dsn, "root@tcp(127.0.0.1:") || !strings.HasSuffix(dsn, "/smsgw?parseTime=true&loc=UTC") {
		t.Fatalf("MYSQL_DSN=%q", dsn)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var now time.Time
	if err := db.QueryRowContext(ctx, "SELECT NOW(6)").Scan(&now); err != nil {
		t.Fatalf("select: %v", err)
	}
}

// TestConcurrentWritersLoseNothing is why serialHandler exists: without it
// the in-memory engine drops concurrent updates.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	lines := start(t, "-mongo-addr", "", "-mysql-addr", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, err := sql.Open("mysql", lines["MYSQL_DSN"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(8)
	if _, err := db.ExecContext(ctx, "CREATE TABLE counters (id INT PRIMARY KEY, n INT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO counters VALUES (1, 0), (2, 0)"); err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if _, err := db.ExecContext(ctx, "UPDATE counters SET n = n + 1 WHERE id = 1"); err != nil {
					errs <- err
				}
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					errs <- err
					continue
				}
				var n int
				if err := tx.QueryRowContext(ctx, "SELECT n FROM counters WHERE id = 2").Scan(&n); err != nil {
					errs <- err
				}
				if _, err := tx.ExecContext(ctx, "UPDATE counters SET n = ? WHERE id = 2", n+1); err != nil {
					errs <- err
				}
				if err := tx.Commit(); err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for id := 1; id <= 2; id++ {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT n FROM counters WHERE id = ?", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != workers*rounds {
			t.Errorf("counter %d = %d, want %d", id, n, workers*rounds)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-mongo-addr", "", "-mysql-addr", ""},
		{"-mysql-db", ""},
		{"extra"},
		{"-nope"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted bad flags", args)
		}
	}
}

func TestClassify(t *testing.T) {
	for q, want := range map[string]statementKind{
		"START TRANSACTION":           begin,
		"begin":                       begin,
		"COMMIT":                      end,
		"rollback":                    end,
		"ROLLBACK TO SAVEPOINT a":     plain,
		"SELECT GET_LOCK(?, ?)":       namedLock,
		"select release_lock('x')":    namedLock,
		"UPDATE t SET begin_at = 1":   plain,
		"  INSERT INTO t VALUES (1) ": plain,
	} {
		if got := classify(q); got != want {
			t.Errorf("classify(%q) = %d, want %d", q, got, want)
		}
	}
}

// Lookups by _id in the MongoDB-wire server use an index (idIndexer),
// except in the collections named by -id-index-skip, and a collection
// dropped and created again is indexed again.
func TestLookupsByIDUseAnIndex(t *testing.T) {
	dir := t.TempDir()
	lines := start(t, "-mongo-addr", "127.0.0.1:0", "-mysql-addr", "", "-data", dir, "-id-index-skip", "events")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client, err := mongo.Connect(ctx, options.Client().ApplyURI(lines["MONGODB_URI"]))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	db := client.Database("devdbtest")
	fill := func(coll string) {
		docs := make([]any, 500)
		for i := range docs {
			docs[i] = bson.D{{Key: "_id", Value: fmt.Sprintf("+4479%08d", i)}, {Key: "n", Value: i}}
		}
		if _, err := db.Collection(coll).InsertMany(ctx, docs); err != nil {
			t.Fatalf("insert into %s: %v", coll, err)
		}
	}
	fill("optouts")
	fill("events")

	lite, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "devdbtest.sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	// plan is how SQLite runs FerretDB's lookup by _id in a collection.
	plan := func(coll string) string {
		var table string
		if err := lite.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, coll).Scan(&table); err != nil {
			t.Fatalf("table of %s: %v", coll, err)
		}
		var id, parent, unused int
		var detail string
		q := fmt.Sprintf(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`, table)
		if err := lite.QueryRowContext(ctx, q, `"+447900000007"`).Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatalf("plan in %s: %v", coll, err)
		}
		return detail
	}
	waitIndexed := func(coll string) {
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(plan(coll), "USING INDEX") {
			if time.Now().After(deadline) {
				t.Fatalf("lookups by _id in %s: %s, want an index", coll, plan(coll))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitIndexed("optouts")
	// A collection made after the skipped one is indexed: the pass that
	// did so saw the skipped one too.
	fill("intents")
	waitIndexed("intents")
	if p := plan("events"); !strings.Contains(p, "SCAN") {
		t.Errorf("lookups by _id in events (skipped): %s, want no index of ours", p)
	}

	// The answers are the same through the index.
	var got bson.M
	if err := db.Collection("optouts").FindOne(ctx, bson.D{{Key: "_id", Value: "+447900000007"}}).Decode(&got); err != nil || got["n"] != int32(7) {
		t.Fatalf("find by _id = %v, %v", got, err)
	}
	if res, err := db.Collection("optouts").UpdateOne(ctx, bson.D{{Key: "_id", Value: "+447900000008"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 80}}}}); err != nil || res.ModifiedCount != 1 {
		t.Fatalf("update by _id = %+v, %v", res, err)
	}
	if _, err := db.Collection("optouts").InsertOne(ctx, bson.D{{Key: "_id", Value: "+447900000009"}}); !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("insert of an _id there already = %v, want a duplicate key error", err)
	}

	// Dropped and created again: indexed again.
	if err := db.Collection("optouts").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	fill("optouts")
	waitIndexed("optouts")
}
