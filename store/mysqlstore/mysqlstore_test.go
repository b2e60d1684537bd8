package mysqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/groupcommit"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

func open(t *testing.T) (*mysqlstore.Store, string) {
	t.Helper()
	dsn := testenv.MySQLDSN(t)
	s, err := mysqlstore.Open(ctx(t), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dsn
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// fixed date: every record below sets UpdatedAt, so UpsertMessage never falls back to time.Now; days and ranges come from t0
var t0 = time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC)

func ptr(t time.Time) *time.Time { return &t }

func accepted(id string) smsgw.MessageRecord {
	return smsgw.MessageRecord{
		ID: id, CustomerID: "c1", EntryPoint: smsgw.EntryREST, From: "ACME", To: "+61412345678",
		Status: smsgw.StatusAccepted, AcceptedAt: t0, UpdatedAt: t0,
	}
}

func sent(id, connector string, at time.Time) smsgw.MessageRecord {
	return smsgw.MessageRecord{
		ID: id, Status: smsgw.StatusSent, ConnectorID: connector, UpstreamID: "up-" + id,
		Segments: 2, Encoding: "GSM7", SentAt: ptr(at), UpdatedAt: at,
	}
}

func final(id string, st smsgw.Status, at time.Time) smsgw.MessageRecord {
	return smsgw.MessageRecord{ID: id, Status: st, DoneAt: ptr(at), UpdatedAt: at}
}

func get(t *testing.T, s *mysqlstore.Store, id string) smsgw.MessageRecord {
	t.Helper()
	r, err := s.GetMessage(ctx(t), id)
	if err != nil {
		t.Fatalf("GetMessage(%s): %v", id, err)
	}
	return r
}

func upsert(t *testing.T, s *mysqlstore.Store, recs ...smsgw.MessageRecord) {
	t.Helper()
	for _, r := range recs {
		if err := s.UpsertMessage(ctx(t), r); err != nil {
			t.Fatalf("UpsertMessage(%s %s): %v", r.ID, r.Status, err)
		}
	}
}

func TestUpsertInsertsAndReadsBack(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	upsert(t, s, accepted("m1"))
	got := get(t, s, "m1")
	want := accepted("m1")
	if got.ID != want.ID || got.CustomerID != "c1" || got.EntryPoint != smsgw.EntryREST || got.From != "ACME" ||
		got.To != want.To || got.Status != smsgw.StatusAccepted || got.SentAt != nil || got.DoneAt != nil {
		t.Errorf("got %+v", got)
	}
	if !got.AcceptedAt.Equal(t0) || got.AcceptedAt.Location() != time.UTC {
		t.Errorf("accepted at %v, want %v in UTC (microseconds kept)", got.AcceptedAt, t0)
	}
}

func TestUpsertNeverMovesBackwards(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	sentAt, doneAt := t0.Add(time.Second), t0.Add(time.Minute)
	upsert(t, s, accepted("m1"), sent("m1", "upA", sentAt), final("m1", smsgw.StatusDelivered, doneAt))
	// Late retries of earlier steps, and a second final status.
	late := sent("m1", "upB", sentAt.Add(time.Hour))
	upsert(t, s, late, accepted("m1"), final("m1", smsgw.StatusExpired, doneAt.Add(time.Hour)))

	got := get(t, s, "m1")
	if got.Status != smsgw.StatusDelivered {
		t.Errorf("status %s, want DELIVERED", got.Status)
	}
	if got.SentAt == nil || !got.SentAt.Equal(sentAt) {
		t.Errorf("sent at %v, want the first %v", got.SentAt, sentAt)
	}
	if got.DoneAt == nil || !got.DoneAt.Equal(doneAt) {
		t.Errorf("done at %v, want the first %v", got.DoneAt, doneAt)
	}
	if got.ConnectorID != "upA" || got.UpstreamID != "up-m1" || got.Segments != 2 || got.Encoding != "GSM7" {
		t.Errorf("route fields = %q %q %d %q, want upA up-m1 2 GSM7 (a late SENT must not overwrite them)",
			got.ConnectorID, got.UpstreamID, got.Segments, got.Encoding)
	}
	if got.CustomerID != "c1" || !got.AcceptedAt.Equal(t0) {
		t.Errorf("customer/accepted = %q %v", got.CustomerID, got.AcceptedAt)
	}
	if !got.UpdatedAt.Equal(doneAt.Add(time.Hour)) {
		t.Errorf("updated at %v, want the latest %v", got.UpdatedAt, doneAt.Add(time.Hour))
	}
}

func TestUpsertFillsInOutOfOrder(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	// The SENT update lands before the ACCEPTED row.
	upsert(t, s, sent("m1", "upA", t0.Add(time.Second)))
	if got := get(t, s, "m1"); got.Status != smsgw.StatusSent || got.CustomerID != "" || !got.AcceptedAt.IsZero() {
		t.Fatalf("after SENT alone: %+v", got)
	}
	upsert(t, s, accepted("m1"))
	got := get(t, s, "m1")
	if got.Status != smsgw.StatusSent || got.CustomerID != "c1" || got.To != "+61412345678" || !got.AcceptedAt.Equal(t0) || got.ConnectorID != "upA" {
		t.Errorf("after ACCEPTED: %+v", got)
	}
	// A failover: the same status again from another connector takes over.
	upsert(t, s, sent("m1", "upB", t0.Add(time.Minute)))
	if got := get(t, s, "m1"); got.ConnectorID != "upB" {
		t.Errorf("connector %q after failover, want upB", got.ConnectorID)
	}
	// An error fills in with the final status.
	rej := final("m1", smsgw.StatusRejected, t0.Add(2*time.Minute))
	rej.ErrorCode, rej.ErrorText = "0x0000000b", "invalid destination"
	upsert(t, s, rej)
	if got := get(t, s, "m1"); got.Status != smsgw.StatusRejected || got.ErrorCode != "0x0000000b" || got.ErrorText != "invalid destination" {
		t.Errorf("after REJECTED: %+v", got)
	}
}

// The client reference is kept from the row that has it, whichever update
// lands first, and bounded by its column.
func TestClientRefIsKept(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	withRef := accepted("m1")
	withRef.ClientRef = "Bestellung 7 ✓"
	upsert(t, s, sent("m1", "upA", t0.Add(time.Second)), withRef, final("m1", smsgw.StatusDelivered, t0.Add(time.Minute)))
	if got := get(t, s, "m1"); got.ClientRef != "Bestellung 7 ✓" || got.Status != smsgw.StatusDelivered {
		t.Errorf("clientRef %q, status %s; want the reference kept through later updates", got.ClientRef, got.Status)
	}
	long := accepted("m2")
	long.ClientRef = strings.Repeat("r", 65)
	if err := s.UpsertMessage(ctx(t), long); smsgw.ErrorCode(err) != smsgw.EINVALID {
		t.Errorf("a 65-character clientRef: %v, want %s", err, smsgw.EINVALID)
	}
}

func TestUpsertRejectsBadRecords(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	long := sent("m1", "upA", t0)
	long.UpstreamID = strings.Repeat("9", 129)
	for _, r := range []smsgw.MessageRecord{{Status: smsgw.StatusSent}, {ID: "m1", Status: "LOST"}, long} {
		if err := s.UpsertMessage(ctx(t), r); smsgw.ErrorCode(err) != smsgw.EINVALID {
			t.Errorf("UpsertMessage(%.80v) = %v, want %s", r, err, smsgw.EINVALID)
		}
	}
}

func TestGetMessageNotFound(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	_, err := s.GetMessage(ctx(t), "nope")
	if smsgw.ErrorCode(err) != smsgw.ENOTFOUND {
		t.Fatalf("GetMessage of an unknown ID = %v, want %s", err, smsgw.ENOTFOUND)
	}
}

func TestListMessages(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	for i := range 6 {
		r := accepted(fmt.Sprintf("m%d", i))
		r.AcceptedAt = t0.Add(time.Duration(i) * time.Hour)
		if i%2 == 1 {
			r.CustomerID = "c2"
		}
		if i == 4 {
			r.To = "+4915112345678"
		}
		upsert(t, s, r)
	}
	upsert(t, s, final("m2", smsgw.StatusDelivered, t0.Add(3*time.Hour)))

	ids := func(f mysqlstore.Filter) string {
		t.Helper()
		rs, err := s.ListMessages(ctx(t), f)
		if err != nil {
			t.Fatalf("ListMessages(%+v): %v", f, err)
		}
		out := ""
		for _, r := range rs {
			out += r.ID + " "
		}
		return out
	}
	for _, tc := range []struct {
		f    mysqlstore.Filter
		want string
	}{
		{mysqlstore.Filter{}, "m5 m4 m3 m2 m1 m0 "},
		{mysqlstore.Filter{CustomerID: "c1"}, "m4 m2 m0 "},
		{mysqlstore.Filter{To: "+4915112345678"}, "m4 "},
		{mysqlstore.Filter{Status: smsgw.StatusDelivered}, "m2 "},
		{mysqlstore.Filter{Since: t0.Add(time.Hour), Until: t0.Add(3 * time.Hour)}, "m2 m1 "},
		{mysqlstore.Filter{CustomerID: "c2", Limit: 2}, "m5 m3 "},
		{mysqlstore.Filter{CustomerID: "nobody"}, ""},
	} {
		if got := ids(tc.f); got != tc.want {
			t.Errorf("ListMessages(%+v) = %q, want %q", tc.f, got, tc.want)
		}
	}
	if _, err := s.ListMessages(ctx(t), mysqlstore.Filter{Limit: -1}); smsgw.ErrorCode(err) != smsgw.EINVALID {
		t.Errorf("negative limit = %v, want %s", err, smsgw.EINVALID)
	}
}

func stats(t *testing.T, s *mysqlstore.Store) map[string]int64 {
	t.Helper()
	rows, err := s.DailyStats(ctx(t), "", t0.Add(-48*time.Hour), t0.Add(48*time.Hour))
	if err != nil {
		t.Fatalf("DailyStats: %v", err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[fmt.Sprintf("%s/%s/%s/%s", r.Day.Format(time.DateOnly), r.CustomerID, r.ConnectorID, r.Status)] += r.Count
	}
	return out
}

func TestDailyStatsCountOnceUnderRetries(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	upsert(t, s, accepted("m1"), sent("m1", "upA", t0.Add(time.Second)))
	if got := stats(t, s); len(got) != 0 {
		t.Fatalf("stats before a final status: %v", got)
	}
	d := final("m1", smsgw.StatusDelivered, t0.Add(time.Minute))
	upsert(t, s, d, d, d, final("m1", smsgw.StatusUndeliverable, t0.Add(time.Hour)), sent("m1", "upA", t0))
	upsert(t, s, accepted("m2"), final("m2", smsgw.StatusDelivered, t0.Add(time.Minute)), final("m2", smsgw.StatusDelivered, t0.Add(time.Minute)))
	want := map[string]int64{"2026-11-26/c1/upA/DELIVERED": 1, "2026-11-26/c1//DELIVERED": 1}
	if got := stats(t, s); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stats = %v, want %v", got, want)
	}
}

func TestDailyStatsFollowLateUpdates(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	// The final status lands first, then the steps before it.
	upsert(t, s, final("m1", smsgw.StatusDelivered, t0.Add(time.Minute)))
	if got, want := stats(t, s), map[string]int64{"2026-11-26///DELIVERED": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stats = %v, want %v", got, want)
	}
	yesterday := accepted("m1")
	yesterday.AcceptedAt = t0.Add(-24 * time.Hour)
	upsert(t, s, yesterday, sent("m1", "upA", t0), sent("m1", "upA", t0))
	if got, want := stats(t, s), map[string]int64{"2026-11-25/c1/upA/DELIVERED": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stats = %v, want %v", got, want)
	}
}

// TestConcurrentUpserts plays every message's steps many times, in random
// orders, from many goroutines at once, as activity retries would.
func TestConcurrentUpserts(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	const messages, copies = 12, 4
	var work []smsgw.MessageRecord
	for i := range messages {
		id := fmt.Sprintf("m%02d", i)
		for range copies {
			work = append(work, accepted(id), sent(id, "upA", t0.Add(time.Second)),
				final(id, smsgw.StatusDelivered, t0.Add(time.Minute)))
		}
	}
	rand.Shuffle(len(work), func(i, j int) { work[i], work[j] = work[j], work[i] })
	var wg sync.WaitGroup
	errs := make(chan error, len(work))
	next := make(chan smsgw.MessageRecord)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range next {
				if err := s.UpsertMessage(ctx(t), r); err != nil {
					errs <- fmt.Errorf("%s %s: %w", r.ID, r.Status, err)
				}
			}
		}()
	}
	for _, r := range work {
		next <- r
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range messages {
		got := get(t, s, fmt.Sprintf("m%02d", i))
		if got.Status != smsgw.StatusDelivered || got.CustomerID != "c1" || got.ConnectorID != "upA" ||
			got.SentAt == nil || got.DoneAt == nil || !got.AcceptedAt.Equal(t0) {
			t.Errorf("%s: %+v", got.ID, got)
		}
	}
	if got, want := stats(t, s), map[string]int64{"2026-11-26/c1/upA/DELIVERED": messages}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stats = %v, want %v", got, want)
	}
}

