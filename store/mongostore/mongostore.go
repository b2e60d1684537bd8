// Package mongostore is the event store: each message's append-only history,
// the correlations from upstream message IDs back to our messages, and the
// delivery receipts that arrived before their correlation.
//
// It works on MongoDB and on FerretDB v1 alike, so it uses neither
// transactions nor change streams. Every write is acknowledged with a
// majority write concern before the call returns, which is what makes the
// receipt race safe (see ParkReceipt).
//
// The collections a message's path reads hold only what is in flight, so
// their cost does not grow with history (FerretDB reads a whole collection
// for every query but one by a single _id): a message's correlations move
// from the correlations collection to the archive within a second of its
// final status being recorded (with those of every message that ended
// meanwhile), and the append-only events are written on the message's
// path but never read there. On a server that reads no index but _id's
// (FerretDB v1 on SQLite) the store creates no other index, since each would only
// cost every insert (see probeIndexUse).
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/store/groupcommit"
)

// Collection names.
const (
	EventsCollection = "events"
	// CorrelationsCollection holds the correlations of the messages in
	// flight: written at the send, read on each receipt, removed when the
	// message's final status is recorded.
	CorrelationsCollection = "correlations"
	// CorrelationArchiveCollection keeps the correlations of messages that
	// have ended, for the correlation TTL, so that a receipt that comes
	// after its message ended is known for what it is (Correlated). It is
	// written when they leave the correlations and read only for receipts
	// no message in flight claims.
	CorrelationArchiveCollection = "correlations_archive"
	ParkedCollection             = "unmatched_receipts"
	IntentsCollection            = "submit_intents"
)

// DefaultCorrelationTTL is how long a correlation is kept when no
// WithCorrelationTTL option is given: far longer than any message validity.
const DefaultCorrelationTTL = 14 * 24 * time.Hour

// MongoDB error codes the store reacts to.
const (
	codeNotImplemented        = 238 // FerretDB: index option not implemented (TTL)
	codeIndexOptionsConflict  = 85  // same key, other options (a changed TTL)
	codeIndexKeySpecsConflict = 86
)

// what names the event store in Unavailable errors.
const what = "event store"

// Store is the event store. It is safe for concurrent use.
type Store struct {
	client       *mongo.Client
	db           *mongo.Database
	events       *mongo.Collection
	correlations *mongo.Collection
	archive      *mongo.Collection
	parked       *mongo.Collection
	intents      *mongo.Collection
	ttl          time.Duration
	retireEvery  time.Duration
	retire       *retirer
	serverTTL    bool
	// secondaryIndexes is whether the server reads through indexes on
	// fields other than _id (probeIndexUse).
	secondaryIndexes bool
	log              *slog.Logger
	now              func() time.Time

	// Events, correlations and intents are written, and parked receipts
	// looked up, in batches shared by concurrent callers (group commit);
	// see WithGroupCommit.
	batching     groupcommit.Options
	batchMetrics *groupcommit.Metrics
	eventWrites  *groupcommit.Committer[smsgw.Event]
	corrWrites   *groupcommit.Committer[correlationDoc]
	intentWrites *groupcommit.Committer[intentDoc]
	parkedReads  *groupcommit.Committer[*parkedLookup]

	closeMu sync.Mutex
	closers []func() // the batched writes of the outbox, stopped by Close
}

// Option changes how Open sets up the store.
type Option func(*Store)

// WithCorrelationTTL sets how long correlations are kept (DefaultCorrelationTTL
// when not given).
func WithCorrelationTTL(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.ttl = d
		}
	}
}

// WithLogger sets the logger (slog.Default when not given).
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		if l != nil {
			s.log = l
		}
	}
}

// WithClock sets the clock used for times the store fills in itself.
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// WithGroupCommit sets how events, correlations, intents and parked-receipt
// lookups are batched: those of concurrent callers go out together, each
// caller returning once its own are durable (or answered). m, when set,
// gets the batches' metrics.
func WithGroupCommit(o groupcommit.Options, m *groupcommit.Metrics) Option {
	return func(s *Store) {
		s.batching, s.batchMetrics = o, m
	}
}

