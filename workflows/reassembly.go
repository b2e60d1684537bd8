package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/segment"
)

// ReassemblyInput starts a ReassemblyWorkflow: the parts of the messages
// one phone sends to one number with one concatenation reference.
type ReassemblyInput struct {
	ConnectorID string `json:"connectorId"`
	From        string `json:"from"`
	To          string `json:"to"`
	Ref         uint16 `json:"ref"`
	Total       int    `json:"total"`
	// Timeout is how long parts are awaited after a message's first one.
	Timeout time.Duration `json:"timeout"`
	// DedupWindow is how long, after a message is complete, a part seen
	// before is taken for the SMSC delivering it again.
	DedupWindow time.Duration `json:"dedupWindow"`
}

// InboundPart is the payload of SignalInboundPart: one decoded part.
type InboundPart struct {
	Seq        int       `json:"seq"` // 1-based
	Text       string    `json:"text"`
	Encoding   string    `json:"encoding"`
	ReceivedAt time.Time `json:"receivedAt"`
}

// ReassemblyResult says what a ReassemblyWorkflow delivered.
type ReassemblyResult struct {
	Messages   []string `json:"messages"`             // inbound message IDs, in order
	Partial    int      `json:"partial,omitempty"`    // how many lacked parts at the timeout
	Duplicates int      `json:"duplicates,omitempty"` // parts received again and ignored
}

// ReassemblyWorkflow gathers the parts of a concatenated MO, which arrive by
// SignalInboundPart (signal-with-start) in any order. When every part is in,
// or Timeout after the first one, it starts the message's InboundWorkflow as
// a child that outlives it, with the parts joined in order (missing ones
// marked, and the message flagged partial). It then stays for DedupWindow,
// ignoring parts received again; a part that is not a repeat starts the next
// message with the same reference.
func ReassemblyWorkflow(ctx workflow.Context, in ReassemblyInput) (ReassemblyResult, error) {
	if in.Timeout <= 0 {
		in.Timeout = ReassemblyTimeout
	}
	parts := workflow.GetSignalChannel(ctx, SignalInboundPart)
	var res ReassemblyResult

	var p InboundPart
	if !parts.ReceiveAsync(&p) {
		if ok, _ := parts.ReceiveWithTimeout(ctx, in.Timeout, &p); !ok {
			return res, nil // started without a part: nothing to do
		}
	}
	for first := &p; first != nil; {
		asm, head, dups := gatherParts(ctx, parts, in, *first)
		res.Duplicates += dups
		text, partial := asm.Text()
		id := reassembledID(ctx, len(res.Messages))
		msg := smsgw.InboundMessage{
			ID: id, From: in.From, To: in.To, Text: text, Encoding: head.Encoding, Parts: in.Total,
			Partial: partial, Connector: in.ConnectorID, ReceivedAt: head.ReceivedAt,
		}
		if err := startInboundChild(ctx, msg); err != nil {
			return res, err
		}
		res.Messages = append(res.Messages, id)
		if partial {
			res.Partial++
			workflow.GetLogger(ctx).Warn("concatenated inbound message delivered partial", "id", id, "missing", asm.Missing())
		}
		var more int
		first, more = lingerForRepeats(ctx, parts, in.DedupWindow, asm)
		res.Duplicates += more
	}
	return res, nil
}

// gatherParts collects parts from first on until the message is complete or
// the timeout ends. head is the earliest part received (its time and
// encoding stand for the message's); dups counts repeats ignored.
func gatherParts(ctx workflow.Context, parts workflow.ReceiveChannel, in ReassemblyInput, first InboundPart) (asm segment.Assembly, head InboundPart, dups int) {
	head = first
	add := func(p InboundPart) {
		if _, seen := asm.Parts[p.Seq]; seen {
			dups++
			return
		}
		if _, err := asm.Add(segment.IncomingPart{Ref: in.Ref, Total: in.Total, Seq: p.Seq, Text: p.Text}); err != nil {
			workflow.GetLogger(ctx).Warn("inbound part ignored", "seq", p.Seq, "total", in.Total, "err", err)
			return
		}
		if p.ReceivedAt.Before(head.ReceivedAt) {
			head.ReceivedAt = p.ReceivedAt
		}
	}
	add(first)

	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	timer := workflow.NewTimer(timerCtx, in.Timeout)
	timedOut := false
	for !asm.Complete() && !timedOut {
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(parts, func(c workflow.ReceiveChannel, _ bool) {
			var p InboundPart
			c.Receive(ctx, &p)
			add(p)
		})
		sel.AddFuture(timer, func(workflow.Future) { timedOut = true })
		sel.Select(ctx)
	}
	return asm, head, dups
}

// lingerForRepeats waits up to window for parts after a message was
// delivered. Repeats of its parts are counted and ignored; the first part
// that is not a repeat is returned to start the next message. Before
// returning nil it takes every signal still queued, so none is left behind
// when the workflow completes.
func lingerForRepeats(ctx workflow.Context, parts workflow.ReceiveChannel, window time.Duration, asm segment.Assembly) (next *InboundPart, dups int) {
	repeat := func(p InboundPart) bool {
		t, ok := asm.Parts[p.Seq]
		return ok && t == p.Text
	}
	if window > 0 {
		timerCtx, cancelTimer := workflow.WithCancel(ctx)
		defer cancelTimer()
		timer := workflow.NewTimer(timerCtx, window)
		for done := false; !done; {
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(parts, func(c workflow.ReceiveChannel, _ bool) {
				var p InboundPart
				c.Receive(ctx, &p)
				if repeat(p) {
					dups++
					return
				}
				next, done = &p, true
			})
			sel.AddFuture(timer, func(workflow.Future) { done = true })
			sel.Select(ctx)
		}
		if next != nil {
			return next, dups
		}
	}
	for {
		var p InboundPart
		if !parts.ReceiveAsync(&p) {
			return nil, dups
		}
		if !repeat(p) {
			return &p, dups
		}
		dups++
	}
}

// reassembledID names the n-th message of this reassembly run.
func reassembledID(ctx workflow.Context, n int) string {
	info := workflow.GetInfo(ctx)
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", info.WorkflowExecution.ID, info.WorkflowExecution.RunID, n))
	return "mo-" + hex.EncodeToString(h[:16])
}

// startInboundChild starts the message's InboundWorkflow and waits until it
// runs; the child goes on after this workflow completes.
func startInboundChild(ctx workflow.Context, msg smsgw.InboundMessage) error {
	childCtx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            msg.ID,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		StaticSummary:         fmt.Sprintf("inbound message of %d parts via %s", msg.Parts, msg.Connector),
	})
	err := workflow.ExecuteChildWorkflow(childCtx, InboundWorkflow, InboundInput{Message: msg}).
		GetChildWorkflowExecution().Get(ctx, nil)
	if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		return nil // started by an earlier attempt of this very step
	}
	return err
}
