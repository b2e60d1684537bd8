// Package workflows holds the Temporal workflows of the gateway. Workflow code
// is deterministic: it reads no clock but workflow.Now, no configuration and
// no randomness; everything it needs comes in its input or from activities.
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
)

// TaskQueue is where message workflows and the activities that need no SMPP
// bind run.
const TaskQueue = "smsgw-messages"

// SendTaskQueue is the task queue served by the connector processes that hold
// binds to connectorID. Only they can run the send activity for it.
func SendTaskQueue(connectorID string) string { return "smpp-out." + connectorID }

// SignalReceipt carries a delivery receipt (ReceiptSignal) to a message workflow.
const SignalReceipt = "receipt"

// QueryStatus answers a message's current status (smsgw.Status).
const QueryStatus = "status"

// UpdateCancel withdraws a message not yet sent upstream. It is refused once
// the message is on its way.
const UpdateCancel = "cancel"

// UpdateReplace changes the text (and optionally the schedule) of a message
// not yet sent upstream (ReplaceRequest). It is refused once the message is
// on its way.
const UpdateReplace = "replace"

// UpdateReview releases or rejects a message held for review
// (ReviewRequest). It is refused for a message that is not held.
const UpdateReview = "review"

// ReviewRequest is the payload of UpdateReview.
type ReviewRequest struct {
	Release bool   `json:"release"` // true: send it; false: reject it
	Reason  string `json:"reason,omitempty"`
}

// ReplaceRequest is the payload of UpdateReplace.
type ReplaceRequest struct {
	Text       string    `json:"text"`
	ScheduleAt time.Time `json:"scheduleAt,omitzero"`
}

// Search attributes set on every message workflow, so support staff can find
// messages in the Temporal UI. No phone number or text ever goes here: search
// attributes are stored unencrypted.
var (
	SearchCustomerID        = temporal.NewSearchAttributeKeyKeyword("CustomerId")
	SearchMessageStatus     = temporal.NewSearchAttributeKeyKeyword("MessageStatus")
	SearchConnectorID       = temporal.NewSearchAttributeKeyKeyword("ConnectorId")
	SearchUpstreamMessageID = temporal.NewSearchAttributeKeyKeywordList("UpstreamMessageId")
	SearchEntryPoint        = temporal.NewSearchAttributeKeyKeyword("EntryPoint")
	// SearchDueAt is when the message may go upstream: its acceptance, or
	// the time it is scheduled for. Admission control counts a customer's
	// messages still ACCEPTED once they are due.
	SearchDueAt = temporal.NewSearchAttributeKeyTime("DueAt")
)

// SearchAttributeFlags lists the search attributes as the Temporal CLI's
// --search-attribute values (Name=Type).
var SearchAttributeFlags = []string{
	"CustomerId=Keyword",
	"MessageStatus=Keyword",
	"ConnectorId=Keyword",
	"UpstreamMessageId=KeywordList",
	"EntryPoint=Keyword",
	"DueAt=Datetime",
}

// MemoSubmission is the memo key under which a message workflow starts with
// its SubmissionMemo.
const MemoSubmission = "submission"

// SubmissionMemo is what the gateway keeps of a submission beside the
// workflow's input, where DescribeWorkflowExecution reads it without the
// history. It is written with the workflow's start, in the same request, so
// a repeated idempotency key that races the first submission finds it.
// Memos are not indexed but are kept in the visibility store: no phone
// number or text goes here either.
type SubmissionMemo struct {
	// Fingerprint is a keyed hash of the request an idempotency key named
	// (empty without a key): a later request under the same key must match
	// it to be answered with this message.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Encoding and Segments are what the submission was answered with;
	// they stand until Prepare records the message's own in its row.
	Encoding string `json:"encoding"`
	Segments int    `json:"segments"`
	// ClientRef is the customer's reference for the message, so a message
	// read from Temporal alone (no reporting row yet) still carries it.
	ClientRef string `json:"clientRef,omitempty"`
}

// MessageInput starts a MessageWorkflow.
type MessageInput struct {
	Message smsgw.Message `json:"message"`
	// Plan is the route and parts the Submitter decided when it accepted
	// the message, so the workflow need not decide them again. Without it
	// (and for a message scheduled for later) the workflow plans in a
	// Prepare local activity.
	Plan *activities.PrepareResult `json:"plan,omitempty"`
	// Charge is the message's price when its customer is billed: the
	// workflow settles it when it was sent, else releases it (the
	// reservation a prepaid message was accepted with).
	Charge *smsgw.Charge `json:"charge,omitempty"`
	// Admission is what the admission rules decided, when a rule matched:
	// the matches are recorded as events, and a hold keeps the message
	// until it is reviewed.
	Admission *smsgw.Admission `json:"admission,omitempty"`
	// SendHere asks the workflow to send from the process that runs it
	// when that process holds the connector bound (the SendHere local
	// activity), and through the connector's task queue otherwise: set by
	// a Submitter whose process runs both message workflows and
	// connectors. Without it (and in the workflows started before it)
	// every send goes through the task queue.
	SendHere bool `json:"sendHere,omitempty"`
}

// MessageResult is how a message's life ended.
type MessageResult struct {
	Status    smsgw.Status `json:"status"`
	ErrorCode string       `json:"errorCode,omitempty"`
	ErrorText string       `json:"errorText,omitempty"`
}

// ReceiptSignal is the payload of SignalReceipt: a receipt matched to one
// segment of this message.
type ReceiptSignal struct {
	Receipt smsgw.Receipt `json:"receipt"`
	Segment int           `json:"segment"`
}

// StartAttributes are the search attributes a message workflow starts with.
func StartAttributes(m smsgw.Message) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(
		SearchCustomerID.ValueSet(m.CustomerID),
		SearchEntryPoint.ValueSet(string(m.EntryPoint)),
		SearchMessageStatus.ValueSet(string(smsgw.StatusAccepted)),
		SearchDueAt.ValueSet(DueAt(m)),
	)
}

// DueAt is when m may go upstream.
func DueAt(m smsgw.Message) time.Time {
	if !m.ScheduleAt.IsZero() && m.ScheduleAt.After(m.AcceptedAt) {
		return m.ScheduleAt.UTC()
	}
	return m.AcceptedAt.UTC()
}