// Open connects to the server at uri, pings it and creates the indexes the
// store needs in database. A server that cannot be reached gives an error
// with code smsgw.EUNAVAILABLE.
func Open(ctx context.Context, uri, database string, opts ...Option) (*Store, error) {
	if database == "" {
		return nil, errors.New("mongostore: database name is empty")
	}
	s := &Store{ttl: DefaultCorrelationTTL, retireEvery: DefaultRetireEvery, log: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	copts := options.Client().
		ApplyURI(uri).
		SetWriteConcern(writeconcern.Majority()).
		SetReadPreference(readpref.Primary()).
		SetBSONOptions(&options.BSONOptions{DefaultDocumentMap: true})
	if err := copts.Validate(); err != nil {
		return nil, fmt.Errorf("mongostore: uri: %w", err)
	}
	client, err := mongo.Connect(copts)
	if err != nil {
		return nil, fmt.Errorf("mongostore: connect: %w", wrap(err))
	}
	s.client = client
	s.db = client.Database(database)
	s.events = s.db.Collection(EventsCollection)
	s.correlations = s.db.Collection(CorrelationsCollection)
	s.archive = s.db.Collection(CorrelationArchiveCollection)
	s.parked = s.db.Collection(ParkedCollection)
	s.intents = s.db.Collection(IntentsCollection)
	if err := s.Ping(ctx); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	if err := s.probeIndexUse(ctx); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	if err := s.createIndexes(ctx); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	s.eventWrites = groupcommit.New("events", s.insertEvents, s.batching, s.batchMetrics)
	s.corrWrites = groupcommit.New("correlations", s.writeCorrelations, s.batching, s.batchMetrics)
	s.intentWrites = groupcommit.New("submit_intents", s.insertIntents, s.batching, s.batchMetrics)
	s.parkedReads = groupcommit.New("parked_lookups", s.lookUpParked, s.batching, s.batchMetrics)
	s.retire = newRetirer(s, s.retireEvery)
	return s, nil
}

// closeTimeout bounds what Close does once the queued writes are written
// (each batch of those has its own bound): with the server away, a
// shutdown does not wait out the driver's server selection (30 s by
// default) for the retirement and for ending the client's sessions, which
// the server expires by itself.
const closeTimeout = 10 * time.Second

// Close writes what is still queued (events appended in the background
// too, without their lazy wait), moves the ended messages'
// correlations to the archive and disconnects from the server; the last
// two take at most closeTimeout.
func (s *Store) Close(ctx context.Context) error {
	s.closeMu.Lock()
	closers := s.closers
	s.closers = nil
	s.closeMu.Unlock()
	for _, c := range closers {
		c()
	}
	s.eventWrites.Close()
	s.corrWrites.Close()
	s.intentWrites.Close()
	s.parkedReads.Close()
	ctx, cancel := context.WithTimeout(ctx, closeTimeout)
	defer cancel()
	s.retire.close(ctx)
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("mongostore: close: %w", err)
	}
	return nil
}

// onClose has Close run f first.
func (s *Store) onClose(f func()) {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	s.closers = append(s.closers, f)
}

// Ping checks that the primary answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("mongostore: ping: %w", wrap(err))
	}
	return nil
}

// ServerTTL reports whether the server removes expired correlations itself
// (a TTL index). FerretDB v1 does not; call ExpireCorrelations periodically
// there.
func (s *Store) ServerTTL() bool { return s.serverTTL }

