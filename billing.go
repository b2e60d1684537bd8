package smsgw

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EPAYMENT refuses a prepaid customer's submission that its balance cannot
// cover. Entry points answer it as REST 402, gRPC FAILED_PRECONDITION
// (with an ErrorInfo whose reason is ReasonInsufficientBalance), SMPP
// ESME_RSUBMITFAIL (or the status configured for it) and SMTP 552.
const EPAYMENT = "payment_required"

// ReasonInsufficientBalance is the machine-readable reason of an EPAYMENT
// refusal, in the gRPC ErrorInfo and the REST error body's details.
const ReasonInsufficientBalance = "INSUFFICIENT_BALANCE"

// InsufficientBalance is the EPAYMENT error of a submission that needs
// amount micro-units when available are left.
func InsufficientBalance(currency string, amount, available int64) *Error {
	return Errorf(EPAYMENT, "insufficient balance: the message costs %s %s and %s %s is available; top up the account",
		FormatMicros(amount), currency, FormatMicros(available), currency)
}

// Charge is what a billed message costs, decided when it is accepted. It
// travels in the message workflow's input, so the workflow settles or
// releases the message with the price it was accepted at.
type Charge struct {
	Currency string `json:"currency"`
	// UnitMicros is the price of one segment, in micro-units of Currency.
	UnitMicros int64 `json:"unitMicros"`
	// Segments is how many segments were reserved for (the first
	// connector's); the settlement charges those of the connector that
	// finally sends it.
	Segments int `json:"segments"`
	// Prepaid messages were reserved for at acceptance; postpaid ones are
	// only charged when sent.
	Prepaid bool `json:"prepaid,omitempty"`
	// ChargeExpired charges a message that was sent but expired without a
	// final receipt; otherwise its reservation is released.
	ChargeExpired bool `json:"chargeExpired,omitempty"`
	// PriceList and Prefix say which price applied, for the events.
	PriceList string `json:"priceList,omitempty"`
	Prefix    string `json:"prefix,omitempty"`
}

// Amount is the price of n segments.
func (c Charge) Amount(n int) int64 { return c.UnitMicros * int64(n) }

// Ledger steps: a message is reserved for once and closed (settled or
// released) once; a top-up is one step of its reference.
const (
	StepReserve = "reserve"
	StepClose   = "close"
	StepTopUp   = "topup"
)

// Kinds of ledger movement.
const (
	MoveReserve = "reserve" // amount held for a prepaid message
	MoveSettle  = "settle"  // the message was sent: its price leaves the balance, its hold is lifted
	MoveRelease = "release" // the message was not sent (or not charged): its hold is lifted
	MoveTopUp   = "topup"   // money added by an operator
)

// Movement is one row of the billing ledger: what one step of one message
// (or one top-up) did to its customer's balance and to the amount held.
type Movement struct {
	CustomerID string `json:"customerId"`
	Currency   string `json:"currency"`
	// Key is the message ID, or "topup:<customer>:<reference>".
	Key  string `json:"key"`
	Step string `json:"step"`
	Kind string `json:"kind"`
	// Amount changes the balance (negative for a charge); Reserved changes
	// the amount held (positive for a reservation, negative when lifted).
	Amount   int64     `json:"amount"`
	Reserved int64     `json:"reserved"`
	Segments int       `json:"segments,omitempty"`
	At       time.Time `json:"at"`
	// New is false when the step had been recorded before: this is that
	// earlier movement, and nothing changed now.
	New bool `json:"-"`
	// Before and After are the available amounts around a new movement.
	Before, After int64 `json:"-"`
}

