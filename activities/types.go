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
	UpstreamIDs []string  `json:"upstreamIds"`
	SentAt      time.Time `json:"sentAt"`
}

// SendFailure is the detail attached to a failed send.
type SendFailure struct {
	CommandStatus uint32 `json:"commandStatus"`
	StatusName    string `json:"statusName"`
}

// RecordInput is a step to record: events to append and the reporting row to
// move forward. Both writes are idempotent.
type RecordInput struct {
	Events []smsgw.Event       `json:"events"`
	Row    smsgw.MessageRecord `json:"row"`
}