func (s *Store) createIndexes(ctx context.Context) error {
	indexes := []struct {
		coll *mongo.Collection
		name string
		keys bson.D
	}{
		{s.events, "messageId_seq", bson.D{{Key: "messageId", Value: 1}, {Key: "seq", Value: 1}}},
		{s.events, "customerId_at", bson.D{{Key: "customerId", Value: 1}, {Key: "at", Value: 1}}},
		{s.correlations, "messageId", bson.D{{Key: "messageId", Value: 1}}},
		{s.parked, "connectorId_upstreamId", bson.D{{Key: "connectorId", Value: 1}, {Key: "upstreamId", Value: 1}}},
		{s.parked, "parkedAt", bson.D{{Key: "parkedAt", Value: 1}}},
	}
	// One index per command: FerretDB v1 fails a createIndexes that lists
	// several indexes when some of them already exist.
	for _, ix := range indexes {
		if err := s.ensureIndex(ctx, ix.coll, ix.name, ix.keys); err != nil {
			return err
		}
	}
	for _, coll := range []*mongo.Collection{s.correlations, s.archive, s.intents} {
		if err := s.createTTLIndex(ctx, coll); err != nil {
			return err
		}
	}
	return nil
}

// createTTLIndex puts a TTL index on coll.createdAt, or adjusts the
// one already there when the TTL has changed. Where the server has no TTL
// indexes (FerretDB v1) it makes a plain index instead, so that
// ExpireCorrelations stays cheap where the server reads indexes.
func (s *Store) createTTLIndex(ctx context.Context, coll *mongo.Collection) error {
	secs := int32(s.ttl / time.Second)
	_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "createdAt", Value: 1}},
		Options: options.Index().SetName("createdAt_ttl").SetExpireAfterSeconds(secs),
	})
	var ce mongo.CommandError
	switch {
	case err == nil:
		s.serverTTL = true
		return nil
	case errors.As(err, &ce) && (ce.Code == codeIndexOptionsConflict || ce.Code == codeIndexKeySpecsConflict):
		res := s.db.RunCommand(ctx, bson.D{
			{Key: "collMod", Value: coll.Name()},
			{Key: "index", Value: bson.D{{Key: "name", Value: "createdAt_ttl"}, {Key: "expireAfterSeconds", Value: secs}}},
		})
		if err := res.Err(); err != nil {
			return fmt.Errorf("mongostore: change the TTL of %s: %w", coll.Name(), wrap(err))
		}
		s.serverTTL = true
		return nil
	case errors.As(err, &ce) && ce.Code == codeNotImplemented:
		if coll == s.correlations {
			s.log.Info("the server has no TTL indexes; expired correlations and submission intents are removed by ExpireCorrelations", "ttl", s.ttl)
		}
		return s.ensureIndex(ctx, coll, "createdAt", bson.D{{Key: "createdAt", Value: 1}})
	default:
		return fmt.Errorf("mongostore: create TTL index on %s: %w", coll.Name(), wrap(err))
	}
}

// AppendEvents records events. It is idempotent: an event whose ID is
// already stored is skipped, so an activity retry never writes twice. Times
// are kept to the millisecond.
//
// Recording a message's final event (smsgw.EventFinal) also retires its
// correlations: no receipt can change the message any more, so they leave
// the collection each receipt reads (the archive still knows them), with
// those of every message that ended in the same period, in one move
// (see retirer).
func (s *Store) AppendEvents(ctx context.Context, events ...smsgw.Event) error {
	if err := checkEvents(events); err != nil {
		return err
	}
	if err := s.eventWrites.Do(ctx, events...); err != nil {
		return fmt.Errorf("mongostore: append %d events: %w", len(events), err)
	}
	return nil
}

// AppendEventsInBackground is AppendEvents for events nobody waits on
// (that a notification went out, written once the customer heard): it
// returns once they are queued, at once unless the batches are full, and
// the events go with the next batch of events written for a message on
// its way, or on their own after the batches' lazy wait
// (-store-batch-lazy-wait). done, when not nil, gets the outcome; it is
// called on the batches' goroutine and must not block. Close writes those
// still queued; a process killed before they are written loses them.
func (s *Store) AppendEventsInBackground(ctx context.Context, done func(error), events ...smsgw.Event) {
	if done == nil {
		done = func(error) {}
	}
	if err := checkEvents(events); err != nil {
		done(err)
		return
	}
	wrapped := func(err error) {
		if err != nil {
			err = fmt.Errorf("mongostore: append %d events: %w", len(events), err)
		}
		done(err)
	}
	if err := s.eventWrites.DoLazyThen(ctx, wrapped, events...); err != nil {
		wrapped(err)
	}
}

