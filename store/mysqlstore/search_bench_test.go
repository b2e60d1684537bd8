package mysqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

// EnvSearchBench asks BenchmarkSearchFirstPage to run: the number of rows
// to generate, such as 10000000. Generating 10 million rows takes minutes,
// so the benchmark is skipped unless asked:
//
//	SMSGW_SEARCH_BENCH=10000000 go test ./store/mysqlstore -run '^$' -bench SearchFirstPage -benchtime 20x -timeout 2h
//
// It needs MariaDB (its SEQUENCE engine makes the rows). The rows live in a
// database of their own, smsgw_search_bench, kept for the next run when
// SMSGW_SEARCH_BENCH_KEEP=1 (drop it by hand then), else dropped.
const EnvSearchBench = "SMSGW_SEARCH_BENCH"

// benchStart is the acceptance time of the first generated message; one
// message follows every 250 ms, so 10 million span about 29 days.
var benchStart = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) // fixed date: stored data queried by its own range; the store reads the clock only to stamp migrations

// BenchmarkSearchFirstPage measures the first page (100 messages) of the
// searches customers and operators make, on a table of generated messages:
// 30% of them are one big customer's ("big"), the rest spread over 997
// customers; 90% delivered, 7% undeliverable, 2% expired, 1% failed; four
// connectors, three senders. Each search's EXPLAIN is logged (-v).
func BenchmarkSearchFirstPage(b *testing.B) {
	rows, _ := strconv.Atoi(os.Getenv(EnvSearchBench))
	if rows <= 0 {
		b.Skipf("set %s to the number of rows to generate (such as 10000000) to run it", EnvSearchBench)
	}
	ctx := context.Background()
	s, db := benchDatabase(b, ctx, rows)

	mid := benchStart.Add(time.Duration(rows/2) * 250 * time.Millisecond)
	bigN := rows / 2 / 10 * 10 // a message of "big" in the middle
	deep, err := s.SearchMessages(ctx, smsgw.MessageQuery{CustomerID: "big", Until: mid, PageSize: 1})
	if err != nil || deep.NextPageToken == "" {
		b.Fatalf("a page token in the middle: %v %+v", err, deep)
	}
	for _, bc := range []struct {
		name string
		q    smsgw.MessageQuery
	}{
		{"customer", smsgw.MessageQuery{CustomerID: "big"}},
		{"small_customer", smsgw.MessageQuery{CustomerID: "c5"}},
		{"customer_status_rare", smsgw.MessageQuery{CustomerID: "big", Status: smsgw.StatusFailed}},
		{"customer_status_connector", smsgw.MessageQuery{CustomerID: "big", Status: smsgw.StatusFailed, ConnectorID: "sim-c"}},
		{"customer_destination", smsgw.MessageQuery{CustomerID: "big", To: benchDst(bigN)}},
		{"customer_sender", smsgw.MessageQuery{CustomerID: "big", From: "SHOP"}},
		{"customer_connector", smsgw.MessageQuery{CustomerID: "big", ConnectorID: "sim-b"}},
		{"customer_client_ref", smsgw.MessageQuery{CustomerID: "big", ClientRef: "ref-" + strconv.Itoa(bigN)}},
		{"customer_one_day", smsgw.MessageQuery{CustomerID: "big", Since: mid, Until: mid.Add(24 * time.Hour)}},
		{"customer_deep_page", smsgw.MessageQuery{CustomerID: "big", PageToken: deep.NextPageToken}},
		{"operator_all", smsgw.MessageQuery{}},
		{"operator_status_rare", smsgw.MessageQuery{Status: smsgw.StatusFailed}},
		{"operator_connector", smsgw.MessageQuery{ConnectorID: "sim-b"}},
		{"operator_destination", smsgw.MessageQuery{To: benchDst(12345)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			q := bc.q
			q.PageSize = 100
			logExplain(b, ctx, db, q)
			var total time.Duration
			for b.Loop() {
				start := time.Now()
				page, err := s.SearchMessages(ctx, q)
				total += time.Since(start)
				if err != nil || len(page.Messages) == 0 {
					b.Fatalf("search %+v: %v, %d messages", q, err, len(page.Messages))
				}
			}
			mean := total / time.Duration(b.N)
			b.ReportMetric(float64(mean.Microseconds())/1000, "ms/page")
			if mean > 200*time.Millisecond {
				b.Errorf("first page in %s on average, want under 200 ms", mean)
			}
		})
	}
}

// benchDst is the destination the generator gives message n.
func benchDst(n int) string { return fmt.Sprintf("+614%08d", n%1000003) }

