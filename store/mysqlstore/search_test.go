package mysqlstore_test

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/groupcommit"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

// searchAll pages through a search to the end, pageSize at a time, and
// returns the IDs in order, a "|" between pages.
func searchAll(t *testing.T, s *mysqlstore.Store, q smsgw.MessageQuery) string {
	t.Helper()
	var out []string
	for range 100 {
		page, err := s.SearchMessages(ctx(t), q)
		if err != nil {
			t.Fatalf("SearchMessages(%+v): %v", q, err)
		}
		ids := make([]string, 0, len(page.Messages))
		for _, r := range page.Messages {
			ids = append(ids, r.ID)
		}
		out = append(out, strings.Join(ids, " "))
		if page.NextPageToken == "" {
			return strings.Join(out, "|")
		}
		q.PageToken = page.NextPageToken
	}
	t.Fatalf("SearchMessages(%+v) did not end after 100 pages", q)
	return ""
}

func TestSearchMessagesFiltersAndPages(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	// m0..m9, an hour apart; odd ones are c2's. m6 and m7 share m6's
	// acceptance time, so the ID orders them.
	for i := range 10 {
		r := accepted(fmt.Sprintf("m%d", i))
		r.AcceptedAt = t0.Add(time.Duration(i) * time.Hour)
		if i == 7 {
			r.AcceptedAt = t0.Add(6 * time.Hour)
		}
		if i%2 == 1 {
			r.CustomerID = "c2"
		}
		if i == 4 {
			r.To, r.From, r.ClientRef = "+4915112345678", "OTHER", "order-4"
		}
		upsert(t, s, r)
	}
	upsert(t, s, sent("m2", "upB", t0.Add(3*time.Hour)), final("m2", smsgw.StatusDelivered, t0.Add(3*time.Hour)))
	upsert(t, s, sent("m8", "upB", t0.Add(9*time.Hour)))
	// A row whose acceptance is not recorded yet is not found.
	upsert(t, s, sent("late", "upB", t0))

	for _, tc := range []struct {
		q    smsgw.MessageQuery
		want string
	}{
		{smsgw.MessageQuery{}, "m9 m8 m7 m6 m5 m4 m3 m2 m1 m0"},
		{smsgw.MessageQuery{PageSize: 3}, "m9 m8 m7|m6 m5 m4|m3 m2 m1|m0"},
		{smsgw.MessageQuery{PageSize: 5}, "m9 m8 m7 m6 m5|m4 m3 m2 m1 m0"},
		{smsgw.MessageQuery{CustomerID: "c1", PageSize: 2}, "m8 m6|m4 m2|m0"},
		{smsgw.MessageQuery{CustomerID: "c2", PageSize: 2}, "m9 m7|m5 m3|m1"},
		{smsgw.MessageQuery{CustomerID: "c1", To: "+4915112345678"}, "m4"},
		{smsgw.MessageQuery{CustomerID: "c1", From: "OTHER"}, "m4"},
		{smsgw.MessageQuery{CustomerID: "c1", ClientRef: "order-4"}, "m4"},
		{smsgw.MessageQuery{CustomerID: "c2", ClientRef: "order-4"}, ""},
		{smsgw.MessageQuery{CustomerID: "c1", Status: smsgw.StatusDelivered}, "m2"},
		{smsgw.MessageQuery{CustomerID: "c1", Status: smsgw.StatusAccepted, PageSize: 2}, "m6 m4|m0"},
		{smsgw.MessageQuery{CustomerID: "c1", ConnectorID: "upB"}, "m8 m2"},
		{smsgw.MessageQuery{ConnectorID: "upB", Status: smsgw.StatusSent}, "m8"},
		{smsgw.MessageQuery{Since: t0.Add(time.Hour), Until: t0.Add(3 * time.Hour)}, "m2 m1"},
		{smsgw.MessageQuery{CustomerID: "c2", Since: t0.Add(6 * time.Hour), PageSize: 1}, "m9|m7"},
		{smsgw.MessageQuery{CustomerID: "nobody"}, ""},
	} {
		if got := searchAll(t, s, tc.q); got != tc.want {
			t.Errorf("search %+v = %q, want %q", tc.q, got, tc.want)
		}
	}

	// The next page does not move when a newer message arrives.
	first, err := s.SearchMessages(ctx(t), smsgw.MessageQuery{CustomerID: "c1", PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	newer := accepted("m10")
	newer.AcceptedAt = t0.Add(20 * time.Hour)
	upsert(t, s, newer)
	if got := searchAll(t, s, smsgw.MessageQuery{CustomerID: "c1", PageSize: 2, PageToken: first.NextPageToken}); got != "m4 m2|m0" {
		t.Errorf("pages after the first, with a newer message = %q, want %q", got, "m4 m2|m0")
	}

	// Records come back whole.
	page, err := s.SearchMessages(ctx(t), smsgw.MessageQuery{CustomerID: "c1", Status: smsgw.StatusDelivered})
	if err != nil {
		t.Fatal(err)
	}
	if got := page.Messages[0]; got.ConnectorID != "upB" || got.Segments != 2 || got.DoneAt == nil || !got.AcceptedAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("m2 as found: %+v", got)
	}

	for _, q := range []smsgw.MessageQuery{
		{PageSize: -1},
		{Status: "LOST"},
		{Since: t0, Until: t0},
		{PageToken: "not-a-token"},
		{PageToken: "e30"}, // {}
	} {
		if _, err := s.SearchMessages(ctx(t), q); smsgw.ErrorCode(err) != smsgw.EINVALID {
			t.Errorf("search %+v = %v, want %s", q, err, smsgw.EINVALID)
		}
	}
}

// usage reads a usage report as "day customer entry connector status messages/segments" lines.
func usage(t *testing.T, s *mysqlstore.Store, q smsgw.UsageQuery) string {
	t.Helper()
	return usageLines(t, s, q, func(r smsgw.UsageRow) string {
		return fmt.Sprintf("%s %s %s %s %s %d/%d", r.Day, r.CustomerID, r.EntryPoint, r.ConnectorID, r.Status, r.Messages, r.Segments)
	})
}

// usageLines reads a usage report as a line per row, as line writes it.
func usageLines(t *testing.T, s *mysqlstore.Store, q smsgw.UsageQuery, line func(smsgw.UsageRow) string) string {
	t.Helper()
	rows, err := s.Usage(ctx(t), q)
	if err != nil {
		t.Fatalf("Usage(%+v): %v", q, err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, line(r))
	}
	return strings.Join(out, "\n")
}

func TestUsageCountsEachFinalMessageOnceUnderRetries(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	day := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) } // fixed date: stored data queried by its own range; the store reads the clock only to stamp migrations
	all := smsgw.UsageQuery{From: day(20), To: day(30)}

	upsert(t, s, accepted("m1"), sent("m1", "upA", t0.Add(time.Second)))
	if got := usage(t, s, all); got != "" {
		t.Fatalf("usage before a final status:\n%s", got)
	}
	// The final status recorded again and again (activity retries), also
	// concurrently, and a late SENT: counted once.
	done := final("m1", smsgw.StatusDelivered, t0.Add(2*time.Second))
	upsert(t, s, done, done)
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- s.UpsertMessage(ctx(t), done) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	upsert(t, s, sent("m1", "upA", t0.Add(time.Second)))
	want := "2026-11-26 c1 rest upA DELIVERED 1/2"
	if got := usage(t, s, all); got != want {
		t.Fatalf("usage after repeated final records:\n%s\nwant\n%s", got, want)
	}

	// A second message of another entry point, an undeliverable one, and one
	// of another customer.
	m2 := accepted("m2")
	m2.EntryPoint = smsgw.EntrySMPP
	upsert(t, s, m2, sent("m2", "upA", t0), final("m2", smsgw.StatusDelivered, t0))
	upsert(t, s, accepted("m3"), sent("m3", "upB", t0), final("m3", smsgw.StatusUndeliverable, t0))
	m4 := accepted("m4")
	m4.CustomerID = "c2"
	upsert(t, s, m4, sent("m4", "upA", t0), final("m4", smsgw.StatusDelivered, t0), final("m4", smsgw.StatusDelivered, t0))
	want = strings.Join([]string{
		"2026-11-26 c1 rest upA DELIVERED 1/2",
		"2026-11-26 c1 rest upB UNDELIVERABLE 1/2",
		"2026-11-26 c1 smpp upA DELIVERED 1/2",
		"2026-11-26 c2 rest upA DELIVERED 1/2",
	}, "\n")
	if got := usage(t, s, all); got != want {
		t.Errorf("usage of every customer:\n%s\nwant\n%s", got, want)
	}
	if got := usage(t, s, smsgw.UsageQuery{CustomerID: "c2", From: day(26), To: day(27)}); got != "2026-11-26 c2 rest upA DELIVERED 1/2" {
		t.Errorf("usage of c2 = %q", got)
	}
	if got := usage(t, s, smsgw.UsageQuery{From: day(27), To: day(30)}); got != "" {
		t.Errorf("usage of days without messages = %q", got)
	}

	// A late update that fills in the connector moves the count.
	upsert(t, s, accepted("m5"), final("m5", smsgw.StatusFailed, t0))
	upsert(t, s, smsgw.MessageRecord{ID: "m5", Status: smsgw.StatusFailed, ConnectorID: "upC", Segments: 3, UpdatedAt: t0})
	if got := usage(t, s, smsgw.UsageQuery{From: day(26), To: day(27), CustomerID: "c1"}); !strings.Contains(got, "c1 rest upC FAILED 1/3") ||
		strings.Contains(got, "FAILED 1/0") {
		t.Errorf("usage after a late connector:\n%s", got)
	}
	if got, want := stats(t, s)["2026-11-26/c1/upC/FAILED"], int64(1); got != want {
		t.Errorf("daily_stats of the moved message = %d, want %d", got, want)
	}
}

