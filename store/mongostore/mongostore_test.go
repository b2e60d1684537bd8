package mongostore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/groupcommit"
	"github.com/smsgw/smsgw/store/mongostore"
)

// open returns a store on a database of its own, on a real server.
func open(t *testing.T, opts ...mongostore.Option) (*mongostore.Store, string, string) {
	t.Helper()
	uri, db := testenv.MongoURI(t), testenv.MongoDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts = append([]mongostore.Option{mongostore.WithLogger(quiet)}, opts...)
	s, err := mongostore.Open(ctx, uri, db, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, uri, db
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

var quiet = slog.New(slog.DiscardHandler)

// t0 is the tests' base time, taken from the real clock: the server enforces
// the correlations' TTL index against its own clock, and the store stamps
// parked receipts, outbox acks and expiry records with time.Now, so a fixed
// date would age out of the TTL window once the calendar passed it. Whole
// seconds, as MongoDB keeps milliseconds.
var t0 = time.Now().UTC().Truncate(time.Second)

func TestAppendEventsIsIdempotent(t *testing.T) {
	t.Parallel()
	s, _, _ := open(t)
	c := ctx(t)
	accepted := smsgw.NewEvent("m1", "c1", 1, smsgw.EventAccepted, "accept", t0, map[string]any{"to": "+61412345678"})
	routed := smsgw.NewEvent("m1", "c1", 2, smsgw.EventRouted, "route", t0.Add(time.Second), nil)
	if err := s.AppendEvents(c, accepted, routed); err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	// A retry writes the same events again, one of them changed, plus a new one.
	changed := accepted
	changed.Data = map[string]any{"to": "changed"}
	sent := smsgw.NewEvent("m1", "c1", 3, smsgw.EventSent, "send", t0.Add(2*time.Second), nil)
	if err := s.AppendEvents(c, changed, routed, sent); err != nil {
		t.Fatalf("AppendEvents again: %v", err)
	}
	if err := s.AppendEvents(c, accepted); err != nil {
		t.Fatalf("AppendEvents of one duplicate: %v", err)
	}
	got, err := s.Events(c, "m1")
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d events, want 3: %+v", len(got), got)
	}
	for i, want := range []string{"m1:accept", "m1:route", "m1:send"} {
		if got[i].ID != want {
			t.Errorf("event %d is %s, want %s", i, got[i].ID, want)
		}
	}
	if got[0].Data["to"] != "+61412345678" {
		t.Errorf("the first write must win, got data %v", got[0].Data)
	}
}

func TestEventsAreInSequenceOrder(t *testing.T) {
	t.Parallel()
	s, _, _ := open(t)
	c := ctx(t)
	var events []smsgw.Event
	for _, seq := range []int{5, 1, 4, 2, 3} {
		events = append(events, smsgw.NewEvent("m2", "c1", seq, smsgw.EventReceipt, fmt.Sprintf("step%d", seq), t0.Add(time.Duration(seq)*time.Millisecond), nil))
	}
	// Events of another message must not show up.
	events = append(events, smsgw.NewEvent("m3", "c1", 0, smsgw.EventAccepted, "accept", t0, nil))
	for _, e := range events { // one at a time, so insertion order differs from seq order
		if err := s.AppendEvents(c, e); err != nil {
			t.Fatalf("AppendEvents: %v", err)
		}
	}
	got, err := s.Events(c, "m2")
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if len(got) != 5 {
		t.Fatalf("got %d events, want 5", len(got))
	}
	for i, e := range got {
		if e.Seq != i+1 || e.MessageID != "m2" || e.CustomerID != "c1" {
			t.Errorf("event %d: %+v", i, e)
		}
		if want := t0.Add(time.Duration(e.Seq) * time.Millisecond); !e.At.Equal(want) {
			t.Errorf("event %d at %v, want %v", i, e.At, want)
		}
	}
	none, err := s.Events(c, "nope")
	if err != nil || len(none) != 0 {
		t.Errorf("Events of an unknown message = %v, %v; want none", none, err)
	}
}

func TestEventDataRoundTrips(t *testing.T) {
	t.Parallel()
	s, _, _ := open(t)
	c := ctx(t)
	e := smsgw.NewEvent("m4", "c1", 1, smsgw.EventSent, "send", t0, map[string]any{
		"connector": "up1", "segments": 2, "route": map[string]any{"prefix": "+61", "weight": 10},
	})
	if err := s.AppendEvents(c, e); err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	got, err := s.Events(c, "m4")
	if err != nil || len(got) != 1 {
		t.Fatalf("Events = %v, %v", got, err)
	}
	d := got[0].Data
	if d["connector"] != "up1" || fmt.Sprint(d["segments"]) != "2" {
		t.Errorf("data = %#v", d)
	}
	route, ok := d["route"].(map[string]any)
	if !ok || route["prefix"] != "+61" {
		t.Errorf("nested data = %#v, want a map with prefix +61", d["route"])
	}
}

func TestAppendEventsRejectsEventsWithoutIDs(t *testing.T) {
	t.Parallel()
	s, _, _ := open(t)
	err := s.AppendEvents(ctx(t), smsgw.Event{MessageID: "m"})
	if smsgw.ErrorCode(err) != smsgw.EINVALID {
		t.Fatalf("AppendEvents without an ID = %v, want code %s", err, smsgw.EINVALID)
	}
}

func TestCorrelations(t *testing.T) {
	t.Parallel()
	s, _, _ := open(t)
	c := ctx(t)
	if _, ok, err := s.LookupCorrelation(c, "up1", "abc"); err != nil || ok {
		t.Fatalf("lookup before put = %v, %v; want not found", ok, err)
	}
	corr := smsgw.Correlation{ConnectorID: "up1", UpstreamID: "abc", MessageID: "m1", Segment: 2, CreatedAt: t0}
	for range 2 { // idempotent
		if err := s.PutCorrelation(c, corr); err != nil {
			t.Fatalf("PutCorrelation: %v", err)
		}
	}
	got, ok, err := s.LookupCorrelation(c, "up1", "abc")
	if err != nil || !ok {
		t.Fatalf("lookup = %v, %v", ok, err)
	}
	if got.MessageID != "m1" || got.Segment != 2 || got.ConnectorID != "up1" || got.UpstreamID != "abc" || !got.CreatedAt.Equal(t0) {
		t.Errorf("lookup = %+v", got)
	}
	// The same upstream ID on another connector is another correlation.
	if _, ok, _ := s.LookupCorrelation(c, "up2", "abc"); ok {
		t.Error("a correlation of up1 was found under up2")
	}
	// An upstream ID the SMSC reuses points to the newest message.
	if err := s.PutCorrelation(c, smsgw.Correlation{ConnectorID: "up1", UpstreamID: "abc", MessageID: "m9", Segment: 1}); err != nil {
		t.Fatalf("PutCorrelation: %v", err)
	}
	if got, _, _ := s.LookupCorrelation(c, "up1", "abc"); got.MessageID != "m9" || got.CreatedAt.IsZero() {
		t.Errorf("after reuse lookup = %+v, want m9 with a creation time", got)
	}
	if err := s.PutCorrelation(c, smsgw.Correlation{ConnectorID: "up1"}); smsgw.ErrorCode(err) != smsgw.EINVALID {
		t.Errorf("PutCorrelation of an empty correlation = %v, want %s", err, smsgw.EINVALID)
	}
}

// openLingering returns a store, through a wire counter, whose batches
// wait 200 ms for company, so that the writes of concurrent callers go out
// together.
func openLingering(t *testing.T) (*mongostore.Store, *wireCounter, *groupcommit.Metrics) {
	t.Helper()
	m, err := groupcommit.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	proxied, wc := startWireCounter(t, testenv.MongoURI(t))
	s, err := mongostore.Open(ctx(t), proxied, testenv.MongoDatabase(t), mongostore.WithLogger(quiet),
		mongostore.WithGroupCommit(groupcommit.Options{Linger: 200 * time.Millisecond}, m))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, wc, m
}

// Correlations written together go out as one insert; one whose upstream
// ID is already stored (reused by the SMSC, or written again by a retried
// send) replaces it, as the upsert it is retried as, and the others of its
// batch are stored all the same.
func TestBatchedCorrelationsInsertAndReplaceReused(t *testing.T) {
	t.Parallel()
	s, wc, m := openLingering(t)
	c := ctx(t)
	if err := s.PutCorrelation(c, smsgw.Correlation{ConnectorID: "up1", UpstreamID: "reused", MessageID: "old", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCorrelation(c, smsgw.Correlation{ConnectorID: "up1", UpstreamID: "again", MessageID: "m-again", Segment: 1, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	wc.reset()
	before := m.Batches("correlations")
	const n = 8
	errs := make([]error, n+2)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.PutCorrelation(c, smsgw.Correlation{ConnectorID: "up1", UpstreamID: fmt.Sprintf("new%d", i), MessageID: fmt.Sprintf("m%d", i), CreatedAt: t0})
		})
	}
	wg.Go(func() {
		errs[n] = s.PutCorrelation(c, smsgw.Correlation{ConnectorID: "up1", UpstreamID: "reused", MessageID: "newest", Segment: 2, CreatedAt: t0.Add(time.Minute)})
	})
	wg.Go(func() { // the same correlation again
		errs[n+1] = s.PutCorrelation(c, smsgw.Correlation{ConnectorID: "up1", UpstreamID: "again", MessageID: "m-again", Segment: 1, CreatedAt: t0})
	})
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("put %d: %v", i, err)
		}
	}
	// One insert a batch (the linger makes it one, or a few on a slow
	// machine), then one bulk upsert for those of the two already there
	// that it holds.
	batches := m.Batches("correlations") - before
	if ins, upd := wc.count("insert correlations"), wc.count("update correlations"); ins != int64(batches) || upd < 1 || upd > ins || batches >= n {
		t.Errorf("%d correlations in %d batches took %s, want one insert a batch and at most one update", n+2, batches, wc.breakdown(1))
	}
	for i := range n {
		if got, ok, err := s.LookupCorrelation(c, "up1", fmt.Sprintf("new%d", i)); err != nil || !ok || got.MessageID != fmt.Sprintf("m%d", i) {
			t.Errorf("new%d: %+v %v %v", i, got, ok, err)
		}
	}
	if got, ok, err := s.LookupCorrelation(c, "up1", "reused"); err != nil || !ok || got.MessageID != "newest" || got.Segment != 2 || !got.CreatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("reused: %+v %v %v, want the newest message", got, ok, err)
	}
	if got, ok, err := s.LookupCorrelation(c, "up1", "again"); err != nil || !ok || got.MessageID != "m-again" || got.Segment != 1 {
		t.Errorf("again: %+v %v %v", got, ok, err)
	}
}