func checkEvents(events []smsgw.Event) error {
	for i, e := range events {
		if e.ID == "" || e.MessageID == "" {
			return smsgw.Errorf(smsgw.EINVALID, "event %d has no ID or message ID", i)
		}
	}
	return nil
}

// insertEvents writes a batch of events in one unordered insert. An event
// already stored (a retry) counts as written. The messages whose final
// event is written have their correlations queued for retirement.
func (s *Store) insertEvents(ctx context.Context, events []smsgw.Event) []error {
	docs := make([]any, len(events))
	for i, e := range events {
		docs[i] = e
	}
	_, err := s.events.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	errs := itemErrors(err, len(events))
	var ended []string
	for i, e := range events {
		if e.Type == smsgw.EventFinal && (errs == nil || errs[i] == nil) {
			ended = append(ended, e.MessageID)
		}
	}
	s.retire.add(ended)
	return errs
}

// retireCorrelations moves the correlations of messages that have ended
// into the archive: it copies them there, then deletes them. It selects
// by message ID, not by the upstream IDs the messages were given: an
// upstream ID the SMSC reused may already point to a newer message, whose
// correlation stays. Archived first, an upstream ID is always in one of
// the two (Correlated reads both); the archive keeps the first message an
// ID was given to, as all it answers is whether the ID was used.
func (s *Store) retireCorrelations(ctx context.Context, messageIDs []string) error {
	ended := bson.D{{Key: "messageId", Value: bson.D{{Key: "$in", Value: messageIDs}}}}
	cur, err := s.correlations.Find(ctx, ended)
	if err != nil {
		return fmt.Errorf("read the correlations of %d ended messages: %w", len(messageIDs), wrap(err))
	}
	var docs []correlationDoc
	if err := cur.All(ctx, &docs); err != nil {
		return fmt.Errorf("read the correlations of %d ended messages: %w", len(messageIDs), wrap(err))
	}
	if len(docs) == 0 {
		return nil
	}
	archive := make([]any, len(docs))
	for i, d := range docs {
		archive[i] = d
	}
	_, err = s.archive.InsertMany(ctx, archive, options.InsertMany().SetOrdered(false))
	for _, e := range itemErrors(err, len(docs)) {
		if e != nil {
			return fmt.Errorf("archive the correlations of %d ended messages: %w", len(messageIDs), wrap(e))
		}
	}
	// Only those archived go: one written for an ended message since the
	// find (a late answer) stays until the correlation TTL, and a receipt
	// that finds it is parked and dropped as late (upstream.Matcher).
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	archivedOnes := bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}, ended[0]}
	if _, err := s.correlations.DeleteMany(ctx, archivedOnes); err != nil {
		return fmt.Errorf("retire the correlations of %d ended messages: %w", len(messageIDs), wrap(err))
	}
	return nil
}

// itemErrors spreads the error of a bulk write of n documents over them:
// nil for all when it succeeded, the error of each document that failed
// (a duplicate key is no failure: the document is stored), and the whole
// error for all when the write failed as a whole.
func itemErrors(err error, n int) []error {
	if err == nil {
		return nil
	}
	errs := make([]error, n)
	var bwe mongo.BulkWriteException
	isBulk := errors.As(err, &bwe)
	if isBulk && bwe.WriteConcernError == nil && len(bwe.WriteErrors) > 0 {
		failed := false
		for _, we := range bwe.WriteErrors {
			if we.Code == 11000 || we.Code == 11001 || we.Index < 0 || we.Index >= n {
				continue
			}
			errs[we.Index], failed = fmt.Errorf("document %d: %w", we.Index, we), true
		}
		if !failed {
			return nil
		}
		return errs
	}
	if !isBulk && mongo.IsDuplicateKeyError(err) {
		return nil
	}
	// A write concern not met fails every item: none is known durable.
	return sameError(wrap(err), n)
}