func TestUsageDaysInATimeZone(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	at := func(id string, when time.Time) {
		r := accepted(id)
		r.AcceptedAt = when
		upsert(t, s, r, sent(id, "upA", when), final(id, smsgw.StatusDelivered, when))
	}
	// 2026-03-29: Europe/Berlin moves from +01:00 to +02:00 at 01:00 UTC.
	at("a", time.Date(2026, 3, 28, 22, 59, 0, 0, time.UTC)) // fixed date: stored data queried by its own range; the store reads the clock only to stamp migrations; 28th 23:59 in Berlin, 28th UTC
	at("b", time.Date(2026, 3, 28, 23, 0, 0, 0, time.UTC))  // fixed date: stored data queried by its own range; the store reads the clock only to stamp migrations; 29th 00:00 in Berlin
	at("c", time.Date(2026, 3, 29, 21, 59, 0, 0, time.UTC)) // fixed date: stored data queried by its own range; the store reads the clock only to stamp migrations; 29th 23:59 in Berlin (+02:00)
	at("d", time.Date(2026, 3, 29, 22, 0, 0, 0, time.UTC))  // fixed date: stored data queried by its own range; the store reads the clock only to stamp migrations; 30th 00:00 in Berlin, 29th UTC
	// Kathmandu is +05:45: 18:15 UTC is the next day's midnight there.
	at("e", time.Date(2026, 3, 30, 18, 14, 0, 0, time.UTC)) // fixed date: stored data queried by its own range; the store reads the clock only to stamp migrations
	at("f", time.Date(2026, 3, 30, 18, 15, 0, 0, time.UTC)) // fixed date: stored data queried by its own range; the store reads the clock only to stamp migrations

	from, to := time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC) // fixed date: stored data queried by its own range; the store reads the clock only to stamp migrations
	load := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Skipf("time zone %s: %v", name, err)
		}
		return loc
	}
	for _, tc := range []struct {
		loc  *time.Location
		want string
	}{
		{nil, "2026-03-28 c1 rest upA DELIVERED 2/4\n2026-03-29 c1 rest upA DELIVERED 2/4\n2026-03-30 c1 rest upA DELIVERED 2/4"},
		{load("Europe/Berlin"), "2026-03-28 c1 rest upA DELIVERED 1/2\n2026-03-29 c1 rest upA DELIVERED 2/4\n2026-03-30 c1 rest upA DELIVERED 3/6"},
		{load("Asia/Kathmandu"), "2026-03-29 c1 rest upA DELIVERED 2/4\n2026-03-30 c1 rest upA DELIVERED 3/6\n2026-03-31 c1 rest upA DELIVERED 1/2"},
	} {
		if got := usage(t, s, smsgw.UsageQuery{From: from, To: to, Location: tc.loc}); got != tc.want {
			t.Errorf("usage in %v:\n%s\nwant\n%s", tc.loc, got, tc.want)
		}
	}
	for _, q := range []smsgw.UsageQuery{{From: to, To: from}, {From: from, To: from}, {From: from, To: from.AddDate(2, 0, 0)}} {
		if _, err := s.Usage(ctx(t), q); smsgw.ErrorCode(err) != smsgw.EINVALID {
			t.Errorf("Usage(%v to %v) = %v, want %s", q.From, q.To, err, smsgw.EINVALID)
		}
	}
}

