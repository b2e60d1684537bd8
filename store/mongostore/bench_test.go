package mongostore_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/groupcommit"
	"github.com/smsgw/smsgw/store/mongostore"
)

// benchStore opens a store on a database of its own, through a wire
// counter, on the server testenv gives (devdb's FerretDB unless
// SMSGW_TEST_MONGODB_URI names another).
func benchStore(b *testing.B, uri string) (*mongostore.Store, *wireCounter, string) {
	b.Helper()
	proxied, wc := startWireCounter(b, uri)
	db := testenv.MongoDatabase(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// One message at a time: the look for parked receipts and the
	// notified event, written in the background, have no batch to ride
	// with, so they go after a millisecond instead of the default wait.
	m, err := groupcommit.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	s, err := mongostore.Open(ctx, proxied, db, mongostore.WithLogger(quiet),
		mongostore.WithGroupCommit(groupcommit.Options{LazyWait: time.Millisecond}, m))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, wc, db
}

// Outbox benchmark shape: like the SMPP channel and server under load.
const (
	benchWriters = 32 // workflows putting receipts at once
	benchWindow  = 10 // deliver_sm outstanding on the customer's receiver bind (DeliverWindow's default)
)

// BenchmarkOutbox moves b.N receipts through the SMPP outbox as the gateway
// does when the customer's receiver bind is held by another replica: 32
// writers put one item each at a time (the smpp channel), and one customer
// with a deliver window of 10 has them claimed, delivered (instantly here)
// and acknowledged. It reports the items through per second and the
// store's round trips per item.
//
// backlog: the writers put as fast as they can, so the outbox fills up and
// is drained (the cost of each query grows with the items waiting, on
// FerretDB). inflight=32: each writer waits for its item to be delivered
// before it puts the next, like 32 messages in flight whose receipts go
// back on a bind: the outbox holds at most 32.
func BenchmarkOutbox(b *testing.B) {
	uri := testenv.MongoURI(b)
	b.Run("backlog", func(b *testing.B) { benchOutbox(b, uri, false) })
	b.Run(fmt.Sprintf("inflight=%d", benchWriters), func(b *testing.B) { benchOutbox(b, uri, true) })
}

func benchOutbox(b *testing.B, uri string, closedLoop bool) {
	s, wc, _ := benchStore(b, uri)
	ctx := context.Background()
	ob, err := s.Outbox(ctx)
	if err != nil {
		b.Fatal(err)
	}
	created := time.Now().UTC().Truncate(time.Millisecond)
	delivered := make(map[string]chan struct{}, b.N)
	for i := range b.N {
		delivered[fmt.Sprintf("bench-%d", i)] = make(chan struct{})
	}
	wc.reset()
	b.ResetTimer()
	start := time.Now()

	wake := make(chan struct{}, 1)
	claimerGone := make(chan struct{})
	next := atomic.Int64{}
	var writers sync.WaitGroup
	for range benchWriters {
		writers.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				it := outboxItem(fmt.Sprintf("bench-%d", i), "acme", created.Add(time.Duration(i)*time.Microsecond))
				if err := ob.Put(ctx, it); err != nil {
					b.Error(err)
					return
				}
				select {
				case wake <- struct{}{}:
				default:
				}
				if closedLoop {
					select {
					case <-delivered[it.ID]:
					case <-claimerGone:
						return
					}
				}
			}
		})
	}

	var acked atomic.Int64
	done := make(chan struct{})
	slots := make(chan struct{}, benchWindow)
	var deliveries sync.WaitGroup
	// One claimer per customer takes as many items as the bind has free
	// deliver slots; each item is acknowledged once "delivered".
	var claimer sync.WaitGroup
	claimer.Go(func() {
		defer close(claimerGone)
		for {
			free := 0
			for free < benchWindow {
				select {
				case slots <- struct{}{}:
					free++
					continue
				default:
				}
				if free > 0 {
					break
				}
				select { // wait for a slot
				case slots <- struct{}{}:
					free++
				case <-done:
					return
				}
			}
			items, err := ob.Claim(ctx, "acme", "r1", time.Now(), time.Minute, free)
			if err != nil {
				b.Error(err)
				return
			}
			for range free - len(items) {
				<-slots
			}
			for _, it := range items {
				deliveries.Go(func() {
					defer func() { <-slots }()
					if ok, err := ob.Ack(ctx, it.ID, "r1"); err != nil || !ok {
						b.Errorf("Ack %s: %v %v", it.ID, ok, err)
					}
					close(delivered[it.ID])
					if acked.Add(1) == int64(b.N) {
						close(done)
					}
				})
			}
			if len(items) < free {
				select {
				case <-wake:
				case <-done:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
	})
	writers.Wait()
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d items acknowledged", acked.Load(), b.N)
	}
	claimer.Wait()
	deliveries.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "items/s")
	b.ReportMetric(float64(wc.total())/float64(b.N), "roundtrips/item")
	b.Logf("N=%d round trips per item: %s", b.N, wc.breakdown(b.N))
}

