package smsgw

import (
	"context"
	"time"
)

// HeldMessage is a message a rule holds for review, as the operators'
// list shows it: from its hold until it is released, rejected (by an
// operator or when the hold times out) or cancelled.
type HeldMessage struct {
	ID         string `json:"id"`
	CustomerID string `json:"customerId"`
	From       string `json:"from"`
	To         string `json:"to"`
	// Rule is the rule that held it ("content:links", "velocity:0",
	// "pumping:+6190"); Reason is the hold's own words.
	Rule      string    `json:"rule"`
	Reason    string    `json:"reason"`
	HeldAt    time.Time `json:"heldAt"`
	HoldUntil time.Time `json:"holdUntil"` // when it is rejected unless reviewed
}

// HeldQuery asks for a page of the held messages, oldest hold first: of
// one customer, or of all when CustomerID is empty.
type HeldQuery struct {
	CustomerID string
	PageSize   int // 1 to MaxHeldPageSize; 0: DefaultHeldPageSize
	PageToken  string
}

// Page sizes of the held messages' list.
const (
	DefaultHeldPageSize = 100
	MaxHeldPageSize     = 1000
)

// HeldPage is one page of held messages; NextPageToken is empty on the
// last.
type HeldPage struct {
	Messages      []HeldMessage `json:"messages"`
	NextPageToken string        `json:"nextPageToken,omitempty"`
}

// HeldLister lists the messages held for review, for the operators.
type HeldLister interface {
	ListHeld(ctx context.Context, q HeldQuery) (HeldPage, error)
}