func TestMigrationsAreSafeToRepeat(t *testing.T) {
	t.Parallel()
	s, dsn := open(t)
	upsert(t, s, accepted("m1"))
	// Opened again, and by several processes at once.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s2, err := mysqlstore.Open(ctx(t), dsn)
			if err != nil {
				errs <- err
				return
			}
			errs <- s2.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Open again: %v", err)
		}
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx(t), "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatalf("count schema_migrations: %v", err)
	}
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if n != len(files) { // one per file in migrations/
		t.Errorf("schema_migrations has %d rows, want %d", n, len(files))
	}
	if got := get(t, s, "m1"); got.CustomerID != "c1" {
		t.Errorf("data changed by a second Open: %+v", got)
	}
}

func TestOpenConcurrentlyOnAFreshDatabase(t *testing.T) {
	t.Parallel()
	dsn := testenv.MySQLDSN(t)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := mysqlstore.Open(ctx(t), dsn)
			if err == nil {
				err = s.UpsertMessage(ctx(t), accepted("m1"))
				s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	}
}

func TestOpenNeedsADatabase(t *testing.T) {
	t.Parallel()
	if _, err := mysqlstore.Open(ctx(t), "root@tcp(127.0.0.1:3306)/"); err == nil {
		t.Fatal("Open without a database name succeeded")
	}
}

