package smsgw

import "time"

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

// Target is a connector a message may go through, with what the workflow
// needs to know of it.
type Target struct {
	ID string `json:"id"`
	// RerouteReceiptErrs are receipt error codes ("034") after which the
	// message is sent again through the next connector.
	RerouteReceiptErrs []string `json:"rerouteReceiptErrs,omitempty"`
	// ResendOnFailover sends the whole message again on the next connector
	// when this one, having accepted some of its parts, runs out of
	// retries; false keeps it here until validity ends.
	ResendOnFailover bool `json:"resendOnFailover,omitempty"`
	// QueueOnly keeps the send on the connector's task queue, never from
	// the process that runs the workflow: the connector has a tps, which
	// the queue's rate limit holds every replica to.
	QueueOnly bool `json:"queueOnly,omitempty"`
}

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
	// FinalTogether makes the first attempt of the final notification on
	// every channel, with the final record, in one local activity (one
	// history event) when more than one channel takes it. Plans made
	// before this field existed leave it false, so their workflows replay
	// as they ran: one local activity for the record, one per channel.
	FinalTogether bool `json:"finalTogether,omitempty"`
}