// sameError is the outcome of a batch of n writes that failed as a whole.
func sameError(err error, n int) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// Events returns a message's events in sequence order (ties by ID).
func (s *Store) Events(ctx context.Context, messageID string) ([]smsgw.Event, error) {
	cur, err := s.events.Find(ctx, bson.D{{Key: "messageId", Value: messageID}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongostore: events of %s: %w", messageID, wrap(err))
	}
	events := []smsgw.Event{}
	if err := cur.All(ctx, &events); err != nil {
		return nil, fmt.Errorf("mongostore: events of %s: %w", messageID, wrap(err))
	}
	return events, nil
}

// correlationDoc is a correlation as stored.
type correlationDoc struct {
	ID          string    `bson:"_id"`
	ConnectorID string    `bson:"connectorId"`
	UpstreamID  string    `bson:"upstreamId"`
	MessageID   string    `bson:"messageId"`
	Segment     int       `bson:"segment"`
	CreatedAt   time.Time `bson:"createdAt"`
}

func correlationKey(connectorID, upstreamID string) string { return connectorID + ":" + upstreamID }

// PutCorrelation records which message and segment an upstream ID belongs
// to. Writing the same correlation again changes nothing; an upstream ID the
// SMSC has reused points to the newest message. CreatedAt defaults to now.
// The write is acknowledged before PutCorrelation returns, so a receipt
// parked after this call finds it, and a receipt parked before it is
// returned by ParkedReceipts.
func (s *Store) PutCorrelation(ctx context.Context, c smsgw.Correlation) error {
	if c.ConnectorID == "" || c.UpstreamID == "" || c.MessageID == "" {
		return smsgw.Errorf(smsgw.EINVALID, "correlation needs a connector, an upstream ID and a message ID")
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	id := correlationKey(c.ConnectorID, c.UpstreamID)
	doc := correlationDoc{ID: id, ConnectorID: c.ConnectorID, UpstreamID: c.UpstreamID, MessageID: c.MessageID, Segment: c.Segment, CreatedAt: c.CreatedAt.UTC()}
	if err := s.corrWrites.Do(ctx, doc); err != nil {
		return fmt.Errorf("mongostore: put correlation %s: %w", id, err)
	}
	return nil
}

// writeCorrelations writes a batch of correlations: first as one unordered
// insert, which is what almost every correlation needs (its upstream ID is
// new), then, for those whose _id was already there, as upserts that
// replace what is stored: the same correlation written again by a retried
// send, or an upstream ID the SMSC has reused, which then points to the
// newest message. An insert of the batch costs the server one write where
// an upsert costs a lookup and a write a document (FerretDB runs each
// upsert on its own). Two upserts racing on a new _id end with one stored:
// the other one's duplicate key error is no failure. The archive learns
// them when their message ends (retireCorrelations).
func (s *Store) writeCorrelations(ctx context.Context, docs []correlationDoc) []error {
	_, err := s.correlations.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return nil
	}
	dups, ok := duplicateIndexes(err, len(docs))
	if !ok {
		return itemErrors(err, len(docs))
	}
	errs := itemErrors(err, len(docs)) // those refused for another reason, if any
	// One upsert an _id, of its last copy in the batch: the newest wins, as
	// it did when the batch went out as upserts in the order given.
	last := map[string]int{}
	for _, d := range dups {
		last[docs[d].ID] = d
	}
	var again []int
	for _, d := range dups {
		if last[docs[d].ID] == d {
			again = append(again, d)
		}
	}
	if len(again) == 0 {
		return errs
	}
	models := make([]mongo.WriteModel, len(again))
	for i, d := range again {
		models[i] = mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: docs[d].ID}}).SetReplacement(docs[d]).SetUpsert(true)
	}
	_, err = s.correlations.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	upserted := itemErrors(err, len(again))
	if upserted == nil {
		return errs
	}
	if errs == nil {
		errs = make([]error, len(docs))
	}
	byID := map[string]error{}
	for i, d := range again {
		if upserted[i] != nil {
			byID[docs[d].ID] = fmt.Errorf("correlation %s, upserted: %w", docs[d].ID, upserted[i])
		}
	}
	for _, d := range dups { // every copy of an _id shares its upsert's outcome
		if e := byID[docs[d].ID]; e != nil {
			errs[d] = e
		}
	}
	return errs
}

