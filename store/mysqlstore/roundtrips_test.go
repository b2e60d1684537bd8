package mysqlstore_test

import (
	"context"
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

// TestFinalRowInTwoRoundTrips writes a message's final row, with its daily
// and usage counts, and counts the round trips: two when several
// statements go in one query (the default), seven with one a query (a DSN
// that says multiStatements=false). Both ways count the message once, and
// move its count when late updates change its day and connector.
func TestFinalRowInTwoRoundTrips(t *testing.T) {
	registerCounted()
	for _, c := range []struct {
		name, param string
		want        int64
	}{
		{"several statements a query", "", 2},
		{"one statement a query", "&multiStatements=false", 7},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := mysql.ParseDSN(testenv.MySQLDSN(t))
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