// benchDatabase opens smsgw_search_bench with rows generated messages,
// generating them unless a kept database has them already.
func benchDatabase(b *testing.B, ctx context.Context, rows int) (*mysqlstore.Store, *sql.DB) {
	base := os.Getenv(testenv.EnvMySQLDSN)
	if base == "" {
		base = testenv.DefaultMySQLDSN
	}
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		b.Fatal(err)
	}
	cfg.DBName = ""
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	const name = "smsgw_search_bench"
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+name); err != nil {
		b.Fatal(err)
	}
	if os.Getenv("SMSGW_SEARCH_BENCH_KEEP") != "1" {
		b.Cleanup(func() { admin.ExecContext(context.Background(), "DROP DATABASE "+name) })
	}
	cfg.DBName, cfg.ParseTime, cfg.Loc = name, true, time.UTC
	s, err := mysqlstore.Open(ctx, cfg.FormatDSN())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })

	var have int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM messages").Scan(&have); err != nil {
		b.Fatal(err)
	}
	if have == rows {
		b.Logf("reusing %d generated messages in %s", rows, name)
		return s, db
	}
	if _, err := db.ExecContext(ctx, "TRUNCATE TABLE messages"); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	// The secondary indexes the migrations made are dropped for the load
	// and built again after it, by sorting: much faster than keeping ten
	// indexes up to date row by row, and the same indexes in the end.
	indexes := secondaryIndexes(b, ctx, db)
	for _, ix := range indexes {
		if _, err := db.ExecContext(ctx, "ALTER TABLE messages DROP INDEX "+ix.name); err != nil {
			b.Fatal(err)
		}
	}
	const chunk = 1000000
	for from := 0; from < rows; from += chunk {
		n := min(chunk, rows-from)
		// Message n: acceptance 250 ms after message n-1; "big" has 30%;
		// status, connector and customer vary independently.
		query := `INSERT INTO messages (id, customer_id, entry_point, src, dst, status, status_rank, connector_id, upstream_id,
			segments, encoding, client_ref, accepted_at, sent_at, done_at, updated_at)
		SELECT CONCAT('m', LPAD(n, 10, '0')),
			IF(n % 10 < 3, 'big', CONCAT('c', n % 997)),
			'rest',
			ELT(n % 3 + 1, 'ACME', 'SHOP', 'INFO'),
			CONCAT('+614', LPAD(n % 1000003, 8, '0')),
			ELT(st + 1, 'DELIVERED', 'UNDELIVERABLE', 'EXPIRED', 'FAILED'),
			3,
			ELT((n DIV 3) % 4 + 1, 'sim-a', 'sim-b', 'sim-c', 'sim-d'),
			CONCAT('up', n),
			1 + (n % 5 = 0),
			'GSM7',
			CONCAT('ref-', n),
			? + INTERVAL n * 250000 MICROSECOND,
			? + INTERVAL n * 250000 + 300000 MICROSECOND,
			? + INTERVAL n * 250000 + 5000000 MICROSECOND,
			? + INTERVAL n * 250000 + 5000000 MICROSECOND
		FROM (SELECT seq AS n,
			CASE WHEN (seq DIV 10) % 100 < 90 THEN 0 WHEN (seq DIV 10) % 100 < 97 THEN 1 WHEN (seq DIV 10) % 100 < 99 THEN 2 ELSE 3 END AS st
			FROM seq_` + strconv.Itoa(from) + `_to_` + strconv.Itoa(from+n-1) + `) g`
		if _, err := db.ExecContext(ctx, query, benchStart, benchStart, benchStart, benchStart); err != nil {
			b.Fatalf("generate messages %d to %d: %v", from, from+n-1, err)
		}
	}
	b.Logf("loaded %d messages in %s", rows, time.Since(start).Round(time.Second))
	var add []string
	for _, ix := range indexes {
		add = append(add, "ADD INDEX "+ix.name+" ("+strings.Join(ix.columns, ", ")+")")
	}
	if _, err := db.ExecContext(ctx, "ALTER TABLE messages "+strings.Join(add, ", ")); err != nil {
		b.Fatalf("build the indexes again: %v", err)
	}
	if _, err := db.ExecContext(ctx, "ANALYZE TABLE messages"); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d messages in %s", rows, time.Since(start).Round(time.Second))
	return s, db
}

// index is a secondary index of messages: its name and columns in order.
type index struct {
	name    string
	columns []string
}

// secondaryIndexes lists the indexes of messages other than the primary key.
func secondaryIndexes(b *testing.B, ctx context.Context, db *sql.DB) []index {
	rows, err := db.QueryContext(ctx, `SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'messages' AND INDEX_NAME <> 'PRIMARY'
		ORDER BY INDEX_NAME, SEQ_IN_INDEX`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var out []index
	for rows.Next() {
		var name, column string
		if err := rows.Scan(&name, &column); err != nil {
			b.Fatal(err)
		}
		if len(out) == 0 || out[len(out)-1].name != name {
			out = append(out, index{name: name})
		}
		out[len(out)-1].columns = append(out[len(out)-1].columns, column)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return out
}

// logExplain logs the plan of the query SearchMessages runs for q.
func logExplain(b *testing.B, ctx context.Context, db *sql.DB, q smsgw.MessageQuery) {
	query, args := mysqlstore.SearchSQL(q)
	rows, err := db.QueryContext(ctx, "EXPLAIN "+query, args...)
	if err != nil {
		b.Fatalf("EXPLAIN: %v", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			b.Fatal(err)
		}
		var line []string
		for i, c := range cols {
			if vals[i].Valid && (c == "table" || c == "type" || c == "key" || c == "key_len" || c == "ref" || c == "rows" || c == "Extra") {
				line = append(line, c+"="+vals[i].String)
			}
		}
		out = append(out, strings.Join(line, " "))
	}
	b.Logf("EXPLAIN: %s", strings.Join(out, "; "))
}