// duplicateIndexes returns the positions, in a batch of n, of the
// documents that an unordered insert refused for a duplicate _id. ok is
// false when err is not a bulk write's per-document errors (the server
// away, a write concern not met): then nothing is known written.
func duplicateIndexes(err error, n int) (dups []int, ok bool) {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return nil, false
	}
	for _, we := range bwe.WriteErrors {
		if (we.Code == 11000 || we.Code == 11001) && we.Index >= 0 && we.Index < n {
			dups = append(dups, we.Index)
		}
	}
	return dups, true
}

// LookupCorrelation finds the message an upstream ID belongs to. ok is false
// when there is none.
func (s *Store) LookupCorrelation(ctx context.Context, connectorID, upstreamID string) (c smsgw.Correlation, ok bool, err error) {
	id := correlationKey(connectorID, upstreamID)
	var doc correlationDoc
	err = s.correlations.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return smsgw.Correlation{}, false, nil
	}
	if err != nil {
		return smsgw.Correlation{}, false, fmt.Errorf("mongostore: look up correlation %s: %w", id, wrap(err))
	}
	return smsgw.Correlation{
		ConnectorID: doc.ConnectorID,
		UpstreamID:  doc.UpstreamID,
		MessageID:   doc.MessageID,
		Segment:     doc.Segment,
		CreatedAt:   doc.CreatedAt,
	}, true, nil
}

// Correlated reports, for each receipt, whether its upstream ID was given
// to a message within the correlation TTL, in flight or ended: the
// correlations hold those of messages in flight, the archive those of
// messages that ended. A receipt whose upstream ID is correlated but not
// in flight (LookupCorrelation finds nothing) came after its message
// ended. It reads the archive, which grows with history: it is for
// receipts no message in flight claims, never for the message's own path.
func (s *Store) Correlated(ctx context.Context, receipts []smsgw.Receipt) ([]bool, error) {
	if len(receipts) == 0 {
		return nil, nil
	}
	keys := make([]string, len(receipts))
	for i, r := range receipts {
		keys[i] = correlationKey(r.ConnectorID, r.UpstreamID)
	}
	// The correlations are read first: one retired meanwhile was copied
	// into the archive before it left them, so the archive, read second,
	// has it.
	inFlight, err := stored(ctx, s.correlations, keys)
	if err != nil {
		return nil, fmt.Errorf("mongostore: read the correlations: %w", err)
	}
	archived, err := stored(ctx, s.archive, keys)
	if err != nil {
		return nil, fmt.Errorf("mongostore: read the correlation archive: %w", err)
	}
	out := make([]bool, len(receipts))
	for i, k := range keys {
		out[i] = archived[k] || inFlight[k]
	}
	return out, nil
}

// stored reads which of ids are the _id of a document in coll, in one
// query.
func stored(ctx context.Context, coll *mongo.Collection, ids []string) (map[string]bool, error) {
	cur, err := coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, wrap(err)
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrap(err)
	}
	out := make(map[string]bool, len(docs))
	for _, d := range docs {
		out[d.ID] = true
	}
	return out, nil
}

// ExpireCorrelations deletes correlations (in flight and archived) and
// submission intents created more than the TTL before now, and returns how
// many it deleted from the correlations in flight. Servers with TTL indexes do this themselves
// (see ServerTTL); calling it there is harmless.
func (s *Store) ExpireCorrelations(ctx context.Context, now time.Time) (int64, error) {
	old := bson.D{{Key: "createdAt", Value: bson.D{{Key: "$lt", Value: now.Add(-s.ttl).UTC()}}}}
	res, err := s.correlations.DeleteMany(ctx, old)
	if err != nil {
		return 0, fmt.Errorf("mongostore: expire correlations: %w", wrap(err))
	}
	if _, err := s.archive.DeleteMany(ctx, old); err != nil {
		return res.DeletedCount, fmt.Errorf("mongostore: expire archived correlations: %w", wrap(err))
	}
	if _, err := s.intents.DeleteMany(ctx, old); err != nil {
		return res.DeletedCount, fmt.Errorf("mongostore: expire submission intents: %w", wrap(err))
	}
	return res.DeletedCount, nil
}

