package smsgw

import (
	"encoding/base64"
	"errors"
	"time"
	"unicode/utf8"
)

// Notification channels.
const (
	ChannelWebhook = "webhook"
	ChannelSMPP    = "smpp"
	ChannelEmail   = "email"
)

// Notification is what a customer hears about a message's status.
type Notification struct {
	MessageID  string    `json:"messageId"`
	Status     Status    `json:"status"`
	Seq        int       `json:"seq"`
	OccurredAt time.Time `json:"occurredAt"`
	// Stat is the upstream receipt state for intermediate notifications
	// (ENROUTE, ACCEPTD) and for final ones that came from a receipt.
	Stat        string    `json:"stat,omitempty"`
	ErrorCode   string    `json:"errorCode,omitempty"`
	ErrorText   string    `json:"errorText,omitempty"`
	Parts       int       `json:"parts,omitempty"`
	From        string    `json:"from,omitempty"`
	To          string    `json:"to,omitempty"`
	SubmittedAt time.Time `json:"submittedAt"`
	// ClientRef is the customer's reference given at submission, if any.
	ClientRef string `json:"clientRef,omitempty"`
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
	Balance      *BalanceAlert   `json:"balance,omitempty"`
	// Redelivers is the event ID of the failed notification this delivery
	// repeats, "" for a first delivery.
	Redelivers string `json:"redelivers,omitempty"`
	// Sequel says an earlier delivery of the same subject went out on this
	// channel before (a later status of the same message). A channel that
	// keeps order through a queue of its own (smpp's outbox) must not let a
	// sequel overtake what may still wait there.
	Sequel bool `json:"sequel,omitempty"`
}

// Subject names what a delivery is about, for event IDs and logs.
func (d Delivery) Subject() (id, what string) {
	if d.Inbound != nil {
		return d.Inbound.ID, "inbound"
	}
	if d.Balance != nil {
		return d.Balance.ID, "low_balance"
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

// ErrRefused marks a delivery the receiver refused for good.
var ErrRefused = errors.New("refused by the receiver")

// ErrMessageEnded says a signal found its message's workflow ended: a
// receipt for it came late (a duplicate, or after its validity).
var ErrMessageEnded = errors.New("the message has ended")

// NotifyFailedEvent is the notify_failed event of a delivery that failed
// for reason at the given time. A delivery fails once per channel; occasion
// tells apart failures that can repeat (an SMPP outbox item that expired
// again after a redelivery), "" for the one failure of a delivery.
func NotifyFailedEvent(d Delivery, reason, occasion string, at time.Time) Event {
	id, what := d.Subject()
	step := "notify-failed-" + d.Channel + "-" + what
	if occasion != "" {
		step += "-" + occasion
	}
	seq := 0 // in a message's history, beside the status it notified
	if d.Notification != nil {
		seq = d.Notification.Seq
	}
	return NewEvent(id, d.CustomerID, seq, EventNotifyFailed, step, at.UTC(),
		map[string]any{"channel": d.Channel, "subject": what, "reason": reason, "result": "failed", "delivery": d})
}

// FailedNotification is a delivery that was refused or ran out of retries,
// as recorded by NotifyFailed, with what became of it since.
type FailedNotification struct {
	// ID names it in the API: an opaque, URL-safe form of the event ID.
	ID       string    `json:"id"`
	EventID  string    `json:"eventId"`
	Subject  string    `json:"subject"` // the message or inbound message ID
	What     string    `json:"what"`    // the status notified, or "inbound"
	Channel  string    `json:"channel"`
	Reason   string    `json:"reason"`
	FailedAt time.Time `json:"failedAt"`
	Delivery Delivery  `json:"delivery"`
	// DeliveredAt is set once a redelivery succeeded.
	DeliveredAt *time.Time `json:"deliveredAt,omitempty"`
}

// FailedNotificationID is the API's name for the notify_failed event with
// eventID: URL-safe, with no ':' to clash with custom REST verbs.
func FailedNotificationID(eventID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(eventID))
}

// ParseFailedNotificationID returns the event ID named by id. It returns an
// *Error with code ENOTFOUND for an id it did not make.
func ParseFailedNotificationID(id string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(b) == 0 || !utf8.Valid(b) {
		return "", Errorf(ENOTFOUND, "failed notification %q not found", id)
	}
	return string(b), nil
}
