package smsgw

import "time"

// Outbox item kinds.
const (
	OutboxReceipt = "receipt"
	OutboxMO      = "mo"
	OutboxBalance = "low_balance" // a low-balance notice (BalanceAlert)
)

// Outbox item states.
const (
	OutboxPending = "pending" // waiting for, or being sent to, a receiver bind
	OutboxSent    = "sent"    // the customer answered deliver_sm_resp OK
)

// OutboxItem is one deliver_sm owed to a customer's SMPP bind: a receipt
// or a part of a mobile-originated message. It is written once (its ID is
// derived from what it delivers, so a retried write changes nothing),
// claimed by one SMPP server replica at a time under a lease, and taken out
// when the customer has answered deliver_sm_resp OK (remembered apart until
// it would have expired, so a write retried after delivery does not deliver
// again).
type OutboxItem struct {
	ID         string `bson:"_id"`
	CustomerID string `bson:"customerId"`
	SystemID   string `bson:"systemId"`
	Kind       string `bson:"kind"`    // OutboxReceipt, OutboxMO or OutboxBalance
	Subject    string `bson:"subject"` // the message ID of a receipt, the inbound ID of an MO, the alert ID of a notice
	// PDU is the whole deliver_sm, its sequence number left 0: the sending
	// session sets its own.
	PDU       []byte    `bson:"pdu"`
	CreatedAt time.Time `bson:"createdAt"`
	ExpiresAt time.Time `bson:"expiresAt"`
	State     string    `bson:"state"` // OutboxPending or OutboxSent
	SentAt    time.Time `bson:"sentAt,omitempty"`
	// LeaseOwner is the replica sending the item now, "" when none.
	LeaseOwner string `bson:"leaseOwner"`
	// LeaseUntil is when the lease ends; a free item waiting for a retry has
	// LeaseUntil in the future and no owner. Never null, so one range
	// condition finds every claimable item.
	LeaseUntil time.Time `bson:"leaseUntil"`
	Attempts   int       `bson:"attempts"`
	// Delivery is the notification or MO the item carries, recorded as a
	// failed notification (and so redeliverable) if the item expires
	// before a receiver bind takes it.
	Delivery *Delivery `bson:"delivery,omitempty"`
}