// Recording a message's final event takes its correlations out of the
// collection receipts read, and the archive still knows them; another
// message's, and an upstream ID reused by a newer message, stay.
func TestFinalEventRetiresCorrelations(t *testing.T) {
	t.Parallel()
	s, uri, db := open(t)
	c := ctx(t)
	for _, corr := range []smsgw.Correlation{
		{ConnectorID: "up1", UpstreamID: "a1", MessageID: "m1", Segment: 1},
		{ConnectorID: "up1", UpstreamID: "a2", MessageID: "m1", Segment: 2},
		{ConnectorID: "up2", UpstreamID: "b1", MessageID: "m2", Segment: 1},
		{ConnectorID: "up1", UpstreamID: "r", MessageID: "m1", Segment: 3},
		{ConnectorID: "up1", UpstreamID: "r", MessageID: "m3", Segment: 1}, // the SMSC reused r
	} {
		if err := s.PutCorrelation(c, corr); err != nil {
			t.Fatal(err)
		}
	}
	final := smsgw.NewEvent("m1", "c1", 5, smsgw.EventFinal, "final", t0, map[string]any{"status": "DELIVERED"})
	receipt := smsgw.NewEvent("m1", "c1", 4, smsgw.EventReceipt, "receipt-1", t0, nil)
	if err := s.AppendEvents(c, receipt, final); err != nil {
		t.Fatal(err)
	}
	if err := s.RetireEnded(c); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a1", "a2"} {
		if got, ok, err := s.LookupCorrelation(c, "up1", id); err != nil || ok {
			t.Errorf("correlation %s of the ended message: %+v %v %v", id, got, ok, err)
		}
	}
	if got, ok, err := s.LookupCorrelation(c, "up2", "b1"); err != nil || !ok || got.MessageID != "m2" {
		t.Errorf("correlation of a message in flight: %+v %v %v", got, ok, err)
	}
	if got, ok, err := s.LookupCorrelation(c, "up1", "r"); err != nil || !ok || got.MessageID != "m3" {
		t.Errorf("reused upstream ID: %+v %v %v, want m3's", got, ok, err)
	}
	known, err := s.Correlated(c, []smsgw.Receipt{
		{ConnectorID: "up1", UpstreamID: "a1"}, {ConnectorID: "up1", UpstreamID: "never"},
		{ConnectorID: "up2", UpstreamID: "b1"}, {ConnectorID: "up2", UpstreamID: "a1"},
	})
	if err != nil || fmt.Sprint(known) != "[true false true false]" {
		t.Errorf("Correlated = %v %v, want [true false true false]", known, err)
	}
	// Recorded again by a retried activity: nothing changes.
	if err := s.AppendEvents(c, final); err != nil {
		t.Fatal(err)
	}
	if err := s.RetireEnded(c); err != nil {
		t.Fatal(err)
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	if n, err := client.Database(db).Collection(mongostore.CorrelationsCollection).CountDocuments(c, bson.D{}); err != nil || n != 2 {
		t.Errorf("%d correlations in flight (%v), want 2", n, err)
	}
}