// BenchmarkMessageStore measures the event store's work for one message on
// the happy path (the correlation written at send and the parked receipts
// looked up, the correlation read on the receipt, the events recorded with
// the final status, the notification recorded) after 1,000 and after 50,000
// messages' worth of history: the cost per message must not grow with it.
// The history is preloaded with batched inserts, as the store leaves it.
func BenchmarkMessageStore(b *testing.B) {
	uri := testenv.MongoURI(b)
	for _, history := range []int{1000, 50000} {
		s, wc, db := benchStore(b, uri)
		preloadHistory(b, uri, db, history)
		b.Run(fmt.Sprintf("history=%d", history), func(b *testing.B) {
			ctx := context.Background()
			wc.reset()
			var steps stepTimes
			b.ResetTimer()
			for i := range b.N {
				messageHappyPath(b, ctx, s, fmt.Sprintf("run-%d-%d", b.N, i), &steps)
			}
			// The ended messages' correlations go in one delete, as the
			// store's period does.
			steps.time("retire", func() {
				if err := s.RetireEnded(ctx); err != nil {
					b.Fatal(err)
				}
			})
			b.StopTimer()
			if n := inFlight(b, uri, db); n != 0 {
				b.Fatalf("%d correlations left in flight after every message ended", n)
			}
			b.ReportMetric(float64(wc.total())/float64(b.N), "roundtrips/msg")
			b.Logf("N=%d round trips per message: %s", b.N, wc.breakdown(b.N))
			b.Logf("N=%d time per message: %s", b.N, steps.per(b.N))
		})
	}
}

