package smsgw

import (
	"context"
	"time"
)

// Accepted is the answer to a submission: the message is durable from here
// on. For a repeated idempotency key it is the message the key names as it
// is now: its current status, segments and encoding.
type Accepted struct {
	ID       string `json:"id"`
	Status   Status `json:"status"`
	Segments int    `json:"segments"`
	Encoding string `json:"encoding"`
	// Existing is true when an earlier submission of the same request under
	// the same idempotency key had already been accepted.
	Existing bool `json:"existing"`
}

// Submitter accepts messages from every entry point (REST, gRPC, SMPP, email).
// It validates, applies the idempotency key, starts the message's workflow and
// returns only once the message is durable. Errors are *Error with codes
// EINVALID, EUNAVAILABLE or ETHROTTLED, and ECONFLICT for an idempotency key
// already used for another request.
type Submitter interface {
	Submit(ctx context.Context, m Message) (Accepted, error)
}

// Canceller withdraws a message that has not been sent upstream yet. It
// returns an *Error with code ECONFLICT when the message is already on its
// way or final, and ENOTFOUND when the customer has no such message.
type Canceller interface {
	Cancel(ctx context.Context, customerID, messageID string) error
}

// Replacer changes the text, the schedule or both of a message that has not
// been sent upstream yet (an empty text or a zero time keeps the current one). Errors are as for Canceller, plus EINVALID
// for a text that cannot be sent.
type Replacer interface {
	Replace(ctx context.Context, customerID, messageID, text string, scheduleAt time.Time) error
}

// MessageReader reads a message's current state. It returns an *Error with
// code ENOTFOUND when there is no such message.
type MessageReader interface {
	GetMessage(ctx context.Context, id string) (MessageRecord, error)
}