// The correlations of ended messages move to the archive on their own,
// every period, and those still queued at Close move then; until they
// move, the message's correlation still answers (a receipt then finds a
// message that has ended).
func TestRetirementEveryPeriodAndAtClose(t *testing.T) {
	t.Parallel()
	uri, db := testenv.MongoURI(t), testenv.MongoDatabase(t)
	c := ctx(t)
	s, err := mongostore.Open(c, uri, db, mongostore.WithLogger(quiet), mongostore.WithRetireEvery(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	end := func(s *mongostore.Store, msg, upstream string) {
		t.Helper()
		if err := s.PutCorrelation(c, smsgw.Correlation{ConnectorID: "up1", UpstreamID: upstream, MessageID: msg, Segment: 1}); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendEvents(c, smsgw.NewEvent(msg, "c1", 5, smsgw.EventFinal, "final", t0, map[string]any{"status": "DELIVERED"})); err != nil {
			t.Fatal(err)
		}
	}
	end(s, "p1", "u-p1")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, ok, err := s.LookupCorrelation(c, "up1", "u-p1")
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ended message's correlation did not leave within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Close(c); err != nil {
		t.Fatal(err)
	}

	// A period far longer than the test: only Close moves it.
	s, err = mongostore.Open(c, uri, db, mongostore.WithLogger(quiet), mongostore.WithRetireEvery(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	end(s, "p2", "u-p2")
	if got, ok, err := s.LookupCorrelation(c, "up1", "u-p2"); err != nil || !ok || got.MessageID != "p2" {
		t.Fatalf("before the move: %+v %v %v, want p2's correlation", got, ok, err)
	}
	if err := s.Close(c); err != nil {
		t.Fatal(err)
	}
	s2, err := mongostore.Open(c, uri, db, mongostore.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close(c)
	for _, id := range []string{"u-p1", "u-p2"} {
		if _, ok, err := s2.LookupCorrelation(c, "up1", id); err != nil || ok {
			t.Errorf("correlation %s still in flight after its message ended (%v)", id, err)
		}
	}
	known, err := s2.Correlated(c, []smsgw.Receipt{{ConnectorID: "up1", UpstreamID: "u-p1"}, {ConnectorID: "up1", UpstreamID: "u-p2"}})
	if err != nil || fmt.Sprint(known) != "[true true]" {
		t.Errorf("Correlated = %v %v, want both archived", known, err)
	}
}

func TestExpireCorrelations(t *testing.T) {
	t.Parallel()
	s, _, _ := open(t, mongostore.WithCorrelationTTL(time.Hour))
	c := ctx(t)
	now := time.Now()
	old := smsgw.Correlation{ConnectorID: "up1", UpstreamID: "old", MessageID: "m1", CreatedAt: now.Add(-2 * time.Hour)}
	fresh := smsgw.Correlation{ConnectorID: "up1", UpstreamID: "new", MessageID: "m2", CreatedAt: now.Add(-time.Minute)}
	for _, corr := range []smsgw.Correlation{old, fresh} {
		if err := s.PutCorrelation(c, corr); err != nil {
			t.Fatalf("PutCorrelation: %v", err)
		}
	}
	n, err := s.ExpireCorrelations(c, now)
	if err != nil {
		t.Fatalf("ExpireCorrelations: %v", err)
	}
	// A server with TTL indexes may already have removed it itself.
	if n != 1 && !(s.ServerTTL() && n == 0) {
		t.Errorf("expired %d, want 1", n)
	}
	if _, ok, _ := s.LookupCorrelation(c, "up1", "old"); ok {
		t.Error("an expired correlation is still there")
	}
	if _, ok, _ := s.LookupCorrelation(c, "up1", "new"); !ok {
		t.Error("a fresh correlation was removed")
	}
	// The archive forgets it too.
	if known, err := s.Correlated(c, []smsgw.Receipt{{ConnectorID: "up1", UpstreamID: "old"}, {ConnectorID: "up1", UpstreamID: "new"}}); err != nil || fmt.Sprint(known) != "[false true]" {
		t.Errorf("Correlated after expiry = %v %v, want [false true]", known, err)
	}
}

// waitQueued waits until n items wait in store's batches.
func waitQueued(t *testing.T, m *groupcommit.Metrics, store string, n float64) {
	t.Helper()
	testenv.WaitFor(t, fmt.Sprintf("%v items waiting in the %s batches", n, store), func() bool {
		return testutil.ToFloat64(m.QueuedGauge(store)) == n
	})
}

// Events appended in the background (that a notification went out) are
// handed over at once, wait for the next append a message waits on and go
// in its insert; alone, they go after the lazy wait; Close writes those
// still waiting at once. Either way they are stored, and done hears of it.
func TestEventsAppendedInTheBackgroundGoWithTheNextAppend(t *testing.T) {
	t.Parallel()
	m, err := groupcommit.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	proxied, wc := startWireCounter(t, testenv.MongoURI(t))
	const lazyWait = time.Second
	db := testenv.MongoDatabase(t)
	open := func() *mongostore.Store {
		s, err := mongostore.Open(ctx(t), proxied, db, mongostore.WithLogger(quiet),
			mongostore.WithGroupCommit(groupcommit.Options{LazyWait: lazyWait}, m))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	c := ctx(t)
	wc.reset()
	written := make(chan error, 3)
	done := func(err error) { written <- err }

	notified := smsgw.NewEvent("m1", "c1", 6, smsgw.EventNotified, "notified-webhook-final", t0, map[string]any{"channel": "webhook"})
	s.AppendEventsInBackground(c, done, notified)
	waitQueued(t, m, "events", 1)
	time.Sleep(50 * time.Millisecond) // taken by the batcher, waiting
	if n := wc.count("insert events"); n != 0 {
		t.Fatalf("%d inserts before an append a message waits on: the background event did not wait", n)
	}
	final := smsgw.NewEvent("m2", "c1", 5, smsgw.EventAccepted, "accept", t0, nil)
	start := time.Now()
	if err := s.AppendEvents(c, final); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > lazyWait/2 {
		t.Errorf("the append waited on took %v: it waited for the background one's wait", took)
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if n := wc.count("insert events"); n != 1 {
		t.Errorf("%d inserts for an event appended in the background and one waited on, want 1 (%s)", n, wc.breakdown(2))
	}

	// Alone, an event appended in the background goes after the wait.
	alone := smsgw.NewEvent("m3", "c1", 6, smsgw.EventNotified, "notified-smpp-final", t0, nil)
	start = time.Now()
	s.AppendEventsInBackground(c, done, alone)
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < lazyWait*9/10 {
		t.Errorf("an event appended in the background, alone, was written after %v, before the lazy wait (%v)", took, lazyWait)
	}

	// Close writes what waits, at once, before it returns.
	closing := smsgw.NewEvent("m4", "c1", 6, smsgw.EventNotified, "notified-email-final", t0, nil)
	s.AppendEventsInBackground(c, done, closing)
	start = time.Now()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > lazyWait/2 {
		t.Errorf("Close took %v: it waited out the lazy wait", took)
	}
	select {
	case err := <-written:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatal("Close returned before the event appended in the background was written")
	}
	s.AppendEventsInBackground(c, done, closing)
	if err := <-written; !errors.Is(err, groupcommit.ErrClosed) {
		t.Errorf("appended in the background after Close: %v, want %v", err, groupcommit.ErrClosed)
	}

	s = open()
	for id, want := range map[string]string{"m1": "m1:notified-webhook-final", "m2": "m2:accept", "m3": "m3:notified-smpp-final", "m4": "m4:notified-email-final"} {
		got, err := s.Events(c, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != want {
			t.Errorf("events of %s: %+v, want %s", id, got, want)
		}
	}
}

// Lookups of parked receipts that come together share one query, and each
// gets its own receipts, oldest first.
func TestConcurrentParkedLookupsShareAQuery(t *testing.T) {
	t.Parallel()
	s, wc, _ := openLingering(t)
	c := ctx(t)
	const n = 8
	want := make([][]smsgw.Receipt, n)
	for i := range n {
		id := fmt.Sprintf("u%d", i)
		for k := range i % 3 { // none, one, or two (ENROUTE, then DELIVRD) an upstream ID
			want[i] = append(want[i], smsgw.Receipt{ConnectorID: "up1", UpstreamID: id, Stat: []string{"ENROUTE", "DELIVRD"}[k], ReceivedAt: t0.Add(time.Duration(k) * time.Minute)})
		}
		for _, r := range slices.Backward(want[i]) { // parked newest first: the answer is oldest first
			if err := s.ParkReceipt(c, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Another connector's receipt for the same upstream ID is not theirs.
	if err := s.ParkReceipt(c, smsgw.Receipt{ConnectorID: "up2", UpstreamID: "u2", Stat: "DELIVRD", ReceivedAt: t0}); err != nil {
		t.Fatal(err)
	}
	wc.reset()
	got := make([][]smsgw.Receipt, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = s.ParkedReceipts(c, "up1", fmt.Sprintf("u%d", i)) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("lookup %d: %v", i, errs[i])
		}
		if len(got[i]) != len(want[i]) {
			t.Fatalf("lookup %d: %+v, want %+v", i, got[i], want[i])
		}
		for k := range got[i] {
			if got[i][k].UpstreamID != want[i][k].UpstreamID || got[i][k].Stat != want[i][k].Stat || got[i][k].ConnectorID != "up1" {
				t.Errorf("lookup %d, receipt %d: %+v, want %+v", i, k, got[i][k], want[i][k])
			}
		}
	}
	if rt := wc.total(); rt >= n/2 {
		t.Errorf("%d concurrent lookups took %d round trips (%s), want them shared", n, rt, wc.breakdown(1))
	}
}

func TestParkedReceipts(t *testing.T) {
	t.Parallel()
	s, _, _ := open(t)
	c := ctx(t)
	enroute := smsgw.Receipt{ConnectorID: "up1", UpstreamID: "abc", Stat: "ENROUTE", ReceivedAt: t0}
	delivered := smsgw.Receipt{ConnectorID: "up1", UpstreamID: "abc", Stat: "DELIVRD", Err: "000", DoneAt: t0.Add(time.Minute), ReceivedAt: t0.Add(time.Minute)}
	other := smsgw.Receipt{ConnectorID: "up2", UpstreamID: "abc", Stat: "DELIVRD", ReceivedAt: t0}
	for _, r := range []smsgw.Receipt{enroute, delivered, delivered, other} {
		if err := s.ParkReceipt(c, r); err != nil {
			t.Fatalf("ParkReceipt: %v", err)
		}
	}
	got, err := s.ParkedReceipts(c, "up1", "abc")
	if err != nil {
		t.Fatalf("ParkedReceipts: %v", err)
	}
	if len(got) != 2 || got[0] != enroute || !got[1].DoneAt.Equal(delivered.DoneAt) || got[1].Err != "000" || got[1].Stat != "DELIVRD" {
		t.Fatalf("ParkedReceipts = %+v, want ENROUTE then DELIVRD", got)
	}
	if n, err := s.CountParked(c); err != nil || n != 3 {
		t.Errorf("CountParked = %d, %v; want 3", n, err)
	}
	if l, err := s.ListParked(c, time.Now().Add(time.Minute), "", 2); err != nil || len(l) != 2 {
		t.Errorf("ListParked(limit 2) = %v, %v", l, err)
	}
	if l, err := s.ListParked(c, time.Now().Add(-time.Hour), "", 10); err != nil || len(l) != 0 {
		t.Errorf("ListParked(older than an hour ago) = %v, %v; want none", l, err)
	}
	if took, err := s.TakeParked(c, enroute); err != nil || !took {
		t.Fatalf("TakeParked: %v %v", took, err)
	}
	if took, err := s.TakeParked(c, enroute); err != nil || took {
		t.Fatalf("TakeParked twice: %v %v, want false the second time", took, err)
	}
	got, _ = s.ParkedReceipts(c, "up1", "abc")
	if len(got) != 1 || got[0].Stat != "DELIVRD" {
		t.Errorf("after delete = %+v, want only DELIVRD", got)
	}
	if n, _ := s.CountParked(c); n != 2 {
		t.Errorf("CountParked after delete = %d, want 2", n)
	}
}

// TestReceiptRace checks the rule the receipt matcher relies on: the send
// side writes the correlation and then reads parked receipts; the receipt
// side parks and then looks up the correlation. Whatever the interleaving,
// at least one side sees the other.
func TestReceiptRace(t *testing.T) {
	t.Parallel()
	s, uri, db := open(t)
	// The sides use separate clients, as separate processes would.
	other, err := mongostore.Open(ctx(t), uri, db, mongostore.WithLogger(quiet))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer other.Close(context.Background())
	c := ctx(t)

	const rounds = 60
	var wg sync.WaitGroup
	errs := make(chan error, rounds)
	sem := make(chan struct{}, 8)
	for i := range rounds {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			id := fmt.Sprintf("race%d", i)
			corr := smsgw.Correlation{ConnectorID: "up1", UpstreamID: id, MessageID: "m" + id, Segment: 1}
			rcpt := smsgw.Receipt{ConnectorID: "up1", UpstreamID: id, Stat: "DELIVRD"}
			start := make(chan struct{})
			var sawReceipt, sawCorrelation bool
			var sendErr, recvErr error
			var side sync.WaitGroup
			side.Add(2)
			sendSide := func() {
				defer side.Done()
				<-start
				if sendErr = s.PutCorrelation(c, corr); sendErr != nil {
					return
				}
				var parked []smsgw.Receipt
				parked, sendErr = s.ParkedReceipts(c, "up1", id)
				sawReceipt = len(parked) > 0
			}
			receiptSide := func() {
				defer side.Done()
				<-start
				if recvErr = other.ParkReceipt(c, rcpt); recvErr != nil {
					return
				}
				_, sawCorrelation, recvErr = other.LookupCorrelation(c, "up1", id)
			}
			if i%2 == 0 { // start the two sides in both orders
				go sendSide()
				go receiptSide()
			} else {
				go receiptSide()
				go sendSide()
			}
			close(start)
			side.Wait()
			switch {
			case sendErr != nil || recvErr != nil:
				errs <- fmt.Errorf("%s: send side %v, receipt side %v", id, sendErr, recvErr)
			case !sawReceipt && !sawCorrelation:
				errs <- fmt.Errorf("%s: neither side saw the other", id)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Opening the store again with another correlation TTL changes what
// expires: the server's TTL index, where the server has them, and
// ExpireCorrelations both follow the new TTL.
func TestOpenTwiceAndChangeTTL(t *testing.T) {
	t.Parallel()
	s1, uri, db := open(t, mongostore.WithCorrelationTTL(48*time.Hour))
	c := ctx(t)
	now := time.Now()
	// 30 hours old: kept under a TTL of 48 hours, expired under one of 24.
	corr := smsgw.Correlation{ConnectorID: "up1", UpstreamID: "mid-aged", MessageID: "m1", CreatedAt: now.Add(-30 * time.Hour)}
	if err := s1.PutCorrelation(c, corr); err != nil {
		t.Fatal(err)
	}
	if n, err := s1.ExpireCorrelations(c, now); err != nil || n != 0 {
		t.Fatalf("under a TTL of 48h: expired %d (%v), want 0", n, err)
	}
	if _, ok, err := s1.LookupCorrelation(c, "up1", "mid-aged"); err != nil || !ok {
		t.Fatalf("under a TTL of 48h the correlation is gone (%v)", err)
	}

	s2, err := mongostore.Open(c, uri, db, mongostore.WithLogger(quiet), mongostore.WithCorrelationTTL(24*time.Hour))
	if err != nil {
		t.Fatalf("second Open with another TTL: %v", err)
	}
	defer s2.Close(context.Background())
	if s2.ServerTTL() != s1.ServerTTL() {
		t.Fatalf("the same server has TTL indexes for one store (%v) and not the other (%v)", s1.ServerTTL(), s2.ServerTTL())
	}
	if s2.ServerTTL() {
		if got := ttlIndexSeconds(t, uri, db); got != int32((24 * time.Hour).Seconds()) {
			t.Errorf("the TTL index expires after %d s, want a day", got)
		}
	}
	n, err := s2.ExpireCorrelations(c, now)
	if err != nil {
		t.Fatal(err)
	}
	// A server with TTL indexes may already have removed it itself.
	if n != 1 && !(s2.ServerTTL() && n == 0) {
		t.Errorf("under a TTL of 24h: expired %d, want 1", n)
	}
	if _, ok, _ := s2.LookupCorrelation(c, "up1", "mid-aged"); ok {
		t.Error("under a TTL of 24h a correlation 30h old is still there")
	}
}

// ttlIndexSeconds reads the expireAfterSeconds of the correlations' TTL index.
func ttlIndexSeconds(t *testing.T, uri, db string) int32 {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	specs, err := client.Database(db).Collection(mongostore.CorrelationsCollection).Indexes().ListSpecifications(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if s.Name == "createdAt_ttl" && s.ExpireAfterSeconds != nil {
			return *s.ExpireAfterSeconds
		}
	}
	t.Fatalf("no TTL index among %+v", specs)
	return 0
}

func TestUnreachableServerIsUnavailable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = mongostore.Open(c, "mongodb://"+addr+"/?serverSelectionTimeoutMS=300&connectTimeoutMS=300", "x")
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	if smsgw.ErrorCode(err) != smsgw.EUNAVAILABLE {
		t.Errorf("Open of a closed port = %v, want code %s", err, smsgw.EUNAVAILABLE)
	}
}

func TestOperationsOnAStoppedServerAreUnavailable(t *testing.T) {
	t.Parallel()
	dev := testenv.StartDevDB(t, "-mysql-addr", "", "-mongo-addr", "127.0.0.1:0", "-data", t.TempDir())
	s, err := mongostore.Open(ctx(t), dev.MongoURI+"?serverSelectionTimeoutMS=500", testenv.MongoDatabase(t), mongostore.WithLogger(quiet))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close(context.Background())
	if err := s.Ping(ctx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	dev.Stop()
	_, _, err = s.LookupCorrelation(ctx(t), "up1", "x")
	if smsgw.ErrorCode(err) != smsgw.EUNAVAILABLE {
		t.Errorf("lookup on a stopped server = %v, want code %s", err, smsgw.EUNAVAILABLE)
	}
}

// A shutdown with the server away does not wait out the driver's server
// selection to retire the ended messages' correlations: the TTL removes
// what stays.
func TestCloseWithTheServerAwayIsBounded(t *testing.T) {
	t.Parallel()
	dev := testenv.StartDevDB(t, "-mysql-addr", "", "-mongo-addr", "127.0.0.1:0", "-data", t.TempDir())
	s, err := mongostore.Open(ctx(t), dev.MongoURI, testenv.MongoDatabase(t), mongostore.WithLogger(quiet), mongostore.WithRetireEvery(time.Hour))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.PutCorrelation(ctx(t), smsgw.Correlation{ConnectorID: "up1", UpstreamID: "u-c1", MessageID: "c1", Segment: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvents(ctx(t), smsgw.NewEvent("c1", "c1", 5, smsgw.EventFinal, "final", t0, map[string]any{"status": "DELIVERED"})); err != nil {
		t.Fatal(err)
	}
	dev.Stop()
	// Until the driver has found the server gone: before, an operation
	// meets a refused connection at once.
	for {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		err := s.Ping(c)
		cancel()
		if err != nil {
			break
		}
	}
	start := time.Now()
	s.Close(context.Background())
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("Close with the server away took %v, want it bounded (the driver's server selection waits 30 s)", took)
	}
}

func TestOpenRejectsABadURI(t *testing.T) {
	t.Parallel()
	for _, uri := range []string{"", "http://x", "mongodb://127.0.0.1:1/?connectTimeoutMS=abc"} {
		_, err := mongostore.Open(ctx(t), uri, "db")
		if err == nil || smsgw.ErrorCode(err) == smsgw.EUNAVAILABLE {
			t.Errorf("Open(%q) = %v, want a configuration error", uri, err)
		}
	}
	if _, err := mongostore.Open(ctx(t), "mongodb://127.0.0.1:1/", ""); err == nil {
		t.Error("Open without a database name succeeded")
	}
}

// Concurrent callers share inserts; an event the server refuses fails only
// its own caller, and the events batched with it are stored.
func TestBatchedEventsFailOnlyTheBadOne(t *testing.T) {
	t.Parallel()
	m, err := groupcommit.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s, _, _ := open(t, mongostore.WithGroupCommit(groupcommit.Options{MaxWait: 20 * time.Millisecond}, m))
	const callers = 60
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := map[string]any{"n": i}
			if i == 17 {
				data = map[string]any{"$bad": "a field name the server refuses"}
			}
			errs[i] = s.AppendEvents(ctx(t), smsgw.NewEvent(fmt.Sprintf("b%02d", i), "c1", 1, smsgw.EventAccepted, "accepted", t0, data))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i == 17) != (err != nil) {
			t.Errorf("caller %d: %v", i, err)
		}
		evs, err := s.Events(ctx(t), fmt.Sprintf("b%02d", i))
		if err != nil || (i != 17) != (len(evs) == 1) {
			t.Errorf("events of caller %d: %v %v", i, evs, err)
		}
	}
	if n := m.Batches("events"); n == 0 || n >= callers {
		t.Errorf("%d batches for %d callers", n, callers)
	}
}

// The store keeps secondary indexes only where the server reads them. On
// devdb (FerretDB v1 on SQLite), which reads a whole collection for every
// query but one by a lone _id, it creates none, on a fresh database as on
// one where an earlier version left some, which it drops: each would only
// cost every insert. (MongoDB gets them all: the other tests' servers.)
func TestNoSecondaryIndexesOnTheEmbeddedServer(t *testing.T) {
	t.Parallel()
	dev := testenv.StartDevDB(t, "-mysql-addr", "", "-mongo-addr", "127.0.0.1:0", "-data", t.TempDir())
	c := ctx(t)
	client, err := mongo.Connect(options.Client().ApplyURI(dev.MongoURI))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())

	openAll := func(db string) *mongostore.Store {
		t.Helper()
		s, err := mongostore.Open(c, dev.MongoURI, db, mongostore.WithLogger(quiet))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close(context.Background()) })
		if err := s.CreateInboundIndexes(c); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRulesIndexes(c); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Outbox(c); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// secondary lists the indexes other than _id's on every collection.
	secondary := func(db string) []string {
		t.Helper()
		names, err := client.Database(db).ListCollectionNames(c, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for _, coll := range names {
			specs, err := client.Database(db).Collection(coll).Indexes().ListSpecifications(c)
			if err != nil {
				t.Fatal(err)
			}
			for _, sp := range specs {
				if sp.Name != "_id_" {
					found = append(found, coll+"."+sp.Name)
				}
			}
		}
		return found
	}

	fresh := testenv.MongoDatabase(t)
	s := openAll(fresh)
	if got := secondary(fresh); len(got) > 0 {
		t.Errorf("on a fresh database the store created %v", got)
	}
	e := smsgw.NewEvent("m1", "c1", 1, smsgw.EventAccepted, "accept", t0, nil)
	if err := s.AppendEvents(c, e); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Events(c, "m1"); err != nil || len(got) != 1 {
		t.Fatalf("Events = %v, %v; want the one appended", got, err)
	}

	// What an earlier version left behind.
	old := testenv.MongoDatabase(t)
	for _, ix := range []struct{ coll, name, key string }{
		{mongostore.EventsCollection, "messageId_seq", "messageId"},
		{mongostore.EventsCollection, "customerId_at", "customerId"},
		{mongostore.CorrelationsCollection, "messageId", "messageId"},
		{mongostore.CorrelationsCollection, "createdAt", "createdAt"},
		{mongostore.InboundCollection, "customerId_receivedAt", "customerId"},
	} {
		if _, err := client.Database(old).Collection(ix.coll).Indexes().CreateOne(c, mongo.IndexModel{
			Keys: bson.D{{Key: ix.key, Value: 1}}, Options: options.Index().SetName(ix.name),
		}); err != nil {
			t.Fatal(err)
		}
	}
	if got := secondary(old); len(got) != 5 {
		t.Fatalf("set-up: indexes %v, want 5", got)
	}
	openAll(old)
	if got := secondary(old); len(got) > 0 {
		t.Errorf("the store left %v", got)
	}
}