func TestUnreachableServerIsUnavailable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = mysqlstore.Open(ctx(t), "root@tcp("+addr+")/smsgw?timeout=1s")
	if smsgw.ErrorCode(err) != smsgw.EUNAVAILABLE {
		t.Fatalf("Open of a closed port = %v, want %s", err, smsgw.EUNAVAILABLE)
	}
}

func TestLongErrorTextIsCut(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	r := final("m1", smsgw.StatusFailed, t0)
	r.ErrorText = strings.Repeat("é", 600)
	upsert(t, s, r)
	if got := get(t, s, "m1"); got.ErrorText != strings.Repeat("é", 512) {
		t.Errorf("error text has %d characters, want 512", len([]rune(got.ErrorText)))
	}
}

func TestStoppedServerIsUnavailable(t *testing.T) {
	t.Parallel()
	dev := testenv.StartDevDB(t, "-mongo-addr", "", "-mysql-addr", "127.0.0.1:0")
	s, err := mysqlstore.Open(ctx(t), dev.MySQLDSN)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	upsert(t, s, accepted("m1"))
	dev.Stop()
	if _, err := s.GetMessage(ctx(t), "m1"); smsgw.ErrorCode(err) != smsgw.EUNAVAILABLE {
		t.Errorf("GetMessage on a stopped server = %v, want %s", err, smsgw.EUNAVAILABLE)
	}
	if err := s.UpsertMessage(ctx(t), accepted("m2")); smsgw.ErrorCode(err) != smsgw.EUNAVAILABLE {
		t.Errorf("UpsertMessage on a stopped server = %v, want %s", err, smsgw.EUNAVAILABLE)
	}
}

// Concurrent callers share transactions; a row the server refuses fails
// only its own caller, and the rows batched with it are stored.
func TestBatchedUpsertsFailOnlyTheBadRow(t *testing.T) {
	t.Parallel()
	m, err := groupcommit.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s, err := mysqlstore.Open(ctx(t), testenv.MySQLDSN(t), mysqlstore.WithGroupCommit(groupcommit.Options{MaxWait: 20 * time.Millisecond}, m))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	const callers = 60
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := accepted(fmt.Sprintf("b%02d", i))
			if i == 17 {
				// fixed date: a year no DATETIME holds, refused whatever today is
				r.UpdatedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
			}
			errs[i] = s.UpsertMessage(ctx(t), r)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i == 17) != (err != nil) {
			t.Errorf("caller %d: %v", i, err)
		}
		if i != 17 {
			get(t, s, fmt.Sprintf("b%02d", i))
		}
	}
	if _, err := s.GetMessage(ctx(t), "b17"); smsgw.ErrorCode(err) != smsgw.ENOTFOUND {
		t.Errorf("the refused row: %v", err)
	}
	if batches := m.Batches("reporting"); batches == 0 || batches >= callers {
		t.Errorf("%d batches for %d callers, want fewer batches than callers", batches, callers)
	}
}
