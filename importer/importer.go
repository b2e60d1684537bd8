// Package importer brings the message history of another gateway into
// smsgw: each message becomes a reporting row and events, stored the way the
// gateway stores its own messages, so that GET /v1/messages/{id}, searches
// and reports find them. Imported messages start no workflow.
//
// A Source reads the other gateway's records in a stable order and numbers
// them with a position; the importer writes a batch, then saves the position
// of its last record as the source's checkpoint. Message IDs derive from the
// source's own keys, and every write is an idempotent upsert, so running an
// import twice changes nothing and an interrupted one resumes from its
// checkpoint (redoing at most one batch).
//
// The package knows no database of the gateway: the stores implement Sink
// and Checkpoints.
package importer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/segment"
)

// Message is one message of another gateway's history, as a Source reads
// it. Receipts are the delivery reports the source matched to it.
type Message struct {
	SourceID    string // the source's key for the message; the message ID derives from it
	Account     string // the source's account or user, mapped to a customer
	CustomerID  string // set by sources that already know the customer (then Account is ignored)
	From        string
	To          string
	Text        string
	UCS2        bool // the source sent it as UCS-2 (else the encoding follows the text)
	SubmittedAt time.Time
	Connector   string // the upstream link the source sent it over
	UpstreamID  string // the upstream SMSC's message ID
	// Status is the status the source gives it; empty means it follows
	// from the receipts (SENT without a final one).
	Status    smsgw.Status
	DoneAt    time.Time
	ErrorCode string
	ErrorText string
	Receipts  []Receipt
}

// Receipt is one delivery report of a message.
type Receipt struct {
	SourceID string // the source's key for the report
	At       time.Time
	Stat     string // SMPP state word: DELIVRD, UNDELIV, REJECTD, EXPIRED, ENROUTE, ACCEPTD…
	Err      string
}

// Item is one record of a source at a position.
type Item struct {
	Pos int64
	// Message is the message to write; nil when the record is skipped or
	// refused.
	Message *Message
	// Update is true when the record is a delivery report that updates a
	// message (Message is then the whole message with it).
	Update bool
	Skip   string // why the record is not imported, when it is not for us (an MO, a report of no known message)
	Refuse string // why the record cannot be imported (bad data)
}

// Source reads another gateway's records.
type Source interface {
	// Name names the source; message IDs and the checkpoint carry it.
	Name() string
	// Next returns up to n records after position after, in position
	// order; none when there are no more (yet).
	Next(ctx context.Context, after int64, n int) ([]Item, error)
	// Remaining counts the records after position after, for progress.
	Remaining(ctx context.Context, after int64) (int64, error)
}

// Sink is where imported messages go: the event store and the reporting
// database, as the gateway's own messages.
type Sink interface {
	AppendEvents(ctx context.Context, events ...smsgw.Event) error
	UpsertMessage(ctx context.Context, r smsgw.MessageRecord) error
}

// Checkpoints keep how far each source was imported.
type Checkpoints interface {
	ImportCheckpoint(ctx context.Context, source string) (int64, error)
	SaveImportCheckpoint(ctx context.Context, source string, pos int64) error
}

// Options steer Run.
type Options struct {
	// Customer maps a source account to a customer ID; ok false refuses the
	// message.
	Customer func(account string) (customerID string, ok bool)
	// Restart ignores the checkpoint and reads the source from its start
	// (what is already imported is written again, unchanged).
	Restart bool
	// Follow keeps reading new records, every PollInterval, until ctx is
	// done (a cutover: the old gateway still runs).
	Follow       bool
	PollInterval time.Duration // 2s when zero
	BatchSize    int           // 500 when zero
	Parallel     int           // messages written at once; 16 when zero
	// Progress, when set, is called after each batch.
	Progress func(Progress)
}

// Progress is how far an import has come.
type Progress struct {
	Done, Total int64 // records read, and records there were to read when it started (grows in follow mode)
	Summary
}

// Summary counts what an import did, with the reasons of what it did not.
type Summary struct {
	Imported int64            // messages written
	Updated  int64            // delivery reports written to their message
	Skipped  map[string]int64 // by reason
	Refused  map[string]int64 // by reason
	Position int64            // the checkpoint at the end
}

// SkippedTotal and RefusedTotal add up the reasons.
func (s Summary) SkippedTotal() int64 { return total(s.Skipped) }
func (s Summary) RefusedTotal() int64 { return total(s.Refused) }

func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// Reasons lists the reasons of m, most frequent first, as "reason (n)".
func Reasons(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%s (%d)", k, m[k])
	}
	return out
}

