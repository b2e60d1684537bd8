package lifecycle

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/workflows"
)

// reports stands in for the reporting database: rows set by the test, and
// ENOTFOUND for the others (a row not written yet).
type reports struct {
	mu   sync.Mutex
	rows map[string]smsgw.MessageRecord
	err  error // answered for every row when set
}

func (r *reports) set(rec smsgw.MessageRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rows == nil {
		r.rows = map[string]smsgw.MessageRecord{}
	}
	r.rows[rec.ID] = rec
}

func (r *reports) GetMessage(_ context.Context, id string) (smsgw.MessageRecord, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return smsgw.MessageRecord{}, r.err
	}
	rec, ok := r.rows[id]
	if !ok {
		return smsgw.MessageRecord{}, smsgw.Errorf(smsgw.ENOTFOUND, "message %s not found", id)
	}
	return rec, nil
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Against a real Temporal dev server with no worker: a submission starts
// its workflow, which stays at its start, and its reporting row is whatever
// the test says.
func TestRepeatedIdempotencyKey(t *testing.T) {
	addr := testenv.TemporalAddress(t)
	rows := &reports{}
	rules := &countingAdmitter{}
	s := newServiceWith(t, addr, func(o *Options) {
		o.Messages = &Reader{Reports: rows, Temporal: o.Temporal}
		o.Admitter = rules
	})
	msg := func(key string) smsgw.Message {
		return smsgw.Message{CustomerID: "acme", EntryPoint: smsgw.EntryREST, From: "ACME", To: "+61412345678",
			Text: "Your code is 1234", CallbackURL: "https://hooks.example/sms", IdempotencyKey: key}
	}
	// submit submits m, which must be accepted.
	submit := func(t *testing.T, m smsgw.Message) smsgw.Accepted {
		t.Helper()
		acc, err := s.Submit(ctxFor(t), m)
		if err != nil {
			t.Fatal(err)
		}
		return acc
	}
	// repeat submits m again and wants it answered as want.
	repeat := func(t *testing.T, m smsgw.Message, want smsgw.Accepted) {
		t.Helper()
		again, err := s.Submit(ctxFor(t), m)
		if err != nil || again != want {
			t.Fatalf("repeated submission: %+v, %v; want %+v", again, err, want)
		}
	}

	t.Run("the same request is answered with the message as it is now", func(t *testing.T) {
		first, err := s.Submit(ctxFor(t), msg("order-1"))
		if err != nil || first.Existing || first.Status != smsgw.StatusAccepted || first.Segments != 1 || first.Encoding != "GSM7" {
			t.Fatalf("first submission: %+v, %v", first, err)
		}
		// The message has moved on since: delivered, and (say) re-encoded.
		rows.set(smsgw.MessageRecord{ID: first.ID, CustomerID: "acme", Status: smsgw.StatusDelivered, Segments: 2, Encoding: "UCS2"})
		counted := rules.count()
		repeat(t, msg("order-1"), smsgw.Accepted{ID: first.ID, Status: smsgw.StatusDelivered, Segments: 2, Encoding: "UCS2", Existing: true})
		// The repeat is recognised before the rules see it.
		if n := rules.count(); n != counted {
			t.Errorf("the rules counted %d submissions after the repeat, %d before: the repeat was judged again", n, counted)
		}
	})

	t.Run("before its row is written the workflow answers", func(t *testing.T) {
		first := submit(t, msg("order-2"))
		// The same request in another form: the destination written
		// otherwise, over gRPC instead of REST.
		m := msg("order-2")
		m.To, m.EntryPoint = "0061 412 345 678", smsgw.EntryGRPC
		repeat(t, m, smsgw.Accepted{ID: first.ID, Status: smsgw.StatusAccepted, Segments: 1, Encoding: "GSM7", Existing: true})
	})

	t.Run("another request under the same key is refused", func(t *testing.T) {
		first := submit(t, msg("order-3"))
		counted := rules.count()
		defer func() {
			if n := rules.count(); n != counted {
				t.Errorf("the rules counted %d submissions after the other requests under the key, %d before", n, counted)
			}
		}()
		for name, change := range map[string]func(*smsgw.Message){
			"from":        func(m *smsgw.Message) { m.From = "OTHER" },
			"to":          func(m *smsgw.Message) { m.To = "+61412345679" },
			"text":        func(m *smsgw.Message) { m.Text = "Your code is 9999" },
			"callbackUrl": func(m *smsgw.Message) { m.CallbackURL = "" },
			"validity":    func(m *smsgw.Message) { m.Validity = time.Hour },
			"schedule":    func(m *smsgw.Message) { m.ScheduleAt = time.Now().Add(time.Hour) },
			"receipt":     func(m *smsgw.Message) { m.ReceiptRequested = true },
			"clientRef":   func(m *smsgw.Message) { m.ClientRef = "another order" },
		} {
			m := msg("order-3")
			change(&m)
			acc, err := s.Submit(ctxFor(t), m)
			if smsgw.ErrorCode(err) != smsgw.ECONFLICT || !strings.Contains(smsgw.ErrorMessage(err), `"order-3" was already used for message `+first.ID) {
				t.Errorf("other %s under the same key: %+v, %v; want ECONFLICT naming the key and message", name, acc, err)
			}
		}
		// The first request is still answered.
		repeat(t, msg("order-3"), smsgw.Accepted{ID: first.ID, Status: smsgw.StatusAccepted, Segments: 1, Encoding: "GSM7", Existing: true})
	})

	t.Run("the same key from another customer is another message", func(t *testing.T) {
		a := submit(t, msg("order-4"))
		m := msg("order-4")
		m.CustomerID, m.From = "narrow", "NARROW"
		b, err := s.Submit(ctxFor(t), m)
		if err != nil || b.Existing || b.ID == a.ID {
			t.Fatalf("another customer's key: %+v, %v; want a new message", b, err)
		}
	})

	// A message whose row is missing is read from its workflow: its owner,
	// entry point, status, sender, destination and the encoding it was
	// accepted with.
	t.Run("the reader falls back to the workflow", func(t *testing.T) {
		m := msg("order-5")
		m.Text = "Grüße aus Köln ✓"
		m.ClientRef = "Bestellung 5"
		acc := submit(t, m)
		r := &Reader{Reports: rows, Temporal: s.temporal}
		rec, err := r.GetMessage(ctxFor(t), acc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rec.ID != acc.ID || rec.CustomerID != "acme" || rec.EntryPoint != smsgw.EntryREST || rec.Status != smsgw.StatusAccepted ||
			rec.From != "ACME" || rec.To != "+61412345678" || rec.Encoding != "UCS2" || rec.Segments != 1 || rec.ClientRef != "Bestellung 5" ||
			time.Since(rec.AcceptedAt) > time.Minute || rec.AcceptedAt.After(time.Now()) {
			t.Fatalf("read from the workflow: %+v", rec)
		}
		// Once the row is there, it is the answer.
		rows.set(smsgw.MessageRecord{ID: acc.ID, CustomerID: "acme", Status: smsgw.StatusSent, ConnectorID: "sim"})
		if rec, err := r.GetMessage(ctxFor(t), acc.ID); err != nil || rec.Status != smsgw.StatusSent || rec.ConnectorID != "sim" {
			t.Fatalf("with a row: %+v, %v", rec, err)
		}
		// Neither row nor workflow, or an ID no workflow could have.
		for _, id := range []string{"0123456789abcdef0123456789abcdef", "not/an id"} {
			if _, err := r.GetMessage(ctxFor(t), id); smsgw.ErrorCode(err) != smsgw.ENOTFOUND {
				t.Errorf("GetMessage(%q) = %v, want ENOTFOUND", id, err)
			}
		}
		// A workflow of another type is no message, even with a customer.
		run, err := s.temporal.ExecuteWorkflow(ctxFor(t), client.StartWorkflowOptions{
			ID: "inbound-lookalike", TaskQueue: "nobody-polls", TypedSearchAttributes: workflows.StartAttributes(smsgw.Message{CustomerID: "acme", EntryPoint: smsgw.EntryREST}),
		}, "InboundWorkflow")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.GetMessage(ctxFor(t), run.GetID()); smsgw.ErrorCode(err) != smsgw.ENOTFOUND {
			t.Errorf("an inbound workflow read as a message: %v", err)
		}
		// A reporting database that fails is not hidden behind the workflow.
		down := &reports{err: smsgw.Unavailable("reporting database", context.DeadlineExceeded)}
		if _, err := (&Reader{Reports: down, Temporal: s.temporal}).GetMessage(ctxFor(t), acc.ID); smsgw.ErrorCode(err) != smsgw.EUNAVAILABLE {
			t.Errorf("reporting database down: %v, want EUNAVAILABLE", err)
		}
	})
}

// Temporal unreachable while the row is missing is EUNAVAILABLE, not a 404
// for a message that may well exist.
func TestReaderWithTemporalDownIsUnavailable(t *testing.T) {
	tc, err := client.NewLazyClient(client.Options{HostPort: closedAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = (&Reader{Reports: &reports{}, Temporal: tc}).GetMessage(ctx, "0123456789abcdef0123456789abcdef")
	if smsgw.ErrorCode(err) != smsgw.EUNAVAILABLE {
		t.Fatalf("got %v, want EUNAVAILABLE", err)
	}
}

// describeFails is a Temporal client whose next fail descriptions of a
// workflow fail as if Temporal were unreachable.
type describeFails struct {
	client.Client
	mu   sync.Mutex
	fail int
}

func (c *describeFails) failNext(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail = n
}

func (c *describeFails) DescribeWorkflowExecution(ctx context.Context, id, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	c.mu.Lock()
	fail := c.fail > 0
	if fail {
		c.fail--
	}
	c.mu.Unlock()
	if fail {
		return nil, serviceerror.NewUnavailable("temporal unreachable")
	}
	return c.Client.DescribeWorkflowExecution(ctx, id, runID)
}

// A repeat the look-up before the rules could not recognise is still
// answered with its message: found by its workflow start, and taken back
// from the rules' counts; or, when the rules refuse it, found by a
// look-up after the refusal, which is not counted.
func TestRepeatNotLookedUpBeforeTheRules(t *testing.T) {
	addr := testenv.TemporalAddress(t)
	rows := &reports{}
	rules := &countingAdmitter{}
	var tc *describeFails
	s := newServiceWith(t, addr, func(o *Options) {
		tc = &describeFails{Client: o.Temporal}
		o.Temporal = tc
		o.Messages = &Reader{Reports: rows, Temporal: tc}
		o.Admitter = rules
	})
	m := smsgw.Message{CustomerID: "acme", EntryPoint: smsgw.EntryREST, From: "ACME", To: "+61412345678", Text: "hi", IdempotencyKey: "not-looked-up"}
	first, err := s.Submit(ctxFor(t), m)
	if err != nil || first.Existing {
		t.Fatalf("first submission: %+v, %v", first, err)
	}
	if n := rules.count(); n != 1 {
		t.Fatalf("the rules count %d after the first submission, want 1", n)
	}
	want := smsgw.Accepted{ID: first.ID, Status: smsgw.StatusAccepted, Segments: 1, Encoding: "GSM7", Existing: true}

	tc.failNext(1)
	again, err := s.Submit(ctxFor(t), m)
	if err != nil || again != want {
		t.Fatalf("repeat found by its start: %+v, %v; want %+v", again, err, want)
	}
	if n := rules.count(); n != 1 {
		t.Errorf("the rules count %d after the repeat, want 1: the repeat was not taken back", n)
	}

	rules.setRefuse(smsgw.Refused(smsgw.EFORBIDDEN, smsgw.ReasonOptedOut, "opted out"))
	tc.failNext(1)
	again, err = s.Submit(ctxFor(t), m)
	if err != nil || again != want {
		t.Fatalf("repeat the rules refuse: %+v, %v; want %+v", again, err, want)
	}
	// A new message under another key is refused as the rules say.
	m.IdempotencyKey = "another"
	if _, err := s.Submit(ctxFor(t), m); smsgw.ErrorReason(err) != smsgw.ReasonOptedOut {
		t.Errorf("a new message the rules refuse: %v, want %s", err, smsgw.ReasonOptedOut)
	}
}