// A message counted in daily_stats by a process that predates usage
// buckets (during a rolling upgrade) is counted in usage when its final
// status is recorded again, and in daily_stats still once.
func TestUsageCountsAMessageCountedBeforeBuckets(t *testing.T) {
	t.Parallel()
	s, dsn := open(t)
	upsert(t, s, accepted("m1"), sent("m1", "upA", t0), final("m1", smsgw.StatusDelivered, t0))
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// As the older process leaves it: counted by day, not in a bucket.
	for _, stmt := range []string{
		"UPDATE messages SET counted_bucket = NULL, counted_entry_point = '', counted_segments = 0",
		"DELETE FROM usage_buckets",
	} {
		if _, err := db.ExecContext(ctx(t), stmt); err != nil {
			t.Fatal(err)
		}
	}
	day := smsgw.UsageQuery{From: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)} // fixed date: stored data queried by its own range; the store reads the clock only to stamp migrations
	if got := usage(t, s, day); got != "" {
		t.Fatalf("usage before the record again: %q", got)
	}
	upsert(t, s, final("m1", smsgw.StatusDelivered, t0), final("m1", smsgw.StatusDelivered, t0))
	if got, want := usage(t, s, day), "2026-11-26 c1 rest upA DELIVERED 1/2"; got != want {
		t.Errorf("usage = %q, want %q", got, want)
	}
	if got := stats(t, s); fmt.Sprint(got) != "map[2026-11-26/c1/upA/DELIVERED:1]" {
		t.Errorf("daily_stats = %v, want the message once", got)
	}
}

