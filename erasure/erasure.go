// Package erasure removes everything the gateway keeps about one phone
// number: the messages to or from it in the reporting database, their
// events and the rest of the event store's records of them, and the
// Temporal workflow executions whose histories hold them. Temporal
// histories cannot be edited, so those executions are deleted whole
// (DeleteWorkflowExecution); one still running is refused unless the
// caller asks for it to be terminated first. Each erasure leaves an audit
// record in the event store, naming the number only by its hash.
//
// The order makes an interrupted erasure safe to run again: the workflows
// go first, then the event store, and the reporting rows, by which the
// messages of a number are found, last.
package erasure

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/smsgw/smsgw"
)

// Reports is the reporting database: it finds a number's messages.
type Reports interface {
	MessageIDsByNumber(ctx context.Context, numbers []string) ([]string, error)
	DeleteMessages(ctx context.Context, ids []string) (int64, error)
}

// Events is the event store.
type Events interface {
	InboundIDsByNumber(ctx context.Context, numbers []string) ([]string, error)
	FailedNotificationIDs(ctx context.Context, messageIDs []string) ([]string, error)
	EraseMessages(ctx context.Context, ids []string) (map[string]int64, error)
	RecordErasure(ctx context.Context, r smsgw.ErasureRecord) error
}

// Temporal is what erasure needs of Temporal's client (client.Client has it).
type Temporal interface {
	DescribeWorkflowExecution(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error)
	WorkflowService() workflowservice.WorkflowServiceClient
}

// Eraser erases numbers.
type Eraser struct {
	Reports   Reports
	Events    Events
	Temporal  Temporal
	Namespace string
	Logger    *slog.Logger     // slog.Default when nil
	Now       func() time.Time // time.Now when nil
}

// Options steer one erasure.
type Options struct {
	// TerminateRunning terminates the workflows of the number's messages
	// still running, then deletes them. Without it an erasure that finds
	// one running is refused (ECONFLICT) before anything is removed: the
	// running workflow would write the message again.
	TerminateRunning bool
	// RequestedBy and Reason go into the audit record.
	RequestedBy string
	Reason      string
}

// Report is what an erasure did.
type Report struct {
	ID         string           `json:"id"`         // the audit record's ID
	NumberHash string           `json:"numberHash"` // how the audit names the number
	Messages   int              `json:"messages"`   // messages and inbound messages of the number found
	Workflows  int              `json:"workflows"`  // workflow executions deleted
	Terminated int              `json:"terminated"` // of those, terminated first
	Deleted    map[string]int64 `json:"deleted"`    // documents and rows deleted, per "store/collection"
}

// run is one workflow execution to delete.
type run struct {
	workflowID, runID string
	running           bool
}

// Erase removes every message to or from number, in every store, and
// records the erasure. number is an international phone number in any
// form NormalizeMSISDN reads. An invalid number is EINVALID; running
// workflows without opts.TerminateRunning are ECONFLICT. A refusal, and a
// failure part way, leave an audit record with the error; running Erase
// again finishes the work.
func (e *Eraser) Erase(ctx context.Context, number string, opts Options) (Report, error) {
	e164, err := smsgw.NormalizeMSISDN(number)
	if err != nil {
		return Report{}, smsgw.Errorf(smsgw.EINVALID, "erase: %s", smsgw.ErrorMessage(err))
	}
	now, logger := e.now(), e.logger()
	rep := Report{ID: newID(now), NumberHash: smsgw.NumberHash(e164), Deleted: map[string]int64{}}
	audit := smsgw.ErasureRecord{ID: rep.ID, NumberHash: rep.NumberHash, RequestedBy: opts.RequestedBy, Reason: opts.Reason, StartedAt: now}
	// Senders and numbers are stored with and without the '+'.
	numbers := []string{e164, strings.TrimPrefix(e164, "+")}

	messageIDs, err := e.Reports.MessageIDsByNumber(ctx, numbers)
	if err != nil {
		return rep, fmt.Errorf("erase: find the messages: %w", err)
	}
	inboundIDs, err := e.Events.InboundIDsByNumber(ctx, numbers)
	if err != nil {
		return rep, fmt.Errorf("erase: find the inbound messages: %w", err)
	}
	ids := union(messageIDs, inboundIDs)
	rep.Messages = len(ids)
	failed, err := e.Events.FailedNotificationIDs(ctx, ids)
	if err != nil {
		return rep, fmt.Errorf("erase: find the failed notifications: %w", err)
	}
	workflowIDs := append([]string(nil), ids...)
	for _, ev := range failed {
		workflowIDs = append(workflowIDs, "redeliver-"+strings.ReplaceAll(ev, ":", "-"))
	}

	runs, err := e.runs(ctx, workflowIDs)
	if err != nil {
		return rep, err
	}
	var running []string
	for _, r := range runs {
		if r.running {
			running = append(running, r.workflowID)
		}
	}
	// fail records the failure (or refusal) in the audit, then returns it.
	fail := func(err error) (Report, error) {
		audit.FinishedAt, audit.Error = e.now(), err.Error()
		audit.Messages, audit.Workflows, audit.Terminated, audit.Deleted = rep.Messages, rep.Workflows, rep.Terminated, rep.Deleted
		if aerr := e.Events.RecordErasure(context.WithoutCancel(ctx), audit); aerr != nil {
			logger.Error("erasure audit record not written", "erasure", rep.ID, "err", aerr)
		}
		return rep, err
	}
	if len(running) > 0 && !opts.TerminateRunning {
		return fail(smsgw.Errorf(smsgw.ECONFLICT, "erase: %d workflows of the number's messages are still running (%s); "+
			"erase again once they end, or terminate them", len(running), strings.Join(first(running, 5), ", ")))
	}

	for _, r := range runs {
		if r.running {
			// DeleteWorkflowExecution terminates a running execution
			// before it deletes it.
			rep.Terminated++
		}
		deleted, err := e.deleteRun(ctx, r)
		if err != nil {
			return fail(err)
		}
		if deleted {
			rep.Workflows++
		}
	}
	rep.Deleted["temporal/executions"] = int64(rep.Workflows)

	docs, err := e.Events.EraseMessages(ctx, ids)
	for coll, n := range docs {
		rep.Deleted["eventstore/"+coll] = n
	}
	if err != nil {
		return fail(fmt.Errorf("erase: %w", err))
	}
	rows, err := e.Reports.DeleteMessages(ctx, messageIDs)
	rep.Deleted["reporting/messages"] = rows
	if err != nil {
		return fail(fmt.Errorf("erase: %w", err))
	}

	audit.FinishedAt = e.now()
	audit.Messages, audit.Workflows, audit.Terminated, audit.Deleted = rep.Messages, rep.Workflows, rep.Terminated, rep.Deleted
	if err := e.Events.RecordErasure(ctx, audit); err != nil {
		return rep, fmt.Errorf("erase: everything was removed, but the audit record was not written: %w", err)
	}
	logger.Info("number erased", "erasure", rep.ID, "messages", rep.Messages, "workflows", rep.Workflows, "terminated", rep.Terminated)
	return rep, nil
}

