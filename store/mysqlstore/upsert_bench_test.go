package mysqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/groupcommit"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

// BenchmarkUpsertFinal writes the reporting rows of messages as they end
// (the row and its counts in one transaction, as the final record does),
// from 32 writers at once through the store's group commit with its
// default linger, and reports the statements the server ran per row
// (its Questions counter: run it on a server nothing else uses) and the
// round trips the store made per row:
//
//	go test ./store/mysqlstore -run '^$' -bench UpsertFinal -benchtime 2000x
func BenchmarkUpsertFinal(b *testing.B) {
	dsn := testenv.MySQLDSN(b)
	registerCounted()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		b.Fatal(err)
	}
	cfg.Net = "counted"
	s, err := mysqlstore.Open(context.Background(), cfg.FormatDSN(), mysqlstore.WithGroupCommit(groupcommit.Options{Linger: 10 * time.Millisecond}, nil))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	questions := func() float64 {
		var name string
		var n float64
		if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Questions'").Scan(&name, &n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	const writers = 32
	next := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC) // fixed date: the rows' own times
	before, trips := questions(), sentToServer.Load()
	b.ResetTimer()
	for range writers {
		wg.Go(func() {
			for i := range next {
				id := fmt.Sprintf("%s-%07d", b.Name(), i)
				done := at.Add(time.Second)
				r := smsgw.MessageRecord{ID: id, CustomerID: "c1", EntryPoint: smsgw.EntryREST, From: "ACME", To: "+61412345678",
					Status: smsgw.StatusDelivered, ConnectorID: "upA", UpstreamID: "up-" + id, Segments: 1, Encoding: "GSM7",
					AcceptedAt: at, SentAt: &at, DoneAt: &done, UpdatedAt: done}
				if err := s.UpsertMessage(context.Background(), r); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range b.N {
		next <- i
	}
	close(next)
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(sentToServer.Load()-trips)/float64(b.N), "roundtrips/row")
	b.ReportMetric((questions()-before-1)/float64(b.N), "statements/row")
}
