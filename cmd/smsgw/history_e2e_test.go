package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/importer/sqlboxtest"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/mongostore"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

// TestHistoryEndToEnd runs `smsgw import` against a Kannel sqlbox database
// of its own in MariaDB beside a running gateway: interrupted and resumed,
// run again without change, its messages read back over REST. Then `smsgw
// erase` removes a number's imported and sent messages from both stores and
// Temporal, and the gateway's retention purge removes what is older than the
// retention the configuration is given while it runs.
func TestHistoryEndToEnd(t *testing.T) {
	g := startGatewayWith(t, "", gatewayExtras{flags: []string{"-retention-interval", "2s"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The old gateway's log: the fixture 400 days ago, 300 messages two days ago.
	old := time.Now().UTC().Add(-400 * 24 * time.Hour).Truncate(time.Minute)
	recent := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Minute)
	rows := append(sqlboxtest.Fixture(old), sqlboxtest.Generate(100, 300, recent)...)
	lastID := rows[len(rows)-1].SQLID
	sqlboxDSN := testenv.MySQLDSN(t)
	kannel, err := sql.Open("mysql", sqlboxDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer kannel.Close()
	if _, err := kannel.ExecContext(ctx, sqlboxtest.Schema); err != nil {
		t.Fatal(err)
	}
	if err := sqlboxtest.Insert(ctx, kannel, rows); err != nil {
		t.Fatal(err)
	}
	mapPath := filepath.Join(t.TempDir(), "accounts")
	if err := os.WriteFile(mapPath, []byte("# Kannel account  smsgw customer\nacme acme\nsvc  other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stores := []string{"-config", g.cfgPath, "-temporal-address", g.temporal, "-mongodb-uri", g.mongoURI,
		"-mongodb-database", g.mongoDB, "-mysql-dsn", g.mysqlDSN, "-log-level", "warn"}
	stores = append(stores, g.keys.flags()...)
	importArgs := append([]string{"import", "-sqlbox-dsn", sqlboxDSN, "-customer-map", mapPath, "-progress", "lines"}, stores...)
	smsgwCmd := func(ctx context.Context, args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(ctx, args, func(string) string { return "" }, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	events, err := mongostore.Open(ctx, g.mongoURI, g.mongoDB)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close(context.Background())
	reports, err := mysqlstore.Open(ctx, g.mysqlDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer reports.Close()

	// Interrupted part way (as by Ctrl-C), then resumed from its checkpoint.
	runCtx, interrupt := context.WithCancel(ctx)
	done := make(chan int, 1)
	var firstOut string
	go func() {
		code, out, _ := smsgwCmd(runCtx, append(importArgs, "-batch", "10")...)
		firstOut = out
		done <- code
	}()
	var cp int64
	for cp == 0 {
		time.Sleep(5 * time.Millisecond)
		if cp, err = events.ImportCheckpoint(ctx, "kannel"); err != nil {
			t.Fatal(err)
		}
	}
	interrupt()
	if code := <-done; code == 0 {
		t.Fatalf("the interrupted import exited 0: %s", firstOut)
	}
	if cp, err = events.ImportCheckpoint(ctx, "kannel"); err != nil || cp <= 0 || cp >= lastID {
		t.Fatalf("checkpoint after the interruption %d (%v), want between 0 and %d", cp, err, lastID)
	}
	code, out, errOut := smsgwCmd(ctx, importArgs...)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("checkpoint %d", lastID)) || !strings.Contains(errOut, "progress: ") ||
		!strings.Contains(errOut, "sent_sms has no index on foreign_id, dlr_url") || !strings.Contains(out, " a second)") {
		t.Fatalf("resumed import: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("interrupted at %d of %d; resumed:\n%s", cp, lastID, out)
	page, err := reports.SearchMessages(ctx, smsgw.MessageQuery{PageSize: 1000})
	list := page.Messages
	if err != nil || len(list) != 305 {
		t.Fatalf("%d reporting rows after the import, want 305: %v", len(list), err)
	}

	// Again: nothing to do. Again from the start: the same counts, and the
	// stores unchanged.
	code, out, errOut = smsgwCmd(ctx, importArgs...)
	if code != 0 || !strings.Contains(out, "imported 0 messages, updated 0 from delivery reports, skipped 0, refused 0") {
		t.Fatalf("second import: exit %d\n%s\n%s", code, out, errOut)
	}
	before := historySnapshot(t, ctx, g.mysqlDSN, g.mongoURI, g.mongoDB)
	code, out, errOut = smsgwCmd(ctx, append(importArgs, "-restart")...)
	if code != 0 || !strings.Contains(out, "imported 305 messages") || !strings.Contains(out, "refused 2") ||
		!strings.Contains(out, `refused: no customer for account "legacy-reseller" (1)`) || !strings.Contains(out, "skipped: DLR matches no MT (1)") {
		t.Fatalf("import from the start: exit %d\n%s\n%s", code, out, errOut)
	}
	if after := historySnapshot(t, ctx, g.mysqlDSN, g.mongoURI, g.mongoDB); after != before {
		t.Errorf("importing again changed the stores")
	}
	t.Logf("import from the start:\n%s", out)

	// Read back over REST, as any message; no workflow was started.
	code, msg := g.do(t, "GET", "/v1/messages/kannel-1", "acme-key", "")
	if code != 200 || statusName(msg["status"]) != "DELIVERED" || msg["to"] != "+61412345001" || msg["from"] != "ACME" || msg["doneAt"] == nil {
		t.Errorf("GET kannel-1: %d %v", code, msg)
	}
	code, msg = g.do(t, "GET", "/v1/messages/kannel-4", "acme-key", "")
	if code != 200 || statusName(msg["status"]) != "UNDELIVERABLE" || msg["encoding"] != "UCS2" || msg["errorCode"] != "001" {
		t.Errorf("GET kannel-4: %d %v", code, msg)
	}
	if code, msg = g.do(t, "GET", "/v1/messages/kannel-13", "other-key", ""); code != 200 || statusName(msg["status"]) != "EXPIRED" {
		t.Errorf("GET kannel-13 as other: %d %v", code, msg)
	}
	if code, _ = g.do(t, "GET", "/v1/messages/kannel-13", "acme-key", ""); code != 404 {
		t.Errorf("GET another customer's imported message: %d", code)
	}
	if code, _ = g.do(t, "GET", "/v1/messages/kannel-9", "acme-key", ""); code != 404 {
		t.Errorf("GET a refused row: %d", code)
	}
	tc, err := client.DialContext(ctx, client.Options{HostPort: g.temporal})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if _, err := tc.DescribeWorkflowExecution(ctx, "kannel-1", ""); !isNotFound(err) {
		t.Errorf("an imported message has a workflow: %v", err)
	}

	// Erasure: the number's imported messages, one the gateway delivered
	// and one scheduled for later (its workflow still running).
	submit := func(body string) string {
		code, acc := g.do(t, "POST", "/v1/messages", "acme-key", body)
		if code != http.StatusAccepted {
			t.Fatalf("submit %s: %d %v", body, code, acc)
		}
		return acc["id"].(string)
	}
	sentID := submit(`{"from":"ACME","to":"+61412345001","text":"Fresh one"}`)
	keepID := submit(`{"from":"ACME","to":"+61412345678","text":"Another number"}`)
	scheduledID := submit(fmt.Sprintf(`{"from":"ACME","to":"+61412345001","text":"Later","scheduleAt":%q}`,
		time.Now().Add(time.Hour).UTC().Format(time.RFC3339)))
	g.hook.waitFor(t, sentID, 30*time.Second)
	g.hook.waitFor(t, keepID, 30*time.Second)
	waitClosed(t, ctx, tc, sentID)

	eraseArgs := append([]string{"erase"}, stores...)
	code, out, errOut = smsgwCmd(ctx, append(eraseArgs, "+61412345001")...)
	if code == 0 || !strings.Contains(errOut, "still running") {
		t.Fatalf("erasure with a scheduled message: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _ = g.do(t, "GET", "/v1/messages/kannel-1", "acme-key", ""); code != 200 {
		t.Fatalf("the refused erasure removed kannel-1: %d", code)
	}
	code, out, errOut = smsgwCmd(ctx, append(eraseArgs, "-terminate", "-requested-by", "dpo@example.com", "-reason", "ticket 42", "+61412345001")...)
	if code != 0 || !strings.Contains(out, "4 messages, 2 workflow executions deleted (1 terminated first)") ||
		!strings.Contains(out, "reporting/messages") {
		t.Fatalf("erasure: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("erasure:\n%s", out)
	for _, id := range []string{"kannel-1", "kannel-11", sentID, scheduledID} {
		if code, _ := g.do(t, "GET", "/v1/messages/"+id, "acme-key", ""); code != 404 {
			t.Errorf("GET %s after the erasure: %d", id, code)
		}
		if _, err := reports.GetMessage(ctx, id); smsgw.ErrorCode(err) != smsgw.ENOTFOUND {
			t.Errorf("reporting row %s after the erasure: %v", id, err)
		}
		if evs, err := events.Events(ctx, id); err != nil || len(evs) != 0 {
			t.Errorf("events of %s after the erasure: %d %v", id, len(evs), err)
		}
	}
	waitNoWorkflow(t, ctx, tc, sentID)
	waitNoWorkflow(t, ctx, tc, scheduledID)
	if code, msg := g.do(t, "GET", "/v1/messages/"+keepID, "acme-key", ""); code != 200 || statusName(msg["status"]) != "DELIVERED" {
		t.Errorf("the other number's message after the erasure: %d %v", code, msg)
	}
	if _, err := tc.DescribeWorkflowExecution(ctx, keepID, ""); err != nil {
		t.Errorf("the other number's workflow after the erasure: %v", err)
	}
	if audits, err := events.Erasures(ctx, smsgw.NumberHash("+61412345001")); err != nil || len(audits) != 2 || audits[0].Error == "" ||
		audits[1].Messages != 4 || audits[1].RequestedBy != "dpo@example.com" || audits[1].Error != "" {
		t.Errorf("audit records %+v %v", audits, err)
	}

	// Retention: a year by default from now on; the running gateway's
	// purge removes the 400-day-old imports, and nothing newer.
	cfg := g.cfg + "\nretention:\n  defaultDays: 365\n"
	if err := os.WriteFile(g.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err4 := reports.GetMessage(ctx, "kannel-4")
		_, err13 := reports.GetMessage(ctx, "kannel-13")
		if smsgw.ErrorCode(err4) == smsgw.ENOTFOUND && smsgw.ErrorCode(err13) == smsgw.ENOTFOUND {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old imports not purged: %v %v\n%s", err4, err13, g.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if evs, err := events.Events(ctx, "kannel-4"); err != nil || len(evs) != 0 {
		t.Errorf("events of a purged message: %d %v", len(evs), err)
	}
	if page, err = reports.SearchMessages(ctx, smsgw.MessageQuery{PageSize: 1000}); err != nil || len(page.Messages) != 301 {
		list = page.Messages
		t.Errorf("%d rows left after the purge, want the 300 recent imports and the other number's message: %v", len(list), err)
	}
	if evs, err := events.Events(ctx, "kannel-100"); err != nil || len(evs) == 0 {
		t.Errorf("events of a recent import after the purge: %d %v", len(evs), err)
	}
	resp, err := http.Get(g.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `smsgw_retention_purged_total{store="reporting"} 3`) {
		t.Errorf("metrics lack the purged rows:\n%s", grepLines(string(body), "smsgw_retention"))
	}
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

func waitClosed(t *testing.T, ctx context.Context, tc client.Client, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		d, err := tc.DescribeWorkflowExecution(ctx, id, "")
		if err == nil && d.GetWorkflowExecutionInfo().GetCloseTime() != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("workflow %s did not close", id)
}

func waitNoWorkflow(t *testing.T, ctx context.Context, tc client.Client, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := tc.DescribeWorkflowExecution(ctx, id, ""); isNotFound(err) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("workflow %s still exists after the erasure", id)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// historySnapshot is every reporting row, daily count and event, to compare
// before and after an import run again.
func historySnapshot(t *testing.T, ctx context.Context, dsn, mongoURI, mongoDB string) string {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	rows, err := db.QueryContext(ctx, "SELECT CONCAT_WS('|', id, customer_id, src, dst, status, connector_id, upstream_id, segments, encoding, error_code, error_text, accepted_at, sent_at, done_at, updated_at, counted_status) FROM messages ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		b.WriteString(line + "\n")
	}
	rows.Close()
	var stats string
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(GROUP_CONCAT(CONCAT_WS('|', day, customer_id, connector_id, status, `count`) ORDER BY day, customer_id, connector_id, status), '') FROM daily_stats").Scan(&stats); err != nil {
		t.Fatal(err)
	}
	b.WriteString(stats + "\n")
	// Every event in one query: FerretDB reads the whole collection for
	// each query.
	mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Disconnect(context.WithoutCancel(ctx))
	cur, err := mc.Database(mongoDB).Collection(mongostore.EventsCollection).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var evs []smsgw.Event
	if err := cur.All(ctx, &evs); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		fmt.Fprintf(&b, "%s %s %d %s %v\n", e.ID, e.CustomerID, e.Seq, e.At.UTC().Format(time.RFC3339Nano), e.Data)
	}
	return b.String()
}
