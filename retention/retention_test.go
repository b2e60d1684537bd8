package retention_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/retention"
	"github.com/smsgw/smsgw/store/mongostore"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

// TestPurgeRemovesOnlyWhatIsPastItsCustomersRetention writes messages of
// three customers at several ages into MariaDB and devdb, purges in small
// batches, and checks what is left.
func TestPurgeRemovesOnlyWhatIsPastItsCustomersRetention(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	events, err := mongostore.Open(ctx, testenv.MongoURI(t), testenv.MongoDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close(context.Background())
	if err := events.CreateInboundIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	reports, err := mysqlstore.Open(ctx, testenv.MySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer reports.Close()

	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) // fixed date: the purgers are given it as their clock
	ages := []int{1, 20, 40, 100, 400}                   // days
	for _, cust := range []string{"short", "default", "forever"} {
		for _, days := range ages {
			for k := range 3 {
				id := fmt.Sprintf("%s-%d-%d", cust, days, k)
				at := now.Add(-time.Duration(days)*24*time.Hour + time.Duration(k)*time.Minute)
				if err := reports.UpsertMessage(ctx, smsgw.MessageRecord{ID: id, CustomerID: cust, EntryPoint: smsgw.EntryREST,
					From: "ACME", To: "+61412345678", Status: smsgw.StatusDelivered, AcceptedAt: at, DoneAt: &at, UpdatedAt: at}); err != nil {
					t.Fatal(err)
				}
				if err := events.AppendEvents(ctx,
					smsgw.NewEvent(id, cust, 1, smsgw.EventAccepted, "accepted", at, nil),
					smsgw.NewEvent(id, cust, 2, smsgw.EventFinal, "final", at.Add(time.Second), nil)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	policy := map[string]int{"short": 30, "forever": -1} // the rest: the default, 90 days
	reg := prometheus.NewRegistry()
	newPurger := func() *retention.Purger {
		p, err := retention.NewPurger([]retention.Target{
			{Name: "events", Customers: events.HistoryCustomers, Purge: events.PurgeHistory},
			{Name: "reporting", Customers: reports.ReportCustomers, Purge: reports.PurgeMessages},
		}, func(c string) (time.Duration, bool) {
			days, ok := policy[c]
			if !ok {
				days = 90
			}
			if days < 0 {
				return 0, true
			}
			return time.Duration(days) * 24 * time.Hour, false
		}, reg, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.Batch = 2 // several batches per customer
		p.Now = func() time.Time { return now }
		return p
	}
	// Two replicas purge at once: between them they delete each row once.
	p, other := newPurger(), newPurger()
	results := make(chan map[string]int64, 2)
	for _, pp := range []*retention.Purger{p, other} {
		go func() {
			n, err := pp.PurgeOnce(ctx)
			if err != nil {
				t.Error(err)
			}
			results <- n
		}()
	}
	got := map[string]int64{}
	for range 2 {
		for k, v := range <-results {
			got[k] += v
		}
	}
	// short: 40, 100 and 400 days old go (9 messages); default: 100 and 400 (6).
	if got["reporting"] != 15 || got["events"] != 30 {
		t.Errorf("purged %v, want 15 rows and 30 events", got)
	}
	for _, cust := range []string{"short", "default", "forever"} {
		for _, days := range ages {
			keep := map[string]int{"short": 30, "default": 90, "forever": 1 << 20}[cust]
			for k := range 3 {
				id := fmt.Sprintf("%s-%d-%d", cust, days, k)
				_, err := reports.GetMessage(ctx, id)
				evs, eerr := events.Events(ctx, id)
				if eerr != nil {
					t.Fatal(eerr)
				}
				if days < keep {
					if err != nil || len(evs) != 2 {
						t.Errorf("%s (%d days, kept %d) lost: row %v, %d events", id, days, keep, err, len(evs))
					}
				} else if smsgw.ErrorCode(err) != smsgw.ENOTFOUND || len(evs) != 0 {
					t.Errorf("%s (%d days, kept %d) still there: row %v, %d events", id, days, keep, err, len(evs))
				}
			}
		}
	}
	if v := testutil.ToFloat64(p.Metrics().WithLabelValues("reporting")); v != 15 {
		t.Errorf("smsgw_retention_purged_total{store=reporting} = %v", v)
	}
	// A second pass finds nothing more; the daily counts stay.
	again, err := p.PurgeOnce(ctx)
	if err != nil || again["reporting"] != 0 || again["events"] != 0 {
		t.Errorf("second pass %v %v", again, err)
	}
	stats, err := reports.DailyStats(ctx, "short", now.Add(-500*24*time.Hour), now.Add(24*time.Hour))
	if err != nil || len(stats) != len(ages) {
		t.Errorf("daily stats after the purge: %v %v", stats, err)
	}
}
