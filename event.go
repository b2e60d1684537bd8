package smsgw

import "time"

// Event is one step in a message's life, as kept in the event store. Its ID is
// the message ID and the step name, so recording the same step twice (an
// activity retry) keeps one event.
type Event struct {
	ID         string         `json:"id" bson:"_id"`
	MessageID  string         `json:"messageId" bson:"messageId"`
	CustomerID string         `json:"customerId" bson:"customerId"`
	Seq        int            `json:"seq" bson:"seq"` // increasing per message
	Type       string         `json:"type" bson:"type"`
	At         time.Time      `json:"at" bson:"at"`
	Data       map[string]any `json:"data,omitempty" bson:"data,omitempty"`
}

// Event types.
const (
	EventAccepted  = "accepted"
	EventRouted    = "routed"
	EventSent      = "sent"
	EventSendError = "send_error"
	EventRerouted  = "rerouted"
	EventReplaced  = "replaced"
	EventReceipt   = "receipt"
	EventFinal     = "final"
	EventNotified  = "notified"
	// EventBilled is what a billed message cost: settled (charged) or
	// released (its reservation lifted), with the amounts.
	EventBilled = "billed"
	// EventNotifyFailed is a notification refused by the customer's endpoint
	// or not delivered within its retry period; it can be redelivered.
	EventNotifyFailed = "notify_failed"
)

// NewEvent returns an event whose ID is derived from the message and step.
func NewEvent(messageID, customerID string, seq int, typ, step string, at time.Time, data map[string]any) Event {
	return Event{
		ID:         messageID + ":" + step,
		MessageID:  messageID,
		CustomerID: customerID,
		Seq:        seq,
		Type:       typ,
		At:         at,
		Data:       data,
	}
}

// Correlation ties an upstream message ID, as the connector's SMSC gave it in
// submit_sm_resp, to our message and segment.
type Correlation struct {
	ConnectorID string    `json:"connectorId" bson:"connectorId"`
	UpstreamID  string    `json:"upstreamId" bson:"upstreamId"` // normalised
	MessageID   string    `json:"messageId" bson:"messageId"`
	Segment     int       `json:"segment" bson:"segment"` // 1-based part number
	CreatedAt   time.Time `json:"createdAt" bson:"createdAt"`
}

// MessageRecord is a message's row in the reporting database: where it is now.
type MessageRecord struct {
	ID          string     `json:"id"`
	CustomerID  string     `json:"customerId"`
	EntryPoint  EntryPoint `json:"entryPoint"`
	From        string     `json:"from"`
	To          string     `json:"to"`
	Status      Status     `json:"status"`
	ConnectorID string     `json:"connectorId,omitempty"`
	UpstreamID  string     `json:"upstreamId,omitempty"`
	Segments    int        `json:"segments"`
	Encoding    string     `json:"encoding,omitempty"`
	ClientRef   string     `json:"clientRef,omitempty"` // the customer's reference
	// CostMicros is what the message was charged, in micro-units of
	// Currency, once it is settled (billing); 0 before or when not billed.
	CostMicros int64      `json:"costMicros,omitempty"`
	Currency   string     `json:"currency,omitempty"`
	ErrorCode  string     `json:"errorCode,omitempty"`
	ErrorText  string     `json:"errorText,omitempty"`
	AcceptedAt time.Time  `json:"acceptedAt"`
	SentAt     *time.Time `json:"sentAt,omitempty"`
	DoneAt     *time.Time `json:"doneAt,omitempty"`
	UpdatedAt  time.Time  `json:"updatedAt"`
}
