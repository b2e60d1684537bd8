package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/workflows"
)

// Reader answers a message's state from the reporting database, and for a
// message so new that its row is not written yet, from its workflow: the
// customer, entry point and status from its search attributes, the encoding
// and segments it was accepted with from its memo, and the sender and
// destination from its input.
type Reader struct {
	Reports  smsgw.MessageReader // nil: only workflows are read
	Temporal client.Client
	// DataConverter reads the memo and input: the one Temporal's client
	// has (the client does not expose it). Nil: the SDK's default.
	DataConverter converter.DataConverter
}

// dataConverter is dc, or the SDK's default.
func dataConverter(dc converter.DataConverter) converter.DataConverter {
	if dc == nil {
		return converter.GetDefaultDataConverter()
	}
	return dc
}

// GetMessage implements smsgw.MessageReader. A message with neither a row
// nor a workflow is ENOTFOUND; Temporal unreachable while the row is
// missing is EUNAVAILABLE.
func (r *Reader) GetMessage(ctx context.Context, id string) (smsgw.MessageRecord, error) {
	var err error = smsgw.Errorf(smsgw.ENOTFOUND, "message %s not found", id)
	if r.Reports != nil {
		var rec smsgw.MessageRecord
		rec, err = r.Reports.GetMessage(ctx, id)
		if smsgw.ErrorCode(err) != smsgw.ENOTFOUND {
			return rec, err
		}
	}
	if !validID(id) {
		return smsgw.MessageRecord{}, err
	}
	desc, derr := r.Temporal.DescribeWorkflowExecution(ctx, id, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(derr, &notFound):
		return smsgw.MessageRecord{}, err
	case derr != nil:
		return smsgw.MessageRecord{}, smsgw.Unavailable("workflow engine", derr)
	}
	info := desc.GetWorkflowExecutionInfo()
	if info.GetType().GetName() != messageWorkflowType {
		return smsgw.MessageRecord{}, err
	}
	rec := smsgw.MessageRecord{
		ID:         id,
		CustomerID: searchAttribute(info, workflows.SearchCustomerID.GetName()),
		EntryPoint: smsgw.EntryPoint(searchAttribute(info, workflows.SearchEntryPoint.GetName())),
		Status:     smsgw.Status(searchAttribute(info, workflows.SearchMessageStatus.GetName())),
		AcceptedAt: info.GetStartTime().AsTime(),
		UpdatedAt:  info.GetStartTime().AsTime(),
	}
	if rec.CustomerID == "" {
		return smsgw.MessageRecord{}, err
	}
	memo, _ := submissionMemo(dataConverter(r.DataConverter), info) // without it, the reply lacks encoding and segments
	rec.Encoding, rec.Segments, rec.ClientRef = memo.Encoding, memo.Segments, memo.ClientRef
	if m, ok := r.submitted(ctx, id, info.GetExecution().GetRunId()); ok {
		rec.From, rec.To = m.From, m.To
		if !m.AcceptedAt.IsZero() {
			rec.AcceptedAt = m.AcceptedAt
		}
	}
	return rec, nil
}

// submitted returns the message a workflow was started with, from the first
// event of its history.
func (r *Reader) submitted(ctx context.Context, id, runID string) (smsgw.Message, bool) {
	it := r.Temporal.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return smsgw.Message{}, false
	}
	ev, err := it.Next()
	if err != nil {
		return smsgw.Message{}, false
	}
	var in workflows.MessageInput
	started := ev.GetWorkflowExecutionStartedEventAttributes()
	if started == nil || dataConverter(r.DataConverter).FromPayloads(started.GetInput(), &in) != nil {
		return smsgw.Message{}, false
	}
	return in.Message, true
}

// messageWorkflowType is the type name MessageWorkflow is registered under
// (the SDK names a workflow after its function).
var messageWorkflowType = func() string {
	name := runtime.FuncForPC(reflect.ValueOf(workflows.MessageWorkflow).Pointer()).Name()
	return name[strings.LastIndex(name, ".")+1:]
}()

// searchAttribute returns a keyword search attribute of a workflow, or "".
// Search attributes are never encoded by a codec: the default converter
// reads them.
func searchAttribute(info *workflowpb.WorkflowExecutionInfo, name string) string {
	var v string
	if p, ok := info.GetSearchAttributes().GetIndexedFields()[name]; ok {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &v)
	}
	return v
}

// submissionMemo returns the memo a message workflow started with; a
// workflow started before there was one has none. Memos go through the
// client's data converter, and so its codec: one this process cannot read
// (sealed with a key it does not hold) is an error.
func submissionMemo(dc converter.DataConverter, info *workflowpb.WorkflowExecutionInfo) (workflows.SubmissionMemo, error) {
	var m workflows.SubmissionMemo
	if p, ok := info.GetMemo().GetFields()[workflows.MemoSubmission]; ok {
		if err := dc.FromPayload(p, &m); err != nil {
			return m, fmt.Errorf("read the memo of %s: %w", info.GetExecution().GetWorkflowId(), err)
		}
	}
	return m, nil
}

func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