// inFlight counts the correlations in flight.
func inFlight(b *testing.B, uri, db string) int64 {
	n, err := rawDatabase(b, uri, db).Collection(mongostore.CorrelationsCollection).CountDocuments(context.Background(), bson.D{})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// messageHappyPath is what the store does for one one-part message from
// its send to its notification.
func messageHappyPath(b *testing.B, ctx context.Context, s *mongostore.Store, id string, steps *stepTimes) {
	now := time.Now().UTC()
	c := smsgw.Correlation{ConnectorID: "up1", UpstreamID: "u-" + id, MessageID: id, Segment: 1, CreatedAt: now}
	steps.time("put correlation", func() {
		if err := s.PutCorrelation(ctx, c); err != nil {
			b.Fatal(err)
		}
	})
	steps.time("parked receipts", func() {
		if early, err := s.ParkedReceipts(ctx, c.ConnectorID, c.UpstreamID); err != nil || len(early) != 0 {
			b.Fatalf("ParkedReceipts: %v %v", early, err)
		}
	})
	steps.time("lookup correlation", func() {
		if got, ok, err := s.LookupCorrelation(ctx, c.ConnectorID, c.UpstreamID); err != nil || !ok || got.MessageID != id {
			b.Fatalf("LookupCorrelation: %+v %v %v", got, ok, err)
		}
	})
	steps.time("final record", func() {
		if err := s.AppendEvents(ctx, messageEvents(id, now)[:5]...); err != nil {
			b.Fatal(err)
		}
	})
	steps.time("notified", func() { // as the activities write it, waited for here
		written := make(chan error, 1)
		s.AppendEventsInBackground(ctx, func(err error) { written <- err }, messageEvents(id, now)[5])
		if err := <-written; err != nil {
			b.Fatal(err)
		}
	})
}

// stepTimes adds up the time of each step of a message.
type stepTimes struct {
	names []string
	total map[string]time.Duration
}

func (st *stepTimes) time(name string, f func()) {
	if st.total == nil {
		st.total = map[string]time.Duration{}
	}
	if _, ok := st.total[name]; !ok {
		st.names = append(st.names, name)
	}
	start := time.Now()
	f()
	st.total[name] += time.Since(start)
}

func (st *stepTimes) per(n int) string {
	parts := make([]string, len(st.names))
	for i, name := range st.names {
		parts[i] = fmt.Sprintf("%s %s", name, (st.total[name] / time.Duration(max(n, 1))).Round(10*time.Microsecond))
	}
	return strings.Join(parts, ", ")
}

// messageEvents are a delivered message's six events.
func messageEvents(id string, at time.Time) []smsgw.Event {
	var out []smsgw.Event
	for i, typ := range []string{smsgw.EventAccepted, smsgw.EventRouted, smsgw.EventSent, smsgw.EventReceipt, smsgw.EventFinal, smsgw.EventNotified} {
		data := map[string]any{"to": "+61412345678", "connector": "up1", "upstreamIds": []string{"u-" + id}}
		if typ == smsgw.EventFinal {
			data = map[string]any{"status": string(smsgw.StatusDelivered), "errorCode": "", "errorText": ""}
		}
		out = append(out, smsgw.NewEvent(id, "acme", i+1, typ, typ, at.Add(time.Duration(i)*time.Millisecond), data))
	}
	return out
}

// preloadHistory writes n ended messages' worth of what the store keeps,
// in batches: their events and their archived correlations (those in
// flight are gone once a message has ended).
func preloadHistory(b *testing.B, uri, db string, n int) {
	b.Helper()
	ctx := context.Background()
	raw := rawDatabase(b, uri, db)
	events := raw.Collection(mongostore.EventsCollection)
	corrs := raw.Collection(mongostore.CorrelationArchiveCollection)
	start := time.Now()
	at := time.Now().UTC().Add(-time.Hour)
	const batch = 500
	for from := 0; from < n; from += batch {
		var evs, cs []any
		for i := from; i < min(from+batch, n); i++ {
			id := fmt.Sprintf("old-%d", i)
			for _, e := range messageEvents(id, at) {
				evs = append(evs, e)
			}
			cs = append(cs, bson.D{
				{Key: "_id", Value: "up1:u-" + id}, {Key: "connectorId", Value: "up1"}, {Key: "upstreamId", Value: "u-" + id},
				{Key: "messageId", Value: id}, {Key: "segment", Value: 1}, {Key: "createdAt", Value: at},
			})
		}
		if _, err := events.InsertMany(ctx, evs); err != nil {
			b.Fatal(err)
		}
		if _, err := corrs.InsertMany(ctx, cs); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("preloaded %d messages (%d events) in %s", n, 6*n, time.Since(start).Round(time.Millisecond))
}

// BenchmarkPutCorrelation writes correlations from 32 senders at once, as
// messages in flight do at their sends, through the store's group commit,
// and reports the server's CPU per correlation beside the time: on a
// loaded machine the time moves with the neighbours, the CPU much less.
func BenchmarkPutCorrelation(b *testing.B) {
	uri := testenv.MongoURI(b)
	s, wc, _ := benchStore(b, uri)
	server := serverProcess(b, uri)
	ctx := context.Background()
	var seq atomic.Int64
	wc.reset()
	cpu0 := processCPU(b, server)
	b.SetParallelism(benchWriters / max(1, runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			c := smsgw.Correlation{ConnectorID: "up1", UpstreamID: fmt.Sprintf("u-%d-%d", b.N, n), MessageID: fmt.Sprintf("m-%d-%d", b.N, n), Segment: 1}
			if err := s.PutCorrelation(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	reportServerCPU(b, server, cpu0)
	b.ReportMetric(float64(wc.total())/float64(b.N), "roundtrips/op")
}

// BenchmarkOptedOut looks numbers up in a customer's opt-out list, as every
// submission does, 32 at a time, half of them on the list, with 1,000 and
// 50,000 numbers listed. A lookup by _id must cost the server the same
// however long the list: it reports the server's CPU a lookup.
func BenchmarkOptedOut(b *testing.B) {
	uri := testenv.MongoURI(b)
	server := serverProcess(b, uri)
	for _, size := range []int{1000, 50000} {
		s, _, db := benchStore(b, uri)
		preloadOptOuts(b, uri, db, size)
		// A list is in place long before the submissions that read it:
		// devdb indexes a new collection's lookups by _id within a second.
		time.Sleep(1500 * time.Millisecond)
		b.Run(fmt.Sprintf("list=%d", size), func(b *testing.B) {
			ctx := context.Background()
			var seq atomic.Int64
			cpu0 := processCPU(b, server)
			b.SetParallelism(benchWriters / max(1, runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := seq.Add(1) * 7919 % int64(2*size) // every other number is listed
					if _, err := s.OptedOut(ctx, "c1", "", optOutNumber(int(i))); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.StopTimer()
			reportServerCPU(b, server, cpu0)
		})
	}
}

func optOutNumber(i int) string { return fmt.Sprintf("+4479%08d", i) }

// preloadOptOuts lists every other number of 2n for customer c1, in
// batched inserts.
func preloadOptOuts(b *testing.B, uri, db string, n int) {
	b.Helper()
	ctx := context.Background()
	coll := rawDatabase(b, uri, db).Collection(mongostore.OptOutsCollection)
	const batch = 1000
	for from := 0; from < n; from += batch {
		docs := make([]any, 0, batch)
		for i := from; i < min(from+batch, n); i++ {
			number := optOutNumber(2 * i)
			docs = append(docs, bson.D{{Key: "_id", Value: mongostore.OptOutID("c1", "", number)}, {Key: "customerId", Value: "c1"}, {Key: "number", Value: number}})
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			b.Fatal(err)
		}
	}
}

// rawDatabase is a database of the server at uri reached with the driver
// alone, not through the store, disconnected when the benchmark ends.
func rawDatabase(b *testing.B, uri, db string) *mongo.Database {
	b.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client.Database(db)
}
