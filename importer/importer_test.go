package importer_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/importer"
	"github.com/smsgw/smsgw/importer/sqlboxtest"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/mongostore"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

var t0 = time.Date(2024, 3, 5, 9, 30, 30, 0, time.UTC) // receipts give done dates to the minute: some fall before their MT

type stores struct {
	events  *mongostore.Store
	reports *mysqlstore.Store
	dsn     string
}

func (s stores) AppendEvents(ctx context.Context, evs ...smsgw.Event) error {
	return s.events.AppendEvents(ctx, evs...)
}

func (s stores) UpsertMessage(ctx context.Context, r smsgw.MessageRecord) error {
	return s.reports.UpsertMessage(ctx, r)
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func openStores(t *testing.T, mongoURI string) stores {
	t.Helper()
	ctx := ctxFor(t)
	ev, err := mongostore.Open(ctx, mongoURI, testenv.MongoDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close(context.Background()) })
	dsn := testenv.MySQLDSN(t)
	rep, err := mysqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rep.Close() })
	return stores{ev, rep, dsn}
}

// sqlbox makes a database holding a sent_sms table with rows.
func sqlbox(t *testing.T, rows []sqlboxtest.Row) (*sql.DB, *importer.SQLBox) {
	t.Helper()
	ctx := ctxFor(t)
	dsn := testenv.MySQLDSN(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.ExecContext(ctx, sqlboxtest.Schema); err != nil {
		t.Fatal(err)
	}
	if err := sqlboxtest.Insert(ctx, db, rows); err != nil {
		t.Fatal(err)
	}
	src, err := importer.OpenSQLBox(ctx, dsn, "", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return db, src
}

var accounts = map[string]string{"acme": "acme", "svc": "other"}

func mapAccounts(a string) (string, bool) { c, ok := accounts[a]; return c, ok }

// snapshot is every reporting row and event the stores hold, to compare
// before and after a second import.
func snapshot(t *testing.T, s stores) string {
	t.Helper()
	ctx := ctxFor(t)
	db, err := sql.Open("mysql", s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT id, customer_id, src, dst, status, connector_id, upstream_id, segments, encoding, error_code, error_text, accepted_at, sent_at, done_at, updated_at, counted_status FROM messages ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	var ids []string
	for rows.Next() {
		vals := make([]sql.NullString, 16)
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, vals[0].String)
		fmt.Fprintln(&b, vals)
	}
	var stats string
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(GROUP_CONCAT(CONCAT(day, customer_id, connector_id, status, `count`) ORDER BY day, customer_id, connector_id, status), '') FROM daily_stats").Scan(&stats); err != nil {
		t.Fatal(err)
	}
	b.WriteString(stats)
	for _, id := range ids {
		evs, err := s.events.Events(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			fmt.Fprintf(&b, "%s %s %d %s %v\n", e.ID, e.CustomerID, e.Seq, e.At.UTC().Format(time.RFC3339Nano), e.Data)
		}
	}
	return b.String()
}

func TestSQLBoxFixtureImportsOnceWithFinalStatuses(t *testing.T) {
	s := openStores(t, testenv.MongoURI(t))
	db, src := sqlbox(t, sqlboxtest.Fixture(t0))
	ctx := ctxFor(t)
	if missing, err := src.UnindexedColumns(ctx); err != nil || strings.Join(missing, ",") != "foreign_id,dlr_url" {
		t.Errorf("unindexed columns of sqlbox's table: %v %v", missing, err)
	}
	if _, err := db.ExecContext(ctx, "ALTER TABLE sent_sms ADD INDEX (dlr_url), ADD INDEX (foreign_id, smsc_id)"); err != nil {
		t.Fatal(err)
	}
	if missing, err := src.UnindexedColumns(ctx); err != nil || len(missing) != 0 {
		t.Errorf("unindexed columns after adding indexes: %v %v", missing, err)
	}

	sum, err := importer.Run(ctx, src, s, s.events, importer.Options{Customer: mapAccounts, BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != 5 || sum.Updated != 5 || sum.SkippedTotal() != 2 || sum.RefusedTotal() != 2 || sum.Position != sqlboxtest.FixtureRows {
		t.Fatalf("summary %+v", sum)
	}
	wantRefused := map[string]int64{`no customer for account "legacy-reseller"`: 1, "invalid destination number": 1}
	wantSkipped := map[string]int64{"MO message (only sent messages are imported)": 1, "DLR matches no MT": 1}
	if !reflect.DeepEqual(sum.Refused, wantRefused) || !reflect.DeepEqual(sum.Skipped, wantSkipped) {
		t.Errorf("refused %v skipped %v", sum.Refused, sum.Skipped)
	}

	want := map[int]struct {
		customer, to string
		status       smsgw.Status
		encoding     string
		upstream     string
		errCode      string
	}{
		sqlboxtest.DeliveredMT: {"acme", "+61412345001", smsgw.StatusDelivered, "GSM7", "5f1a0001", ""},
		sqlboxtest.UnicodeMT:   {"acme", "+61412345002", smsgw.StatusUndeliverable, "UCS2", "77002", "001"},
		sqlboxtest.NoDLRMT:     {"acme", "+61412345003", smsgw.StatusSent, "UCS2", "", ""},
		sqlboxtest.RejectedMT:  {"acme", "+61412345001", smsgw.StatusRejected, "GSM7", "", ""},
		sqlboxtest.Latin1MT:    {"other", "+61412345004", smsgw.StatusExpired, "UCS2", "77004", "027"},
	}
	for id, w := range want {
		rec, err := s.reports.GetMessage(ctx, fmt.Sprintf("kannel-%d", id))
		if err != nil {
			t.Fatalf("MT %d: %v", id, err)
		}
		if rec.CustomerID != w.customer || rec.To != w.to || rec.Status != w.status || rec.Encoding != w.encoding ||
			rec.UpstreamID != w.upstream || rec.ErrorCode != w.errCode || rec.EntryPoint != smsgw.EntryImport || rec.Segments != 1 {
			t.Errorf("MT %d: row %+v, want %+v", id, rec, w)
		}
		if !rec.AcceptedAt.Equal(t0.Add(time.Duration(map[int]int{1: 0, 4: 10, 6: 20, 11: 50, 13: 60}[id]) * time.Second)) {
			t.Errorf("MT %d accepted at %s", id, rec.AcceptedAt)
		}
		if w.status.Final() != (rec.DoneAt != nil) || rec.DoneAt != nil && rec.DoneAt.Before(rec.AcceptedAt) {
			t.Errorf("MT %d: done at %v with status %s, accepted at %s", id, rec.DoneAt, rec.Status, rec.AcceptedAt)
		}
	}
	for _, id := range []int{sqlboxtest.UnknownAcctMT, sqlboxtest.NationalMT, sqlboxtest.MORow} {
		if _, err := s.reports.GetMessage(ctx, fmt.Sprintf("kannel-%d", id)); smsgw.ErrorCode(err) != smsgw.ENOTFOUND {
			t.Errorf("row %d was imported: %v", id, err)
		}
	}
	evs, err := s.events.Events(ctx, "kannel-1")
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		types = append(types, e.Type+":"+fmt.Sprint(e.Data["stat"]))
	}
	if got := strings.Join(types, ","); got != "accepted:<nil>,sent:<nil>,receipt:SMSC_ACK,receipt:DELIVRD,final:<nil>" {
		t.Errorf("events of kannel-1: %s", got)
	}

	// Again from the checkpoint: nothing to do. Again from the start:
	// the stores do not change.
	before := snapshot(t, s)
	again, err := importer.Run(ctx, src, s, s.events, importer.Options{Customer: mapAccounts})
	if err != nil || again.Imported+again.Updated+again.SkippedTotal()+again.RefusedTotal() != 0 || again.Position != sqlboxtest.FixtureRows {
		t.Fatalf("second run: %+v %v", again, err)
	}
	restart, err := importer.Run(ctx, src, s, s.events, importer.Options{Customer: mapAccounts, Restart: true})
	if err != nil || restart.Imported != 5 {
		t.Fatalf("restarted run: %+v %v", restart, err)
	}
	if after := snapshot(t, s); after != before {
		t.Errorf("importing again changed the stores:\nbefore\n%s\nafter\n%s", before, after)
	}
}

func TestSQLBoxImportResumesAfterInterruption(t *testing.T) {
	s := openStores(t, testenv.MongoURI(t))
	rows := sqlboxtest.Generate(1, 120, t0)
	_, src := sqlbox(t, rows)
	ctx, cancel := context.WithCancel(ctxFor(t))
	batches := 0
	sum, err := importer.Run(ctx, src, s, s.events, importer.Options{Customer: mapAccounts, BatchSize: 50, Progress: func(p importer.Progress) {
		if batches++; batches == 2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %+v %v", sum, err)
	}
	cp, err := s.events.ImportCheckpoint(ctxFor(t), "kannel")
	if err != nil || cp != 100 {
		t.Fatalf("checkpoint %d %v, want 100 (two batches)", cp, err)
	}
	rest, err := importer.Run(ctxFor(t), src, s, s.events, importer.Options{Customer: mapAccounts, BatchSize: 50})
	if err != nil || rest.Position != int64(len(rows)) {
		t.Fatalf("resumed run: %+v %v", rest, err)
	}
	page, err := s.reports.SearchMessages(ctxFor(t), smsgw.MessageQuery{CustomerID: "acme", PageSize: 1000})
	list := page.Messages
	if err != nil || len(list) != 120 {
		t.Fatalf("%d rows after resuming, want 120: %v", len(list), err)
	}
	counts := map[smsgw.Status]int{}
	for _, r := range list {
		counts[r.Status]++
	}
	// Every eleventh has no DLR, every seventh of the rest is UNDELIV.
	wantSent, wantUndeliv := 0, 0
	for i := range 120 {
		switch {
		case i%11 == 10:
			wantSent++
		case i%7 == 6:
			wantUndeliv++
		}
	}
	if counts[smsgw.StatusSent] != wantSent || counts[smsgw.StatusUndeliverable] != wantUndeliv || counts[smsgw.StatusDelivered] != 120-wantSent-wantUndeliv {
		t.Errorf("statuses %v", counts)
	}
}

func TestSQLBoxFollowPicksUpNewRowsAndLateDLRs(t *testing.T) {
	s := openStores(t, testenv.MongoURI(t))
	rows := sqlboxtest.Generate(1, 1, t0)
	db, src := sqlbox(t, rows[:1]) // the MT alone
	ctx, cancel := context.WithCancel(ctxFor(t))
	done := make(chan importer.Summary, 1)
	go func() {
		sum, _ := importer.Run(ctx, src, s, s.events, importer.Options{Customer: mapAccounts, Follow: true, PollInterval: 50 * time.Millisecond})
		done <- sum
	}()
	waitStatus := func(want smsgw.Status) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if r, err := s.reports.GetMessage(ctxFor(t), "kannel-1"); err == nil && r.Status == want {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("kannel-1 never became %s", want)
	}
	waitStatus(smsgw.StatusSent)
	if err := sqlboxtest.Insert(ctxFor(t), db, rows[1:]); err != nil {
		t.Fatal(err)
	}
	waitStatus(smsgw.StatusDelivered)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if cp, err := s.events.ImportCheckpoint(ctxFor(t), "kannel"); err == nil && cp == 3 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("checkpoint %d %v, want 3", cp, err)
		}
	}
	cancel()
	sum := <-done
	if sum.Imported != 1 || sum.Updated != 2 || sum.Position != 3 {
		t.Errorf("follow summary %+v", sum)
	}
}

func TestJSONLinesImport(t *testing.T) {
	s := openStores(t, testenv.MongoURI(t))
	path := filepath.Join(t.TempDir(), "history.jsonl")
	lines := []string{
		`{"id":"m1","customer":"acme","from":"ACME","to":"+61412345678","text":"Hello","submittedAt":"2024-01-02T03:04:05Z","status":"DELIVERED","doneAt":"2024-01-02T03:04:09Z","connector":"old-smsc","upstreamId":"u1"}`,
		`{"id":"m2","account":"svc","from":"SVC","to":"61412345679","text":"Grüße 👋","encoding":"UCS2","submittedAt":"2024-01-02T03:05:00Z","status":"undeliverable","errorCode":"001"}`,
		``,
		`{"id":"m3","account":"nobody","from":"X","to":"+61412345670","submittedAt":"2024-01-02T03:06:00Z"}`,
		`{"id":"m4","customer":"acme","from":"X","to":"+61412345670","submittedAt":"2024-01-02T03:06:00Z","colour":"red"}`,
		`{"id":"bad id!","customer":"acme","from":"X","to":"+61412345670","submittedAt":"2024-01-02T03:06:00Z"}`,
		`{"id":"m6","customer":"acme","from":"X","to":"+61412345670","submittedAt":"2024-01-02T03:06:00Z","status":"LOST"}`,
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := importer.OpenJSONLines(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := ctxFor(t)
	sum, err := importer.Run(ctx, src, s, s.events, importer.Options{Customer: mapAccounts, BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	wantRefused := map[string]int64{`no customer for account "nobody"`: 1, `unknown field "colour"`: 1,
		"key is not 1 to 39 letters, digits, '-' or '_'": 1, `unknown status "LOST"`: 1}
	if sum.Imported != 2 || !reflect.DeepEqual(sum.Refused, wantRefused) || sum.Skipped["blank line"] != 1 || sum.Position != 7 {
		t.Fatalf("summary %+v", sum)
	}
	m1, err := s.reports.GetMessage(ctx, "jsonl-m1")
	if err != nil || m1.Status != smsgw.StatusDelivered || m1.CustomerID != "acme" || m1.DoneAt == nil || m1.ConnectorID != "old-smsc" {
		t.Errorf("m1: %+v %v", m1, err)
	}
	m2, err := s.reports.GetMessage(ctx, "jsonl-m2")
	if err != nil || m2.Status != smsgw.StatusUndeliverable || m2.CustomerID != "other" || m2.To != "+61412345679" || m2.Encoding != "UCS2" || m2.ErrorCode != "001" {
		t.Errorf("m2: %+v %v", m2, err)
	}
	// Lines appended later are read from the checkpoint on.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, `{"id":"m8","customer":"acme","from":"ACME","to":"+61412345678","text":"Later","submittedAt":"2024-01-03T00:00:00Z"}`)
	f.Close()
	more, err := importer.Run(ctx, src, s, s.events, importer.Options{Customer: mapAccounts})
	if err != nil || more.Imported != 1 || more.Position != 8 {
		t.Fatalf("appended line: %+v %v", more, err)
	}
}
