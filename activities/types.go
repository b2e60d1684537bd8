// Package activities holds the Temporal activities of a message's life and the
// payloads they exchange with the workflows. Activities are methods on structs
// that hold their dependencies; the small interfaces they need are declared here.
package activities

import (
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/routing"
)

// SendName is the activity that submits a message upstream. It runs in a
// connector process, on the connector's own task queue (see connectors/upstream).
const SendName = "Send"

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
)

// Part is one submit_sm of a message, already encoded.
type Part struct {
	Seq          int    `json:"seq"` // 1-based
	DataCoding   byte   `json:"dataCoding"`
	ESMClass     byte   `json:"esmClass"`
	ShortMessage []byte `json:"shortMessage"`
	SAR          *SAR   `json:"sar,omitempty"`
}

// SAR is the concatenation information sent as SMPP TLVs instead of a UDH.
type SAR struct {
	Ref   uint16 `json:"ref"`
	Total uint8  `json:"total"`
	Seq   uint8  `json:"seq"`
}

// PrepareInput is the input of Activities.Prepare.
type PrepareInput struct {
	Message smsgw.Message `json:"message"`
	Seq     int           `json:"seq"` // event sequence number of the first event
}

// PrepareResult is the route and the encoded parts of a message, and who
// hears about it.
type PrepareResult struct {
	Route routing.Decision `json:"route"`
	// Targets are the route's connectors in the order to try them.
	Targets []Target `json:"targets"`
	// FailoverAfter is how long a send waits for a bound connector before
	// the next one is tried.
	FailoverAfter time.Duration `json:"failoverAfter"`
	Encoding      string        `json:"encoding"`
	Parts         []Part        `json:"parts"`
	Notify        NotifyPlan    `json:"notify"`
}

// Target is a connector a message may go through, with what the workflow
// needs to know of it.
type Target struct {
	ID string `json:"id"`
	// RerouteReceiptErrs are receipt error codes ("034") after which the
	// message is sent again through the next connector.
	RerouteReceiptErrs []string `json:"rerouteReceiptErrs,omitempty"`
}

// Notification channels.
const (
	ChannelWebhook = "webhook"
	ChannelSMPP    = "smpp"
	ChannelEmail   = "email"
)

// NotifyPlan is decided once per message, when it is accepted, so the
// workflow never reads configuration: the channels to notify, in order, and
// whether intermediate statuses are notified too.
type NotifyPlan struct {
	Channels    []string `json:"channels"`
	AllStatuses bool     `json:"allStatuses,omitempty"`
	// SMPPFailureOnly sends SMPP receipts only for final failures
	// (registered_delivery 2).
	SMPPFailureOnly bool          `json:"smppFailureOnly,omitempty"`
	RetryFor        time.Duration `json:"retryFor"`
}

// SendInput is the input of the send activity.
type SendInput struct {
	MessageID   string        `json:"messageId"`
	ConnectorID string        `json:"connectorId"`
	From        string        `json:"from"`
	To          string        `json:"to"`
	Validity    time.Duration `json:"validity"`
	Parts       []Part        `json:"parts"`
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

// Notification is what a customer hears about a message's status.
type Notification struct {
	MessageID  string       `json:"messageId"`
	Status     smsgw.Status `json:"status"`
	Seq        int          `json:"seq"`
	OccurredAt time.Time    `json:"occurredAt"`
	// Stat is the upstream receipt state for intermediate notifications
	// (ENROUTE, ACCEPTD) and for final ones that came from a receipt.
	Stat        string    `json:"stat,omitempty"`
	ErrorCode   string    `json:"errorCode,omitempty"`
	ErrorText   string    `json:"errorText,omitempty"`
	Parts       int       `json:"parts,omitempty"`
	From        string    `json:"from,omitempty"`
	To          string    `json:"to,omitempty"`
	SubmittedAt time.Time `json:"submittedAt"`
}

// InboundMessage is a mobile-originated message for a customer.
type InboundMessage struct {
	ID         string    `json:"id"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	Text       string    `json:"text"`
	Encoding   string    `json:"encoding"`
	Parts      int       `json:"parts"`
	Partial    bool      `json:"partial,omitempty"` // some parts never arrived
	Keyword    string    `json:"keyword,omitempty"`
	Connector  string    `json:"connector,omitempty"`
	ReceivedAt time.Time `json:"receivedAt"`
}

// Delivery is one thing to tell a customer on one channel: a message's
// status, or an inbound message.
type Delivery struct {
	Channel      string          `json:"channel"`
	CustomerID   string          `json:"customerId"`
	CallbackURL  string          `json:"callbackUrl,omitempty"` // overrides the customer's webhook
	Notification *Notification   `json:"notification,omitempty"`
	Inbound      *InboundMessage `json:"inbound,omitempty"`
	// Redelivers is the event ID of the failed notification this delivery
	// repeats, "" for a first delivery.
	Redelivers string `json:"redelivers,omitempty"`
}

// Subject names what a delivery is about, for event IDs and logs.
func (d Delivery) Subject() (id, what string) {
	if d.Inbound != nil {
		return d.Inbound.ID, "inbound"
	}
	if d.Notification != nil {
		n := d.Notification
		what = string(n.Status)
		if n.Stat != "" {
			what += "-" + n.Stat
		}
		return n.MessageID, what
	}
	return "", ""
}