// usageCosts reads a usage report as "customer connector status currency messages cost" lines.
func usageCosts(t *testing.T, s *mysqlstore.Store, q smsgw.UsageQuery) string {
	t.Helper()
	return usageLines(t, s, q, func(r smsgw.UsageRow) string {
		return fmt.Sprintf("%s %s %s %q %d %d", r.CustomerID, r.ConnectorID, r.Status, r.Currency, r.Messages, r.CostMicros)
	})
}

func TestUsageSumsEachChargeOnce(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	all := smsgw.UsageQuery{From: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)} // fixed date: stored data queried by its own range

	// The charge in the same write as the final status, recorded again and
	// again, also concurrently: summed once.
	charged := func(id string, cost int64) smsgw.MessageRecord {
		r := final(id, smsgw.StatusDelivered, t0.Add(2*time.Second))
		r.CostMicros, r.Currency = cost, "EUR"
		return r
	}
	upsert(t, s, accepted("m1"), sent("m1", "upA", t0.Add(time.Second)), charged("m1", 70000), charged("m1", 70000))
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- s.UpsertMessage(ctx(t), charged("m1", 70000)) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got, want := usageCosts(t, s, all), `c1 upA DELIVERED "EUR" 1 70000`; got != want {
		t.Fatalf("usage after repeated charged final records:\n%s\nwant\n%s", got, want)
	}

	// The final status first, the charge in a later write (repeated, and
	// concurrently): the message moves from the unbilled row to the EUR one.
	upsert(t, s, accepted("m2"), sent("m2", "upA", t0), final("m2", smsgw.StatusDelivered, t0.Add(time.Second)))
	if got, want := usageCosts(t, s, all), "c1 upA DELIVERED \"\" 1 0\nc1 upA DELIVERED \"EUR\" 1 70000"; got != want {
		t.Fatalf("usage before the late charge:\n%s\nwant\n%s", got, want)
	}
	for range 4 {
		go func() { errs <- s.UpsertMessage(ctx(t), charged("m2", 35000)) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	upsert(t, s, charged("m2", 35000), final("m2", smsgw.StatusDelivered, t0.Add(3*time.Second)))
	if got, want := usageCosts(t, s, all), `c1 upA DELIVERED "EUR" 2 105000`; got != want {
		t.Fatalf("usage after the late charge:\n%s\nwant\n%s", got, want)
	}

	// An undeliverable message charged nothing is counted under its currency
	// with a zero charge; another customer in another currency apart.
	upsert(t, s, accepted("m3"), sent("m3", "upB", t0), charged("m3", 0))
	m4 := accepted("m4")
	m4.CustomerID = "c2"
	c4 := charged("m4", 1250)
	c4.Currency = "USD"
	upsert(t, s, m4, sent("m4", "upA", t0), c4, c4)
	want := strings.Join([]string{
		`c1 upA DELIVERED "EUR" 2 105000`,
		`c1 upB DELIVERED "EUR" 1 0`,
		`c2 upA DELIVERED "USD" 1 1250`,
	}, "\n")
	if got := usageCosts(t, s, all); got != want {
		t.Errorf("usage of every customer:\n%s\nwant\n%s", got, want)
	}
}

// Final rows written at the same time share a transaction, whose counts
// are added together: several messages under one key, others under
// another, then a charge recorded late for some of them at the same time
// (each moved from the unbilled bucket to its currency's), then a
// connector recorded late for others (each moved to that connector's
// daily count and bucket).
func TestUsageOfRowsCountedTogether(t *testing.T) {
	t.Parallel()
	// Batches wait for company as in production.
	s, err := mysqlstore.Open(ctx(t), testenv.MySQLDSN(t), mysqlstore.WithGroupCommit(groupcommit.Options{Linger: 10 * time.Millisecond}, nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	all := smsgw.UsageQuery{From: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)} // fixed date: stored data queried by its own range
	const n = 24
	id := func(i int) string { return fmt.Sprintf("m%02d", i) }
	for i := range n {
		connector := "upA"
		if i%3 == 0 {
			connector = "upB"
		}
		upsert(t, s, accepted(id(i)), sent(id(i), connector, t0.Add(time.Second)))
	}
	together := func(recs []smsgw.MessageRecord) {
		t.Helper()
		errs := make(chan error, len(recs))
		start := make(chan struct{})
		for _, r := range recs {
			go func() { <-start; errs <- s.UpsertMessage(ctx(t), r) }()
		}
		close(start)
		for range recs {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
	var finals, charges []smsgw.MessageRecord
	for i := range n {
		finals = append(finals, final(id(i), smsgw.StatusDelivered, t0.Add(2*time.Second)))
		if i%2 == 0 {
			c := final(id(i), smsgw.StatusDelivered, t0.Add(3*time.Second))
			c.CostMicros, c.Currency = int64(1000*(i+1)), "EUR"
			charges = append(charges, c)
		}
	}
	expect := func(after string, usage []string, daily map[string]int64) {
		t.Helper()
		if got, want := usageCosts(t, s, all), strings.Join(usage, "\n"); got != want {
			t.Errorf("usage after %s:\n%s\nwant\n%s", after, got, want)
		}
		if got := stats(t, s); fmt.Sprint(got) != fmt.Sprint(daily) {
			t.Errorf("daily stats after %s = %v, want %v", after, got, daily)
		}
	}
	together(finals)
	expect("the final rows", []string{`c1 upA DELIVERED "" 16 0`, `c1 upB DELIVERED "" 8 0`},
		map[string]int64{"2026-11-26/c1/upA/DELIVERED": 16, "2026-11-26/c1/upB/DELIVERED": 8})
	together(append(charges, finals...))
	// upB: i = 0, 6, 12, 18 charged; upA: the other even i.
	expect("the late charges", []string{
		`c1 upA DELIVERED "" 8 0`,
		`c1 upA DELIVERED "EUR" 8 104000`,
		`c1 upB DELIVERED "" 4 0`,
		`c1 upB DELIVERED "EUR" 4 40000`,
	}, map[string]int64{"2026-11-26/c1/upA/DELIVERED": 16, "2026-11-26/c1/upB/DELIVERED": 8})
	var moved []smsgw.MessageRecord
	for i := 1; i < n; i += 4 { // 1, 5, 13, 17 from upA; 9, 21 from upB; none charged
		r := final(id(i), smsgw.StatusDelivered, t0.Add(4*time.Second))
		r.ConnectorID = "upC"
		moved = append(moved, r)
	}
	together(append(moved, charges...))
	expect("the late connectors", []string{
		`c1 upA DELIVERED "" 4 0`,
		`c1 upA DELIVERED "EUR" 8 104000`,
		`c1 upB DELIVERED "" 2 0`,
		`c1 upB DELIVERED "EUR" 4 40000`,
		`c1 upC DELIVERED "" 6 0`,
	}, map[string]int64{"2026-11-26/c1/upA/DELIVERED": 12, "2026-11-26/c1/upB/DELIVERED": 6, "2026-11-26/c1/upC/DELIVERED": 6})
}

func TestRefusalsAreCountedPerQuarterHourAndReason(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	// 23:50 UTC on the 25th is the 26th in Berlin: the day follows the zone.
	late := time.Date(2026, 11, 25, 23, 50, 0, 0, time.UTC) // fixed date: stored data queried by its own range
	for _, r := range []struct {
		customer, reason string
		at               time.Time
	}{
		{"c1", smsgw.ReasonOptedOut, t0}, {"c1", smsgw.ReasonOptedOut, t0.Add(20 * time.Minute)},
		{"c1", smsgw.ReasonInsufficientBalance, t0}, {"c2", smsgw.ReasonOptedOut, t0}, {"c1", smsgw.ReasonOptedOut, late},
	} {
		if err := s.CountRefusal(ctx(t), r.customer, r.reason, r.at); err != nil {
			t.Fatal(err)
		}
	}
	read := func(q smsgw.UsageQuery) string {
		t.Helper()
		rows, err := s.Refusals(ctx(t), q)
		if err != nil {
			t.Fatalf("Refusals(%+v): %v", q, err)
		}
		var out []string
		for _, r := range rows {
			out = append(out, fmt.Sprintf("%s %s %s %d", r.Day, r.CustomerID, r.Reason, r.Refusals))
		}
		return strings.Join(out, "\n")
	}
	from, to := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC) // fixed date: as above
	want := strings.Join([]string{
		"2026-11-25 c1 OPTED_OUT 1",
		"2026-11-26 c1 INSUFFICIENT_BALANCE 1",
		"2026-11-26 c1 OPTED_OUT 2",
		"2026-11-26 c2 OPTED_OUT 1",
	}, "\n")
	if got := read(smsgw.UsageQuery{From: from, To: to}); got != want {
		t.Errorf("refusals:\n%s\nwant\n%s", got, want)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := read(smsgw.UsageQuery{CustomerID: "c1", From: from, To: to, Location: berlin}),
		"2026-11-26 c1 INSUFFICIENT_BALANCE 1\n2026-11-26 c1 OPTED_OUT 3"; got != want {
		t.Errorf("c1's refusals in Berlin:\n%s\nwant\n%s", got, want)
	}
	if _, err := s.Refusals(ctx(t), smsgw.UsageQuery{From: to, To: from}); smsgw.ErrorCode(err) != smsgw.EINVALID {
		t.Errorf("Refusals of an empty range = %v, want %s", err, smsgw.EINVALID)
	}
}