// parkedDoc is a parked receipt as stored.
type parkedDoc struct {
	ID          string    `bson:"_id"`
	ConnectorID string    `bson:"connectorId"`
	UpstreamID  string    `bson:"upstreamId"`
	Stat        string    `bson:"stat"`
	Err         string    `bson:"err,omitempty"`
	DoneAt      time.Time `bson:"doneAt,omitempty"`
	ReceivedAt  time.Time `bson:"receivedAt"`
	ParkedAt    time.Time `bson:"parkedAt"`
	Raw         string    `bson:"raw,omitempty"`
}

func (d parkedDoc) receipt() smsgw.Receipt {
	return smsgw.Receipt{ConnectorID: d.ConnectorID, UpstreamID: d.UpstreamID, Stat: d.Stat, Err: d.Err, DoneAt: d.DoneAt, ReceivedAt: d.ReceivedAt, Raw: d.Raw}
}

func parkedKey(r smsgw.Receipt) string { return r.ParkedKey() }

// ParkReceipt keeps a receipt that matched no correlation, until
// re-matching finds its message. The same receipt parked twice is kept once;
// receipts with different states for one upstream ID (ENROUTE, then DELIVRD)
// are kept apart.
//
// The race with the send side is closed by ordering: the send side calls
// PutCorrelation and then ParkedReceipts; the receipt side calls ParkReceipt
// and then LookupCorrelation. Both writes are acknowledged before the reads
// run, so at least one side sees the other.
func (s *Store) ParkReceipt(ctx context.Context, r smsgw.Receipt) error {
	if r.ConnectorID == "" || r.UpstreamID == "" {
		return smsgw.Errorf(smsgw.EINVALID, "receipt needs a connector and an upstream ID")
	}
	now := s.now().UTC()
	if r.ReceivedAt.IsZero() {
		r.ReceivedAt = now
	}
	doc := parkedDoc{
		ID: parkedKey(r), ConnectorID: r.ConnectorID, UpstreamID: r.UpstreamID, Stat: r.Stat, Err: r.Err,
		DoneAt: r.DoneAt.UTC(), ReceivedAt: r.ReceivedAt.UTC(), ParkedAt: now, Raw: r.Raw,
	}
	_, err := s.parked.InsertOne(ctx, doc)
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("mongostore: park receipt %s: %w", doc.ID, wrap(err))
	}
	return nil
}

// ParkedReceipts returns the receipts parked for an upstream ID, in the
// order they were received.
//
// The lookups of concurrent sends are batched like writes (group commit):
// one query for the upstream IDs asked for together, so a batch of
// correlations written together costs one read of the parked receipts,
// not one each. No message waits on a lookup (the send returned once its
// correlation was written, and Matcher.Correlate looks in the
// background), so the lookups wait for each other up to the batches' lazy
// wait (-store-batch-lazy-wait). A lookup is still sent
// only after its caller asked, so after its caller's correlation was
// written (see ParkReceipt for why that order matters).
func (s *Store) ParkedReceipts(ctx context.Context, connectorID, upstreamID string) ([]smsgw.Receipt, error) {
	q := &parkedLookup{connectorID: connectorID, upstreamID: upstreamID}
	if err := s.parkedReads.DoLazy(ctx, q); err != nil {
		return nil, fmt.Errorf("mongostore: receipts parked under %s %s: %w", connectorID, upstreamID, err)
	}
	return q.found, nil
}

// parkedLookup is one caller's question to a batch of lookups, and its
// answer.
type parkedLookup struct {
	connectorID, upstreamID string
	found                   []smsgw.Receipt
}

