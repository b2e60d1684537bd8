// Package activities holds the Temporal activities of a message's life and the
// payloads they exchange with the workflows. Activities are methods on structs
// that hold their dependencies; the small interfaces they need are declared here.
package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/routing"
)

// SendName is the activity that submits a message upstream. It runs in a
// connector process, on the connector's own task queue (see connectors/upstream).
const SendName = "Send"

// SendFunc is the send activity's signature. The workflow calls the
// activity by SendName in one process and a connector implements it in
// another; RegisterSend is the one place the name meets an implementation,
// so both sides are checked against this signature by the compiler.
type SendFunc func(ctx context.Context, in SendInput) (SendResult, error)

// ActivityRegistry is a Temporal worker, or a test environment.
type ActivityRegistry interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// RegisterSend registers a connector's send activity under SendName.
func RegisterSend(r ActivityRegistry, send SendFunc) {
	r.RegisterActivityWithOptions(send, activity.RegisterOptions{Name: SendName})
}

// Error types carried by temporal.ApplicationError, so workflows decide on
// types rather than on messages.
const (
	ErrTypeNoRoute        = "NoRoute"        // no rule matches the destination
	ErrTypeInvalid        = "Invalid"        // the message cannot be encoded or split
	ErrTypeSubmitRejected = "SubmitRejected" // upstream answered a permanent command_status
	ErrTypeSubmitRetry    = "SubmitRetry"    // upstream answered a retryable command_status
	ErrTypeNotBound       = "NotBound"       // the connector holds no bind right now
	ErrTypeInDoubt        = "InDoubt"        // no submit_sm_resp: upstream may or may not have it
	ErrTypeWebhookRefused = "WebhookRefused" // the customer's endpoint answered 4xx
	ErrTypeReroute        = "Reroute"        // upstream answered one of the connector's re-route errors
	ErrTypeRecordFailed   = "RecordFailed"   // RecordAndNotify could not record: record apart, with the store retries
	ErrTypeNotifyLater    = "NotifyLater"    // RecordAndNotify recorded, but the delivery must be retried apart
)

// NotifyOutcome is how the first attempt on one channel went in
// Activities.RecordAndNotifyAll: delivered when Error is empty, refused for
// good when Refused, else to be retried.
type NotifyOutcome struct {
	Error   string `json:"error,omitempty"`
	Refused bool   `json:"refused,omitempty"`
}

// PrepareInput is the input of Activities.Prepare.
type PrepareInput struct {
	Message smsgw.Message `json:"message"`
	Seq     int           `json:"seq"` // event sequence number of the first event
}

// PrepareResult is a message's plan: the route and the encoded parts of a
// message, and who hears about it.
type PrepareResult struct {
	Route routing.Decision `json:"route"`
	// Targets are the route's connectors in the order to try them.
	Targets []smsgw.Target `json:"targets"`
	// FailoverAfter is how long a send waits for a bound connector before
	// the next one is tried.
	FailoverAfter time.Duration    `json:"failoverAfter"`
	Encoding      string           `json:"encoding"`
	Parts         []smsgw.Part     `json:"parts"`
	Notify        smsgw.NotifyPlan `json:"notify"`
	// PlannedAt is when the route was decided.
	PlannedAt time.Time `json:"plannedAt"`
}

// SendInput is the input of the send activity.
type SendInput struct {
	MessageID   string        `json:"messageId"`
	ConnectorID string        `json:"connectorId"`
	From        string        `json:"from"`
	To          string        `json:"to"`
	Validity    time.Duration `json:"validity"`
	Parts       []smsgw.Part  `json:"parts"`
}

// SendResult is what upstream answered: one message ID per part, in order.
type SendResult struct {
	UpstreamIDs []string `json:"upstreamIds"`
	// Resubmitted are the parts (1-based) submitted again because an
	// earlier submit_sm of theirs was in doubt (inDoubt: resubmit): the
	// handset may get them twice.
	Resubmitted []int     `json:"resubmitted,omitempty"`
	SentAt      time.Time `json:"sentAt"`
	// Latencies are, per part in order, how long upstream took to answer
	// its submit_sm; 0 for a part an earlier attempt had submitted.
	Latencies []time.Duration `json:"latencies,omitempty"`
	// Attempt is the attempt of the send activity that finished the
	// send, from 1 (more than 1: earlier attempts were retried).
	Attempt int32 `json:"attempt,omitempty"`
	// Receipt is the final receipt of a one-part message when it came
	// back while the send was held for it (a connector's receiptWait):
	// the workflow takes it as if signalled.
	Receipt *smsgw.Receipt `json:"receipt,omitempty"`
}

// SendFailure is the detail attached to a failed send.
type SendFailure struct {
	CommandStatus uint32 `json:"commandStatus"`
	StatusName    string `json:"statusName"`
	// PartsAccepted is how many parts upstream had accepted through this
	// connector before the failure; PartInDoubt says the part that failed
	// may have reached upstream too. Either means the handset may have
	// some of the message, which decides what a failover does.
	PartsAccepted int  `json:"partsAccepted,omitempty"`
	PartInDoubt   bool `json:"partInDoubt,omitempty"`
}

// Reached is how many parts may have reached the handset through the
// connector that failed: those accepted, and the one in doubt.
func (f SendFailure) Reached() int {
	if f.PartInDoubt {
		return f.PartsAccepted + 1
	}
	return f.PartsAccepted
}

// RecordInput is a step to record: events to append and the reporting row to
// move forward. Both writes are idempotent.
type RecordInput struct {
	Events []smsgw.Event       `json:"events"`
	Row    smsgw.MessageRecord `json:"row"`
	// Close, when set, settles or releases the message in the billing
	// ledger before the events and the row say so.
	Close *LedgerClose `json:"close,omitempty"`
}

// LedgerClose is the last ledger step of a billed message.
type LedgerClose struct {
	CustomerID string `json:"customerId"`
	MessageID  string `json:"messageId"`
	Currency   string `json:"currency"`
	// Kind is smsgw.MoveSettle or smsgw.MoveRelease; Charge is what a
	// settlement takes (the unit price times Segments).
	Kind     string `json:"kind"`
	Charge   int64  `json:"charge"`
	Segments int    `json:"segments"`
}