// Run imports src into sink from its checkpoint, saving the checkpoint after
// each batch. It returns when the source has no more records, or, with
// Follow, when ctx is done; the summary counts what was done either way.
func Run(ctx context.Context, src Source, sink Sink, cps Checkpoints, opts Options) (Summary, error) {
	if opts.Customer == nil {
		return Summary{}, errors.New("importer: no customer mapping")
	}
	if !validName.MatchString(src.Name()) {
		return Summary{}, fmt.Errorf("importer: source name %q must be 1 to 24 letters, digits or '_'", src.Name())
	}
	batch, parallel, poll := opts.BatchSize, opts.Parallel, opts.PollInterval
	if batch <= 0 {
		batch = 500
	}
	if parallel <= 0 {
		parallel = 16
	}
	if poll <= 0 {
		poll = 2 * time.Second
	}
	sum := Summary{Skipped: map[string]int64{}, Refused: map[string]int64{}}
	var pos int64
	if !opts.Restart {
		p, err := cps.ImportCheckpoint(ctx, src.Name())
		if err != nil {
			return sum, fmt.Errorf("importer: read the checkpoint of %s: %w", src.Name(), err)
		}
		pos = p
	}
	sum.Position = pos
	remaining, err := src.Remaining(ctx, pos)
	if err != nil {
		return sum, fmt.Errorf("importer: count the records of %s: %w", src.Name(), err)
	}
	prog := Progress{Total: remaining}
	for {
		items, err := src.Next(ctx, pos, batch)
		if err != nil {
			if ctx.Err() != nil && opts.Follow {
				return sum, nil
			}
			return sum, fmt.Errorf("importer: read %s after %d: %w", src.Name(), pos, err)
		}
		if len(items) == 0 {
			if !opts.Follow {
				return sum, nil
			}
			select {
			case <-ctx.Done():
				return sum, nil
			case <-time.After(poll):
			}
			continue
		}
		if err := writeBatch(ctx, src.Name(), items, sink, opts.Customer, parallel, &sum); err != nil {
			if ctx.Err() != nil && opts.Follow {
				return sum, nil
			}
			return sum, err
		}
		last := items[len(items)-1].Pos
		if err := cps.SaveImportCheckpoint(ctx, src.Name(), last); err != nil {
			if ctx.Err() != nil && opts.Follow {
				return sum, nil
			}
			return sum, fmt.Errorf("importer: save the checkpoint of %s at %d: %w", src.Name(), last, err)
		}
		pos, sum.Position = last, last
		prog.Done += int64(len(items))
		if prog.Done > prog.Total {
			prog.Total = prog.Done
		}
		prog.Summary = sum
		if opts.Progress != nil {
			opts.Progress(prog)
		}
	}
}

// validName is what a source name may be: it goes into message IDs.
var validName = regexp.MustCompile(`^[A-Za-z0-9_]{1,24}$`)

// writeBatch writes the messages of items, parallel at a time, and counts
// every item. It fails when a write fails (the batch is then written again
// on the next run).
func writeBatch(ctx context.Context, source string, items []Item, sink Sink, customer func(string) (string, bool), parallel int, sum *Summary) error {
	type job struct {
		rec    smsgw.MessageRecord
		events []smsgw.Event
		update bool
	}
	var jobs []job
	for _, it := range items {
		switch {
		case it.Refuse != "":
			sum.Refused[it.Refuse]++
		case it.Skip != "" || it.Message == nil:
			reason := it.Skip
			if reason == "" {
				reason = "empty record"
			}
			sum.Skipped[reason]++
		default:
			rec, events, refuse := Convert(source, *it.Message, customer)
			if refuse != "" {
				sum.Refused[refuse]++
				continue
			}
			jobs = append(jobs, job{rec, events, it.Update})
		}
	}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, parallel)
	)
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := sink.AppendEvents(ctx, j.events...)
			if err == nil {
				err = sink.UpsertMessage(ctx, j.rec)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("importer: write message %s: %w", j.rec.ID, err)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	for _, j := range jobs {
		if j.update {
			sum.Updated++
		} else {
			sum.Imported++
		}
	}
	return nil
}

// MessageID is the ID an imported message gets: the source's name and its
// key, so the same record always makes the same message.
func MessageID(source, sourceID string) string { return source + "-" + sourceID }

// validKey is what a source's key may be, to make a message ID.
var validKey = regexp.MustCompile(`^[A-Za-z0-9_-]{1,39}$`)