// lookUpParked answers a batch of lookups with one query, sorted as each
// lookup wants its receipts: oldest first.
func (s *Store) lookUpParked(ctx context.Context, qs []*parkedLookup) []error {
	ask := make(bson.A, 0, len(qs))
	for _, q := range qs {
		ask = append(ask, bson.D{{Key: "connectorId", Value: q.connectorID}, {Key: "upstreamId", Value: q.upstreamID}})
	}
	found, err := s.findParked(ctx, bson.D{{Key: "$or", Value: ask}},
		bson.D{{Key: "receivedAt", Value: 1}, {Key: "parkedAt", Value: 1}, {Key: "_id", Value: 1}}, 0)
	if err != nil {
		errs := make([]error, len(qs))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	for _, q := range qs {
		q.found = nil
		for _, r := range found {
			if r.ConnectorID == q.connectorID && r.UpstreamID == q.upstreamID {
				q.found = append(q.found, r)
			}
		}
	}
	return nil
}

// TakeParked removes a parked receipt and reports whether this call removed
// it. Of several callers racing to deliver the same parked receipt, exactly
// one gets true: that one signals it.
func (s *Store) TakeParked(ctx context.Context, r smsgw.Receipt) (bool, error) {
	id := parkedKey(r)
	res, err := s.parked.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return false, fmt.Errorf("mongostore: take parked receipt %s: %w", id, wrap(err))
	}
	return res.DeletedCount == 1, nil
}

// ListParked returns up to limit receipts parked before olderThan whose
// ParkedKey comes after after (all when after is ""), in the order of
// their keys, for re-matching: a caller that goes on from the last key it
// was given reaches every parked receipt, however many stay parked. A
// limit of 0 or less means 100.
func (s *Store) ListParked(ctx context.Context, olderThan time.Time, after string, limit int) ([]smsgw.Receipt, error) {
	if limit <= 0 {
		limit = 100
	}
	filter := bson.D{{Key: "parkedAt", Value: bson.D{{Key: "$lt", Value: olderThan.UTC()}}}}
	if after != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}})
	}
	return s.findParked(ctx, filter, bson.D{{Key: "_id", Value: 1}}, limit)
}

// CountParked returns how many receipts are parked.
func (s *Store) CountParked(ctx context.Context) (int64, error) {
	n, err := s.parked.CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("mongostore: count parked receipts: %w", wrap(err))
	}
	return n, nil
}

func (s *Store) findParked(ctx context.Context, filter, sort bson.D, limit int) ([]smsgw.Receipt, error) {
	fo := options.Find().SetSort(sort)
	if limit > 0 {
		fo.SetLimit(int64(limit))
	}
	cur, err := s.parked.Find(ctx, filter, fo)
	if err != nil {
		return nil, fmt.Errorf("mongostore: find parked receipts: %w", wrap(err))
	}
	var docs []parkedDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongostore: find parked receipts: %w", wrap(err))
	}
	out := make([]smsgw.Receipt, len(docs))
	for i, d := range docs {
		out[i] = d.receipt()
	}
	return out, nil
}

// onlyDuplicates reports whether err from an unordered insert holds nothing
// but duplicate key errors: every new document was written.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) {
		if bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
			return false
		}
		for _, we := range bwe.WriteErrors {
			if we.Code != 11000 && we.Code != 11001 {
				return false
			}
		}
		return true
	}
	return mongo.IsDuplicateKeyError(err)
}

// wrap marks errors that mean the server cannot be reached, so that callers
// answer "try again later" instead of failing the request.
func wrap(err error) error {
	if unreachable(err) {
		return smsgw.Unavailable(what, err)
	}
	return err
}

func unreachable(err error) bool {
	var sse topology.ServerSelectionError
	var ce topology.ConnectionError
	return mongo.IsNetworkError(err) ||
		mongo.IsTimeout(err) ||
		errors.Is(err, mongo.ErrClientDisconnected) ||
		errors.As(err, &sse) ||
		errors.As(err, &ce)
}
