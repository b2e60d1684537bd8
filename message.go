// Package smsgw holds the domain of the gateway: messages, their statuses,
// receipts, customers and the errors every adapter maps to its own protocol.
// It has no dependency on Temporal, SMPP, HTTP or any database.
package smsgw

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Status is where a message is in its life. The names are the ones customers see.
type Status string

const (
	StatusAccepted      Status = "ACCEPTED"      // durable, not yet handed upstream
	StatusSent          Status = "SENT"          // upstream answered submit_sm_resp OK
	StatusDelivered     Status = "DELIVERED"     // receipt DELIVRD
	StatusUndeliverable Status = "UNDELIVERABLE" // receipt UNDELIV (or DELETED)
	StatusExpired       Status = "EXPIRED"       // receipt EXPIRED, or no receipt by the end of validity
	StatusRejected      Status = "REJECTED"      // receipt REJECTD, or a permanent submit error upstream
	StatusFailed        Status = "FAILED"        // we could not hand it upstream (no route, retries exhausted)
	StatusCancelled     Status = "CANCELLED"     // the customer cancelled it before it was sent (SMPP cancel_sm)
)

// Final reports whether no later status can follow.
func (s Status) Final() bool {
	switch s {
	case StatusDelivered, StatusUndeliverable, StatusExpired, StatusRejected, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Rank orders statuses so that stores can refuse to move a message backwards.
func (s Status) Rank() int {
	switch s {
	case StatusAccepted:
		return 1
	case StatusSent:
		return 2
	case "":
		return 0
	}
	return 3
}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool { return s == StatusAccepted || s == StatusSent || s.Final() }

// EntryPoint names how a message reached us.
type EntryPoint string

const (
	EntryREST  EntryPoint = "rest"
	EntryGRPC  EntryPoint = "grpc"
	EntrySMPP  EntryPoint = "smpp"
	EntryEmail EntryPoint = "email"
	// EntryImport marks a message brought over from another gateway's
	// history by `smsgw import`: it was never sent by this gateway.
	EntryImport EntryPoint = "import"
)

// Limits on what a customer may submit.
const (
	MaxTextRunes       = 1600 // ten concatenated UCS-2 parts and then some
	MaxAddressLength   = 20   // SMPP source_addr/destination_addr are C-Octet Strings of 21
	DefaultValidity    = 48 * time.Hour
	MaxValidity        = 7 * 24 * time.Hour
	MaxCallbackURLSize = 2048
	// MaxIdempotencyKeyLength bounds an idempotency key, which must be
	// printable ASCII (see ValidIdempotencyKey).
	MaxIdempotencyKeyLength = 255
	// MaxClientRefLength bounds a client reference, which must be printable
	// (see ValidClientRef).
	MaxClientRefLength = 64
)

// Message is a submission as accepted from a customer.
type Message struct {
	ID             string     `json:"id"`
	CustomerID     string     `json:"customerId"`
	EntryPoint     EntryPoint `json:"entryPoint"`
	From           string     `json:"from"`
	To             string     `json:"to"` // E.164 with leading '+'
	Text           string     `json:"text"`
	CallbackURL    string     `json:"callbackUrl,omitempty"`
	IdempotencyKey string     `json:"idempotencyKey,omitempty"`
	// SubmissionRef names one submission where the entry point has no
	// idempotency key but knows its submissions apart (an SMPP session and
	// the sequence number of its submit_sm). The message's ID is derived
	// from it, so a start whose answer was lost is tried again without
	// making a second message, and answered with the one it made.
	SubmissionRef string        `json:"submissionRef,omitempty"`
	Validity      time.Duration `json:"validity"`
	AcceptedAt    time.Time     `json:"acceptedAt"`
	// ScheduleAt, when set, is when the message may be sent upstream at the
	// earliest (SMPP schedule_delivery_time). It must fall within validity.
	ScheduleAt time.Time `json:"scheduleAt,omitzero"`
	// ReceiptRequested is set for SMPP submissions with registered_delivery:
	// the customer wants a deliver_sm receipt on its binds.
	ReceiptRequested bool `json:"receiptRequested,omitempty"`
	// ReceiptOnFailureOnly narrows that to failures (registered_delivery 2).
	ReceiptOnFailureOnly bool `json:"receiptOnFailureOnly,omitempty"`
	// ClientRef is the customer's own reference for the message: stored
	// with it, returned when it is read and sent in its notifications.
	ClientRef string `json:"clientRef,omitempty"`
}

// Validate checks what a customer sent. It returns an *Error with code EINVALID.
func (m *Message) Validate() error {
	var problems []string
	if m.CustomerID == "" {
		problems = append(problems, "customer is required")
	}
	if m.From == "" {
		problems = append(problems, "from is required")
	} else if !validSender(m.From) {
		problems = append(problems, fmt.Sprintf("from %q must be 1-11 alphanumeric characters or a phone number of up to 15 digits", m.From))
	}
	if m.To == "" {
		problems = append(problems, "to is required")
	} else if _, err := NormalizeMSISDN(m.To); err != nil {
		problems = append(problems, err.Error())
	}
	switch {
	case m.Text == "":
		problems = append(problems, "text is required")
	case !utf8.ValidString(m.Text):
		problems = append(problems, "text is not valid UTF-8")
	case utf8.RuneCountInString(m.Text) > MaxTextRunes:
		problems = append(problems, fmt.Sprintf("text has %d characters, at most %d are allowed", utf8.RuneCountInString(m.Text), MaxTextRunes))
	}
	if m.CallbackURL != "" {
		if _, err := ParseWebhookURL(m.CallbackURL); err != nil {
			problems = append(problems, "callbackUrl "+err.Error())
		}
	}
	if m.IdempotencyKey != "" && !ValidIdempotencyKey(m.IdempotencyKey) {
		problems = append(problems, fmt.Sprintf("the idempotency key must be 1 to %d printable ASCII characters", MaxIdempotencyKeyLength))
	}
	if m.ClientRef != "" && !ValidClientRef(m.ClientRef) {
		problems = append(problems, fmt.Sprintf("clientRef must be at most %d printable characters", MaxClientRefLength))
	}
	if m.Validity < 0 || m.Validity > MaxValidity {
		problems = append(problems, fmt.Sprintf("validity must be between 0 and %s", MaxValidity))
	}
	if len(problems) > 0 {
		return Errorf(EINVALID, "%s", strings.Join(problems, "; "))
	}
	return nil
}

// ValidIdempotencyKey reports whether k is 1 to MaxIdempotencyKeyLength
// printable ASCII characters (space to '~').
func ValidIdempotencyKey(k string) bool {
	if k == "" || len(k) > MaxIdempotencyKeyLength {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < ' ' || k[i] > '~' {
			return false
		}
	}
	return true
}

// ValidClientRef reports whether r is at most MaxClientRefLength
// characters of valid UTF-8, none of them a control character.
func ValidClientRef(r string) bool {
	if !utf8.ValidString(r) || utf8.RuneCountInString(r) > MaxClientRefLength {
		return false
	}
	for _, c := range r {
		if unicode.IsControl(c) || !unicode.IsPrint(c) && c != ' ' {
			return false
		}
	}
	return true
}

// NormalizeMSISDN returns a destination number in E.164 form with a leading '+'.
// It accepts "+61412345678", "61412345678" and "0061412345678", with spaces or
// dashes between digits.
func NormalizeMSISDN(s string) (string, error) {
	orig := s
	s = strings.NewReplacer(" ", "", "-", "", "(", "", ")", "").Replace(s)
	s = strings.TrimPrefix(s, "+")
	if strings.HasPrefix(s, "00") {
		s = s[2:]
	}
	if len(s) < 7 || len(s) > 15 {
		return "", Errorf(EINVALID, "to %q is not a valid international phone number (7 to 15 digits)", orig)
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return "", Errorf(EINVALID, "to %q is not a valid international phone number (digits only)", orig)
		}
	}
	if s[0] == '0' {
		return "", Errorf(EINVALID, "to %q must start with a country code", orig)
	}
	return "+" + s, nil
}

// ValidSender says whether s can be a message's source address: up to 15
// digits (with an optional leading '+'), or up to 11 letters, digits,
// spaces and - . _ &.
func ValidSender(s string) bool { return validSender(s) }

func validSender(s string) bool {
	digits := strings.TrimPrefix(s, "+")
	allDigits := digits != ""
	for _, r := range digits {
		if r < '0' || r > '9' {
			allDigits = false
		}
	}
	if allDigits {
		return len(digits) <= 15
	}
	if len(s) > 11 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == ' ' || r == '-' || r == '.' || r == '_' || r == '&') {
			return false
		}
	}
	return true
}