// Convert makes the reporting row and events of an imported message, or
// says why it cannot be imported. The same message always gives the same
// row and events (their times are the source's), so writing them again
// changes nothing.
func Convert(source string, m Message, customer func(string) (string, bool)) (smsgw.MessageRecord, []smsgw.Event, string) {
	if !validKey.MatchString(m.SourceID) {
		return smsgw.MessageRecord{}, nil, "key is not 1 to 39 letters, digits, '-' or '_'"
	}
	cust := m.CustomerID
	if cust == "" {
		var ok bool
		if cust, ok = customer(m.Account); !ok {
			return smsgw.MessageRecord{}, nil, fmt.Sprintf("no customer for account %q", m.Account)
		}
	}
	to, err := smsgw.NormalizeMSISDN(m.To)
	if err != nil {
		return smsgw.MessageRecord{}, nil, "invalid destination number"
	}
	from := strings.TrimSpace(m.From)
	if from == "" || utf8.RuneCountInString(from) > 32 {
		return smsgw.MessageRecord{}, nil, "sender missing or longer than 32 characters"
	}
	if !utf8.ValidString(m.Text) {
		return smsgw.MessageRecord{}, nil, "text is not valid UTF-8"
	}
	if m.SubmittedAt.IsZero() {
		return smsgw.MessageRecord{}, nil, "no submission time"
	}
	if m.Status != "" && !m.Status.Valid() {
		return smsgw.MessageRecord{}, nil, fmt.Sprintf("unknown status %q", m.Status)
	}
	if utf8.RuneCountInString(m.Connector) > 64 || utf8.RuneCountInString(m.UpstreamID) > 128 || utf8.RuneCountInString(m.ErrorCode) > 64 {
		return smsgw.MessageRecord{}, nil, "connector, upstream ID or error code too long"
	}
	id := MessageID(source, m.SourceID)
	submitted := m.SubmittedAt.UTC().Truncate(time.Millisecond)

	status, doneAt, errCode, errText := m.Status, m.DoneAt, m.ErrorCode, m.ErrorText
	receipts := append([]Receipt(nil), m.Receipts...)
	sort.SliceStable(receipts, func(i, j int) bool { return receipts[i].SourceID < receipts[j].SourceID })
	if status == "" {
		status = smsgw.StatusSent
		for _, r := range receipts { // the first final report wins, as for the gateway's own messages
			if st, final := (smsgw.Receipt{Stat: r.Stat}).Status(); final {
				status, doneAt, errCode = st, r.At, smsgw.NormalizeReceiptErr(r.Err)
				if st != smsgw.StatusDelivered {
					errText = "receipt " + r.Stat
				} else {
					errCode = ""
				}
				break
			}
		}
	}
	opt := segment.Options{MaxSegments: segment.MaxSegmentsLimit}
	if m.UCS2 {
		opt.Force = segment.UCS2
	}
	encoding, segments := "", 0
	if m.Text != "" {
		if c, err := segment.Count(m.Text, opt); err == nil || errors.Is(err, segment.ErrTooManySegments) {
			encoding, segments = c.Encoding, c.Segments
		}
	}

	rec := smsgw.MessageRecord{
		ID: id, CustomerID: cust, EntryPoint: smsgw.EntryImport, From: from, To: to, Status: status,
		ConnectorID: m.Connector, UpstreamID: m.UpstreamID, Segments: segments, Encoding: encoding,
		ErrorCode: errCode, ErrorText: errText, AcceptedAt: submitted, UpdatedAt: submitted,
	}
	events := []smsgw.Event{
		smsgw.NewEvent(id, cust, 1, smsgw.EventAccepted, "accepted", submitted, map[string]any{
			"entryPoint": string(smsgw.EntryImport), "source": source, "sourceId": m.SourceID, "account": m.Account,
		}),
	}
	if status != smsgw.StatusAccepted {
		sent := submitted
		rec.SentAt = &sent
		// One step name whatever the connector: a report read later may
		// name the connector the message itself did not.
		events = append(events, smsgw.NewEvent(id, cust, 2, smsgw.EventSent, "sent", submitted, map[string]any{
			"connector": m.Connector, "upstreamIds": []string{m.UpstreamID},
		}))
	}
	// Receipts give done dates to the minute: none is taken to be before
	// the message was submitted.
	notBefore := func(t time.Time) time.Time {
		t = t.UTC().Truncate(time.Millisecond)
		if t.Before(submitted) {
			return submitted
		}
		return t
	}
	for _, r := range receipts {
		at := notBefore(r.At)
		if at.After(rec.UpdatedAt) {
			rec.UpdatedAt = at
		}
		events = append(events, smsgw.NewEvent(id, cust, 3, smsgw.EventReceipt, "receipt-"+r.SourceID, at, map[string]any{
			"segment": 1, "upstreamId": m.UpstreamID, "stat": r.Stat, "err": r.Err, "sourceId": r.SourceID,
		}))
	}
	if status.Final() {
		done := notBefore(doneAt)
		if doneAt.IsZero() {
			done = rec.UpdatedAt
		}
		if done.After(rec.UpdatedAt) {
			rec.UpdatedAt = done
		}
		rec.DoneAt = &done
		events = append(events, smsgw.NewEvent(id, cust, 4, smsgw.EventFinal, "final", done, map[string]any{
			"status": string(status), "errorCode": errCode, "errorText": errText,
		}))
	}
	return rec, events, ""
}
