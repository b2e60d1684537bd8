package smsgw

import (
	"context"
	"time"
)

// MessageQuery selects messages from the reporting database, newest
// accepted first (ties by ID, newest first). Empty fields match everything.
type MessageQuery struct {
	// CustomerID is the customer whose messages to find; "" finds every
	// customer's (an operator's search).
	CustomerID  string
	Status      Status // current status
	To          string // destination, as submitted (E.164 with '+')
	From        string // sender, as submitted
	ConnectorID string // the connector that carried it (or will)
	ClientRef   string // the customer's reference
	// Since and Until bound the acceptance time: at or after Since, before Until.
	Since, Until time.Time
	// PageSize caps the page (default DefaultMessagePageSize, at most MaxMessagePageSize).
	PageSize int
	// PageToken continues an earlier search with the same filters (its
	// NextPageToken); opaque.
	PageToken string
}

// Page sizes of a message search.
const (
	DefaultMessagePageSize = 100
	MaxMessagePageSize     = 1000
)

// MessagePage is one page of a message search.
type MessagePage struct {
	Messages      []MessageRecord
	NextPageToken string // "" on the last page
}

// MessageSearcher finds messages (the reporting database does). Bad filters
// or a page token that is not one of its own are *Error with code EINVALID.
type MessageSearcher interface {
	SearchMessages(ctx context.Context, q MessageQuery) (MessagePage, error)
}

// EventReader reads a message's events in order (the event store does).
type EventReader interface {
	Events(ctx context.Context, messageID string) ([]Event, error)
}

// UsageQuery asks for the messages that reached a final status, counted per
// day of acceptance in a time zone, over the days [From, To).
type UsageQuery struct {
	// CustomerID is the customer to count; "" counts every customer, each
	// apart (an operator's report).
	CustomerID string
	// From and To are the first day and the day after the last, as dates
	// (only their year, month and day are read), in Location.
	From, To time.Time
	// Location is the time zone of the days; nil is UTC.
	Location *time.Location
}

// MaxUsageDays is the longest range a usage report covers.
const MaxUsageDays = 366

// UsageRow is the count of one day, customer, entry point, connector,
// final status and currency.
type UsageRow struct {
	Day         string // YYYY-MM-DD in the query's time zone
	CustomerID  string
	EntryPoint  EntryPoint
	ConnectorID string
	Status      Status
	Messages    int64
	Segments    int64
	// Currency is what the messages were charged in, "" for messages not
	// billed; CostMicros their charges' sum, in micro-units of it.
	Currency   string
	CostMicros int64
}

// RefusalRow is the count of one day, customer and reason of the
// submissions refused before they became messages.
type RefusalRow struct {
	Day        string // YYYY-MM-DD in the query's time zone
	CustomerID string
	Reason     string // the refusal's Reason: OPTED_OUT, INSUFFICIENT_BALANCE, …
	Refusals   int64
}

// UsageReader reports usage (the reporting database does).
type UsageReader interface {
	Usage(ctx context.Context, q UsageQuery) ([]UsageRow, error)
	// Refusals counts the refused submissions over the same days.
	Refusals(ctx context.Context, q UsageQuery) ([]RefusalRow, error)
}

// RefusalCounter counts refused submissions for the usage reports, per
// customer, reason (the refusal's Error.Reason) and time.
type RefusalCounter interface {
	CountRefusal(ctx context.Context, customerID, reason string, at time.Time) error
}
