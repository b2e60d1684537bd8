package mysqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

// sentToServer counts what clients write to the server over the network
// "counted": each command is one write, so one round trip.
var sentToServer atomic.Int64

var registerCounted = sync.OnceFunc(func() {
	mysql.RegisterDialContext("counted", func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return countedConn{c}, nil
	})
})

type countedConn struct{ net.Conn }

func (c countedConn) Write(b []byte) (int, error) {
	sentToServer.Add(1)
	return c.Conn.Write(b)
}

// reportingServers are the servers the round-trip tests run on: the
// MySQL or MariaDB server of the tests, and devdb's go-mysql-server (make
// dev's fallback), each in a fresh database.
func reportingServers(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"mysql": func(t *testing.T) string { return testenv.MySQLDSN(t) },
		"devdb": func(t *testing.T) string {
			return testenv.StartDevDB(t, "-mongo-addr", "", "-mysql-addr", "127.0.0.1:0").MySQLDSN
		},
	}
}

// TestFinalRowInThreeRoundTrips writes a message's final row, with its
// daily and usage counts, and counts the round trips: three when several
// statements go in one query (the default), seven with one a query (a DSN
// that says multiStatements=false). Both ways count the message once, and
// move its count when late updates change its day and connector.
func TestFinalRowInThreeRoundTrips(t *testing.T) {
	registerCounted()
	for server, dsnOf := range reportingServers(t) {
		for _, c := range []struct {
			name, param string
			want        int64
		}{
			{"several statements a query", "", 3},
			{"one statement a query", "&multiStatements=false", 7},
		} {
			t.Run(server+"/"+c.name, func(t *testing.T) {
				cfg, err := mysql.ParseDSN(dsnOf(t))
				if err != nil {
					t.Fatal(err)
				}
				cfg.Net = "counted"
				s, err := mysqlstore.Open(ctx(t), cfg.FormatDSN()+c.param)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				upsert(t, s, accepted("m0")) // a connection in the pool, and the store warm

				// The final status lands first, then the steps before it: the
				// message is counted at once, then moved to its day and connector.
				before := sentToServer.Load()
				upsert(t, s, final("m1", smsgw.StatusDelivered, t0.Add(time.Minute)))
				if got := sentToServer.Load() - before; got != c.want {
					t.Errorf("a final row took %d round trips, want %d", got, c.want)
				}
				if got, want := stats(t, s), map[string]int64{"2026-11-26///DELIVERED": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("stats = %v, want %v", got, want)
				}
				yesterday := accepted("m1")
				yesterday.AcceptedAt = t0.Add(-24 * time.Hour)
				upsert(t, s, yesterday, sent("m1", "upA", t0), final("m1", smsgw.StatusDelivered, t0.Add(time.Minute)))
				if got, want := stats(t, s), map[string]int64{"2026-11-25/c1/upA/DELIVERED": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("stats after the late updates = %v, want %v", got, want)
				}
				all := smsgw.UsageQuery{From: t0.Add(-48 * time.Hour), To: t0.Add(48 * time.Hour)}
				if got, want := usage(t, s, all), "2026-11-25 c1 rest upA DELIVERED 1/2"; got != want {
					t.Errorf("usage after the late updates:\n%s\nwant\n%s", got, want)
				}
			})
		}
	}
}

// TestCountsThatFailRollBackTheRow fails a final row's counts (their table
// gone for a moment): the row's upsert, in the same transaction, is rolled
// back with them, whether the statements go together or one a query, on
// both servers (go-mysql-server runs the statements of a query after one
// that failed: the commit must not be among them), and the store writes
// the row and counts it once the table is back.
func TestCountsThatFailRollBackTheRow(t *testing.T) {
	for server, dsnOf := range reportingServers(t) {
		for _, param := range []string{"", "&multiStatements=false"} {
			t.Run(server+"/dsn"+param, func(t *testing.T) {
				dsn := dsnOf(t)
				s, err := mysqlstore.Open(ctx(t), dsn+param)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				admin, err := sql.Open("mysql", dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { admin.Close() })
				upsert(t, s, accepted("m1"))

				if _, err := admin.ExecContext(ctx(t), "RENAME TABLE usage_buckets TO usage_buckets_away"); err != nil {
					t.Fatal(err)
				}
				done := final("m1", smsgw.StatusDelivered, t0.Add(time.Minute))
				if err := s.UpsertMessage(ctx(t), done); err == nil {
					t.Fatal("UpsertMessage succeeded without usage_buckets")
				}
				if got := get(t, s, "m1"); got.Status != smsgw.StatusAccepted {
					t.Errorf("after the failed counts the row is %s, want %s (its upsert rolled back)", got.Status, smsgw.StatusAccepted)
				}
				if got := stats(t, s); len(got) != 0 {
					t.Errorf("daily_stats after the failed counts = %v, want none", got)
				}
				if _, err := admin.ExecContext(ctx(t), "RENAME TABLE usage_buckets_away TO usage_buckets"); err != nil {
					t.Fatal(err)
				}
				upsert(t, s, done)
				if got := get(t, s, "m1"); got.Status != smsgw.StatusDelivered {
					t.Errorf("row = %s, want %s", got.Status, smsgw.StatusDelivered)
				}
				if got, want := stats(t, s), map[string]int64{"2026-11-26/c1//DELIVERED": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("stats = %v, want %v", got, want)
				}
				all := smsgw.UsageQuery{From: t0.Add(-48 * time.Hour), To: t0.Add(48 * time.Hour)}
				if got, want := usage(t, s, all), "2026-11-26 c1 rest  DELIVERED 1/0"; got != want {
					t.Errorf("usage:\n%s\nwant\n%s", got, want)
				}
			})
		}
	}
}