// deleteWait bounds how long deleteRun waits for Temporal to have deleted
// an execution; deleteRetry is how often it asks again meanwhile.
const (
	deleteWait  = 3 * time.Minute
	deleteRetry = time.Second
)

// deleteRun deletes one workflow execution and waits until Temporal no
// longer knows it. The deletion runs in the background: an execution closed
// long ago goes within a second, one closed moments before can take tens of
// seconds (measured on the dev server: up to a minute), so it is asked for
// again every deleteRetry until the execution is gone. deleted is false
// when it was gone already.
func (e *Eraser) deleteRun(ctx context.Context, r run) (deleted bool, err error) {
	deadline := time.Now().Add(deleteWait)
	for attempt := 0; ; attempt++ {
		_, err := e.Temporal.WorkflowService().DeleteWorkflowExecution(ctx, &workflowservice.DeleteWorkflowExecutionRequest{
			Namespace:         e.Namespace,
			WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: r.workflowID, RunId: r.runID},
		})
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
			return attempt > 0, nil
		case err != nil:
			return false, fmt.Errorf("erase: delete workflow %s: %w", r.workflowID, err)
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("erase: delete workflow %s: %w", r.workflowID, ctx.Err())
		case <-time.After(deleteRetry):
		}
		_, err = e.Temporal.DescribeWorkflowExecution(ctx, r.workflowID, r.runID)
		if errors.As(err, &nf) {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("erase: workflow %s run %s was not deleted by Temporal within %s", r.workflowID, r.runID, deleteWait)
		}
	}
}

// runs finds the workflow executions of ids: the current run of each, and
// every other run visibility knows of.
func (e *Eraser) runs(ctx context.Context, ids []string) ([]run, error) {
	var out []run
	seen := map[string]bool{}
	add := func(r run) {
		if k := r.workflowID + "/" + r.runID; !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	for _, id := range ids {
		desc, err := e.Temporal.DescribeWorkflowExecution(ctx, id, "")
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
		case err != nil:
			return nil, smsgw.Unavailable("workflow engine", fmt.Errorf("erase: describe workflow %s: %w", id, err))
		default:
			info := desc.GetWorkflowExecutionInfo()
			add(run{id, info.GetExecution().GetRunId(), info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING})
		}
		var token []byte
		for {
			resp, err := e.Temporal.WorkflowService().ListWorkflowExecutions(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Namespace: e.Namespace, Query: fmt.Sprintf("WorkflowId = %q", id), NextPageToken: token,
			})
			if err != nil {
				return nil, smsgw.Unavailable("workflow engine", fmt.Errorf("erase: list the runs of %s: %w", id, err))
			}
			for _, info := range resp.GetExecutions() {
				add(run{id, info.GetExecution().GetRunId(), info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING})
			}
			if token = resp.GetNextPageToken(); len(token) == 0 {
				break
			}
		}
	}
	return out, nil
}

func (e *Eraser) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

func (e *Eraser) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}

// newID names an erasure: its start time and a random suffix.
func newID(now time.Time) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "erasure-" + now.Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

func union(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string(nil), a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "…")
	}
	return s
}
