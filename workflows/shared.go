// Package workflows holds the Temporal workflows of the gateway. Workflow code
// is deterministic: it reads no clock but workflow.Now, no configuration and
// no randomness; everything it needs comes in its input or from activities.
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/smsgw/smsgw"
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
)

// SearchAttributeFlags lists the search attributes as the Temporal CLI's
// --search-attribute values (Name=Type).
var SearchAttributeFlags = []string{
	"CustomerId=Keyword",
	"MessageStatus=Keyword",
	"ConnectorId=Keyword",
	"UpstreamMessageId=KeywordList",
	"EntryPoint=Keyword",
}

// MessageInput starts a MessageWorkflow.
type MessageInput struct {
	Message smsgw.Message `json:"message"`
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
	)
}
