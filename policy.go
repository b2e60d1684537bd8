package smsgw

import (
	"context"
	"time"
)

// Reasons a policy refuses a submission, as entry points show them
// (Error.Reason). Opt-out, destination and content refusals are EFORBIDDEN
// (REST 403); velocity and pumping-guard refusals are ETHROTTLED (REST 429).
const (
	ReasonOptedOut              = "OPTED_OUT"
	ReasonDestinationNotAllowed = "DESTINATION_NOT_ALLOWED"
	ReasonContentRefused        = "CONTENT_REFUSED"
	ReasonVelocityLimit         = "VELOCITY_LIMIT"
	ReasonUnusualDestination    = "UNUSUAL_DESTINATION_TRAFFIC"
)

// Refused returns the error of a submission a policy refused.
func Refused(code, reason, format string, args ...any) *Error {
	e := Errorf(code, format, args...)
	e.Reason = reason
	return e
}

// Event types of the rules a message met when it was accepted and of its
// review when a rule held it.
const (
	EventRuleMatched    = "rule_matched"    // a content, velocity or pumping rule matched (data: rule, action, …)
	EventHeld           = "held"            // held for review until released, rejected or timed out
	EventReviewReleased = "review_released" // an operator released it: it goes on
	EventReviewRejected = "review_rejected" // an operator rejected it, or its review timed out
)

// Actions of a rule that matched a submission it let in.
const (
	ActionRefuse        = "refuse"
	ActionHold          = "hold"
	ActionRewriteSender = "rewriteSender"
	ActionTag           = "tag"
	ActionAlert         = "alert"
)

// RuleMatch is one rule that matched a submission: recorded as an
// EventRuleMatched of its message.
type RuleMatch struct {
	Rule   string `json:"rule"`   // the rule's name, e.g. "content:no-crypto" or "velocity:0"
	Action string `json:"action"` // what it did (Action…)
	Detail string `json:"detail,omitempty"`
	Tag    string `json:"tag,omitempty"`    // ActionTag: the tag
	Sender string `json:"sender,omitempty"` // ActionRewriteSender: the new sender
}

// Hold keeps a message in its workflow, before it is sent, until an
// operator releases or rejects it or Timeout passes (then it is rejected).
type Hold struct {
	Reason  string        `json:"reason"`
	Timeout time.Duration `json:"timeout"`
}

// Admission is what the rules decided about a submission they let in.
type Admission struct {
	// From, when set, is the sender a rule rewrote the message's to.
	From string `json:"from,omitempty"`
	// Hold, when set, holds the message for review.
	Hold *Hold `json:"hold,omitempty"`
	// Matches are every rule that matched, in the order they were checked.
	Matches []RuleMatch `json:"matches,omitempty"`
}

// Admitter checks a submission against the opt-out list and the rules
// (allowed destinations, content, velocity, pumping guard) before it costs
// anything. A refusal is an *Error with code EFORBIDDEN or ETHROTTLED and a
// Reason. A submission let in is counted toward the velocity limits and
// the pumping guard's traffic; undo (never nil when err is nil) takes
// those counts back, for a submission a later step refuses or that turns
// out to repeat an accepted message. Undo is best effort: a count it
// cannot take back is logged.
type Admitter interface {
	Admit(ctx context.Context, m Message) (adm Admission, undo func(), err error)
}

// Reviewer releases or rejects a message a rule held for review. It answers
// ENOTFOUND for a message that is not the customer's, and ECONFLICT for one
// that is not held.
type Reviewer interface {
	Review(ctx context.Context, customerID, messageID string, release bool, reason string) error
}

// OperatorReviewer releases or rejects a held message of any customer, for
// the operators, and says whose it was. It answers ENOTFOUND for an
// unknown message and ECONFLICT for one that is not held.
type OperatorReviewer interface {
	ReviewAny(ctx context.Context, messageID string, release bool, reason string) (customerID string, err error)
}

// OptOut is one number that asked not to receive messages: from one of the
// customer's sender numbers (Sender, digits only) or from the customer as a
// whole (Sender "").
type OptOut struct {
	CustomerID string    `json:"customerId" bson:"customerId"`
	Sender     string    `json:"sender" bson:"sender"`
	Number     string    `json:"number" bson:"number"` // E.164 with '+'
	Source     string    `json:"source" bson:"source"` // "mo", "api" or "import"
	Keyword    string    `json:"keyword,omitempty" bson:"keyword,omitempty"`
	At         time.Time `json:"at" bson:"at"`
}

// OptOutQuery selects a customer's opt-outs to list, by number.
type OptOutQuery struct {
	CustomerID string
	// Sender, when set, lists that sender's entries only.
	Sender    string
	PageSize  int // default 100, at most 1000
	PageToken string
}

// OptOutList is the opt-out list every replica shares.
type OptOutList interface {
	// OptedOut tells whether number opted out of the customer, as a whole
	// or of sender (when sender is a number).
	OptedOut(ctx context.Context, customerID, sender, number string) (bool, error)
	// AddOptOuts adds entries (an entry already there is kept) and says
	// how many were new.
	AddOptOuts(ctx context.Context, entries []OptOut) (added int, err error)
	// RemoveOptOut removes one entry; false when there was none.
	RemoveOptOut(ctx context.Context, customerID, sender, number string) (bool, error)
	// ListOptOuts lists entries by number, a page at a time.
	ListOptOuts(ctx context.Context, q OptOutQuery) (entries []OptOut, nextPageToken string, err error)
}

// SenderDigits is the form a sender number takes in the opt-out list: its
// digits, without '+'; "" for an alphanumeric sender.
func SenderDigits(from string) string {
	s := from
	if len(s) > 0 && s[0] == '+' {
		s = s[1:]
	}
	if s == "" {
		return ""
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return ""
		}
	}
	return s
}
