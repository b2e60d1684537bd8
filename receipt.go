package smsgw

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Receipt is a delivery receipt from an upstream SMSC, already matched to the
// connector that received it. Stat is the SMPP final or intermediate state
// word (DELIVRD, UNDELIV, REJECTD, EXPIRED, DELETED, ENROUTE, ACCEPTD, UNKNOWN).
type Receipt struct {
	ConnectorID string    `json:"connectorId"`
	UpstreamID  string    `json:"upstreamId"` // normalised, see NormalizeUpstreamID
	Stat        string    `json:"stat"`
	Err         string    `json:"err,omitempty"` // network error code, 3 digits
	DoneAt      time.Time `json:"doneAt,omitempty"`
	ReceivedAt  time.Time `json:"receivedAt"`
	// Raw is the receipt as upstream sent it: its text (the short message
	// or message_payload), at most MaxRawReceipt bytes; "" when it came
	// in optional parameters only.
	Raw string `json:"raw,omitempty"`
}

// ParkedKey names a receipt among the parked ones: one for each connector,
// upstream ID and state (ENROUTE and DELIVRD of one message apart), in the
// order the rematcher goes through them.
func (r Receipt) ParkedKey() string { return r.ConnectorID + ":" + r.UpstreamID + ":" + r.Stat }

// MaxRawReceipt caps Receipt.Raw.
const MaxRawReceipt = 512

// Status maps the receipt's state word to a message status. ok is false for
// intermediate states that do not end the wait.
func (r Receipt) Status() (s Status, final bool) {
	switch r.Stat {
	case "DELIVRD":
		return StatusDelivered, true
	case "UNDELIV", "DELETED":
		return StatusUndeliverable, true
	case "REJECTD":
		return StatusRejected, true
	case "EXPIRED":
		return StatusExpired, true
	}
	return StatusSent, false
}

// NormalizeReceiptErr gives a receipt's err: code a form that compares
// equal however the SMSC wrote it: a number with at least three digits
// ("34" and "0034" give "034"), anything else trimmed and in lower case.
func NormalizeReceiptErr(code string) string {
	code = strings.ToLower(strings.TrimSpace(code))
	if n, err := strconv.ParseUint(code, 10, 32); err == nil {
		return fmt.Sprintf("%03d", n)
	}
	return code
}