// Balance is a customer's account in one currency.
type Balance struct {
	CustomerID string `json:"customerId"`
	Currency   string `json:"currency"`
	// Balance is top-ups minus settled charges; Reserved is held for
	// prepaid messages accepted and not yet settled or released.
	Balance   int64     `json:"balance"`
	Reserved  int64     `json:"reserved"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Available is what new messages may still reserve.
func (b Balance) Available() int64 { return b.Balance - b.Reserved }

// Ledger keeps customers' balances as a ledger of movements, each step
// applied once however often it is retried, by however many processes.
type Ledger interface {
	// Reserve holds amount for messageID. A reservation the balance cannot
	// cover is refused with an EPAYMENT error; one made before is answered
	// with its movement (New false) whatever the balance is now.
	Reserve(ctx context.Context, customerID, currency, messageID string, amount int64, segments int, at time.Time) (Movement, error)
	// CloseMessage settles messageID (charging charge, lifting its hold) or
	// releases it (lifting its hold only). A message is closed once: a
	// second close, of either kind, returns the first.
	CloseMessage(ctx context.Context, customerID, currency, messageID, kind string, charge int64, segments int, at time.Time) (Movement, error)
	// TopUp adds amount under the operator's reference, once per reference.
	TopUp(ctx context.Context, customerID, currency, reference string, amount int64, at time.Time) (Movement, error)
	// Balance is the customer's account in currency (zero if it has none).
	Balance(ctx context.Context, customerID, currency string) (Balance, error)
}

// MicrosPerUnit is how many micro-units make one unit of a currency.
const MicrosPerUnit = 1_000_000

// ParseMicros reads a decimal amount of currency ("0.065", "12", "-3.5")
// into micro-units, exactly: at most six decimals.
func ParseMicros(s string) (int64, error) {
	t := strings.TrimSpace(s)
	neg := strings.HasPrefix(t, "-")
	t = strings.TrimPrefix(t, "-")
	whole, frac, dot := strings.Cut(t, ".")
	if whole == "" || (dot && frac == "") || len(frac) > 6 || !allDigits(whole, 10) || (frac != "" && !allDigits(frac, 10)) || len(whole) > 12 {
		return 0, fmt.Errorf("%q is not an amount: write units and at most six decimals, like 0.065", s)
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	v := w*MicrosPerUnit + f
	if neg {
		v = -v
	}
	return v, nil
}

// FormatMicros writes micro-units as a decimal amount with as many
// decimals as it needs, at least two ("0.065", "12.00").
func FormatMicros(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	frac := strings.TrimRight(fmt.Sprintf("%06d", v%MicrosPerUnit), "0")
	for len(frac) < 2 {
		frac += "0"
	}
	return fmt.Sprintf("%s%d.%s", sign, v/MicrosPerUnit, frac)
}

// BalanceAlert tells a customer that its available balance fell below one
// of its low-balance thresholds (webhook event "low_balance").
type BalanceAlert struct {
	// ID names the crossing: the customer, currency and threshold, and the
	// ledger step that crossed it.
	ID         string `json:"id"`
	CustomerID string `json:"customerId"`
	Currency   string `json:"currency"`
	Threshold  string `json:"threshold"`
	Available  string `json:"available"`
	// The same amounts in micro-units.
	ThresholdMicros int64     `json:"thresholdMicros"`
	AvailableMicros int64     `json:"availableMicros"`
	OccurredAt      time.Time `json:"occurredAt"`
}

// DefaultBalanceAlertFrom is the source address of a low-balance notice
// sent over SMPP when the customer's billing.lowBalanceFrom sets none.
const DefaultBalanceAlertFrom = "BILLING"

// Text is the alert in words, as an SMS or an email says it.
func (a BalanceAlert) Text() string {
	return fmt.Sprintf("Low balance: %s %s available, below your threshold of %s %s. Top up to keep sending.",
		a.Available, a.Currency, a.Threshold, a.Currency)
}

// Crossed are the thresholds a movement took the available balance below:
// those it was at or above before and is below after.
func (m Movement) Crossed(thresholds []int64) []int64 {
	var out []int64
	for _, t := range thresholds {
		if m.Before >= t && m.After < t {
			out = append(out, t)
		}
	}
	return out
}
