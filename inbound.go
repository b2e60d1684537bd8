package smsgw

import "time"

// Event types of an inbound message's life.
const (
	EventInboundReceived = "inbound_received" // stored, and routed to a customer or not
	EventInboundDone     = "inbound_done"     // every channel delivered it or gave up
)

// Statuses of an inbound message, as stored and listed.
const (
	InboundRouted    = "routed"    // owned by a customer, being delivered
	InboundUnrouted  = "unrouted"  // no customer owns the number: kept for the operator
	InboundDelivered = "delivered" // every channel of the customer has it
	InboundFailed    = "failed"    // a channel refused it or ran out of retries (see notify_failed)
)

// InboundRecord is an inbound message as stored for listing.
type InboundRecord struct {
	InboundMessage
	CustomerID string    `json:"customerId"` // "" when unrouted
	Status     string    `json:"status"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// InboundQuery selects inbound messages to list, newest first.
type InboundQuery struct {
	// CustomerID is the owner; "" lists the unrouted messages.
	CustomerID string
	// Since, when set, leaves out messages received before it.
	Since time.Time
	// PageSize caps the answer (default 50, at most 500).
	PageSize int
	// PageToken continues an earlier listing (its NextPageToken).
	PageToken string
}

// InboundPage is one page of inbound messages.
type InboundPage struct {
	Messages      []InboundRecord
	NextPageToken string // "" on the last page
}

// MO is a mobile-originated short message as a connector received it from
// upstream, before it is decoded: the connector hands it to
// lifecycle.StartInbound, which names it and starts its workflow.
type MO struct {
	// ID, when the connector names the message (see
	// lifecycle.MOOfferKey), is its inbound message ID; empty, the ID is
	// derived from what upstream sent.
	ID           string
	ConnectorID  string
	From         string
	To           string
	DataCoding   byte
	ESMClass     byte
	ShortMessage []byte // as received, with its User Data Header when ESMClass&0x40
	SAR          *SAR   // from sar_* optional parameters, if the SMSC sent them
	ReceivedAt   time.Time
}
