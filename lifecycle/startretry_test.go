package lifecycle

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/testenv"
)

// lostAnswer is a Temporal client whose first workflow start reaches the
// server while its answer is lost, as when the deadline passes or the
// connection drops after the server took the request.
type lostAnswer struct {
	client.Client
	mu     sync.Mutex
	starts int
}

func (c *lostAnswer) ExecuteWorkflow(ctx context.Context, o client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	c.mu.Lock()
	c.starts++
	n := c.starts
	c.mu.Unlock()
	run, err := c.Client.ExecuteWorkflow(ctx, o, wf, args...)
	if n == 1 && err == nil {
		return nil, serviceerror.NewDeadlineExceeded("context deadline exceeded")
	}
	return run, err
}

// An SMPP submission whose workflow start was taken but not answered is
// answered with the message it made, not with an error the customer would
// retry into a second message.
func TestSubmissionWhoseStartWasNotAnswered(t *testing.T) {
	addr := testenv.TemporalAddress(t)
	var lost *lostAnswer
	rules := &countingAdmitter{}
	s := newServiceWith(t, addr, func(o *Options) {
		lost = &lostAnswer{Client: o.Temporal}
		o.Temporal = lost
		o.Admitter = rules
	})
	m := smsgw.Message{CustomerID: "acme", EntryPoint: smsgw.EntrySMPP, From: "ACME", To: "+61412345678", Text: "hello",
		SubmissionRef: "session-" + t.Name() + ":7"}
	acc, err := s.Submit(ctxFor(t), m)
	if err != nil {
		t.Fatalf("submission whose start answer was lost: %v", err)
	}
	if lost.starts != 2 || !acc.Existing || acc.Status != smsgw.StatusAccepted {
		t.Fatalf("answer %+v after %d starts; want the message the first start made", acc, lost.starts)
	}
	if _, err := lost.DescribeWorkflowExecution(ctxFor(t), acc.ID, ""); err != nil {
		t.Fatalf("the message answered does not exist: %v", err)
	}
	// The message found is the submission's own: it stays counted.
	if n := rules.count(); n != 1 {
		t.Errorf("the rules count %d submissions, want the one accepted", n)
	}

	// Another submit_sm of the same session is another message.
	m.SubmissionRef = "session-" + t.Name() + ":8"
	other, err := s.Submit(ctxFor(t), m)
	if err != nil || other.ID == acc.ID || other.Existing {
		t.Fatalf("the next submit_sm: %+v, %v; want a message of its own", other, err)
	}
}

// A REST submission without an idempotency key whose workflow start was
// taken but not answered is answered with the message it made: its ID is
// its own, so the start tried again finds it.
func TestKeylessSubmissionWhoseStartWasNotAnswered(t *testing.T) {
	addr := testenv.TemporalAddress(t)
	var lost *lostAnswer
	s := newServiceWith(t, addr, func(o *Options) {
		lost = &lostAnswer{Client: o.Temporal}
		o.Temporal = lost
	})
	acc, err := s.Submit(ctxFor(t), smsgw.Message{CustomerID: "acme", EntryPoint: smsgw.EntryREST, From: "ACME", To: "+61412345678", Text: "hello"})
	if err != nil {
		t.Fatalf("submission whose start answer was lost: %v", err)
	}
	if lost.starts != 2 || acc.ID == "" || acc.Status != smsgw.StatusAccepted {
		t.Fatalf("answer %+v after %d starts; want the message the first start made", acc, lost.starts)
	}
	if _, err := lost.DescribeWorkflowExecution(ctxFor(t), acc.ID, ""); err != nil {
		t.Fatalf("the message answered does not exist: %v", err)
	}
}

// neverAnswered is a Temporal client whose workflow starts reach the
// server and are never answered in time.
type neverAnswered struct {
	client.Client
}

func (c neverAnswered) ExecuteWorkflow(ctx context.Context, o client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	_, _ = c.Client.ExecuteWorkflow(ctx, o, wf, args...)
	return nil, serviceerror.NewDeadlineExceeded("context deadline exceeded")
}

// A submission none of whose starts was answered is not refused (the
// message may exist, and a customer told "unavailable" would send it
// again): it is answered EUNKNOWN, with the ID to look up.
func TestSubmissionNeverAnsweredIsNotRefused(t *testing.T) {
	addr := testenv.TemporalAddress(t)
	s := newServiceWith(t, addr, func(o *Options) { o.Temporal = neverAnswered{Client: o.Temporal} })
	ctx, cancel := context.WithTimeout(ctxFor(t), 2*time.Second)
	defer cancel()
	_, err := s.Submit(ctx, smsgw.Message{CustomerID: "acme", EntryPoint: smsgw.EntryREST, From: "ACME", To: "+61412345678", Text: "hello"})
	if smsgw.ErrorCode(err) != smsgw.EUNKNOWN {
		t.Fatalf("error %v (code %q), want %q", err, smsgw.ErrorCode(err), smsgw.EUNKNOWN)
	}
	id := strings.TrimSuffix(strings.Fields(strings.SplitAfter(smsgw.ErrorMessage(err), "message ")[1])[0], ";")
	if _, derr := s.temporal.DescribeWorkflowExecution(ctxFor(t), id, ""); derr != nil {
		t.Fatalf("the message named in %q does not exist: %v", smsgw.ErrorMessage(err), derr)
	}
}
