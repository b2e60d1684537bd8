package smppserver

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
)

// OutboxWriter stores outbox items (mongostore.Outbox).
type OutboxWriter interface {
	Put(ctx context.Context, items ...smsgw.OutboxItem) error
}

// Channel is the smpp notification channel (smsgw.ChannelSMPP). It
// delivers by writing each deliver_sm owed to a customer into the outbox,
// durably, and returns; the SMPP server replicas the customer binds to
// send it from there. Writing again what was written changes nothing, so a
// retried notification is delivered once.
//
// When this process also serves SMPP (Direct is set) and the customer has
// a receiver bind here, a delivery that is the first of its subject on the
// channel goes straight to that bind instead, and only what the customer
// does not take at once (no bind, no room in the window, a non-zero answer,
// no answer) is written to the outbox. A sequel (smsgw.Delivery.Sequel)
// always goes to the outbox, where an earlier status of the same message may
// still wait: it must not overtake it. So does a redelivery of a failed
// notification, which the outbox lists as delivered once it is.
type Channel struct {
	Outbox OutboxWriter
	Config *config.Live
	// TTL is how long an item waits for a receiver bind, from when it is
	// written, before it expires and is recorded as a failed notification.
	// Default DefaultOutboxTTL.
	TTL time.Duration
	// Wake, when set, is told which customer has new items (Server.Wake,
	// when this process also serves SMPP), so they go out at once.
	Wake func(customerID string)
	// Direct, when set, sends deliver_sm to the customer's receiver binds
	// held by this process (the Server, when this process also serves SMPP).
	Direct DirectDeliverer
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Deliver implements activities.Channel.
func (c *Channel) Deliver(ctx context.Context, d smsgw.Delivery) error {
	cu, _ := c.Config.Config().Customer(d.CustomerID)
	systemID := cu.SMPP.SystemID
	if systemID == "" {
		return fmt.Errorf("%w: customer %q has no SMPP access", smsgw.ErrRefused, d.CustomerID)
	}
	source := cu.Billing.LowBalanceFrom
	if source == "" {
		source = smsgw.DefaultBalanceAlertFrom
	}
	items, err := c.items(d, systemID, source)
	if err != nil {
		return fmt.Errorf("%w: %v", smsgw.ErrRefused, err)
	}
	// A redelivery goes through the outbox too: the outbox's
	// acknowledgement is what lists the failure as delivered after all.
	if c.Direct != nil && !d.Sequel && d.Redelivers == "" && len(items) > 0 {
		// The parts taken go no further; the first one not taken and those
		// after it go to the outbox, in order.
		items = items[c.Direct.DeliverDirect(ctx, d.CustomerID, items):]
		if len(items) == 0 {
			return nil
		}
	}
	if err := c.Outbox.Put(ctx, items...); err != nil {
		return fmt.Errorf("smpp outbox: %w", err)
	}
	if c.Wake != nil {
		c.Wake(d.CustomerID)
	}
	return nil
}

// items builds the outbox items of a delivery. Their IDs name what they
// deliver, so building them again gives the same IDs; a redelivery's items
// are named apart from the first delivery's, which may have been delivered.
//
// An item's lifetime is counted from when it is written (or from the status
// time, when that is later), never from the status time alone: a receipt or
// redelivery written long after its status would otherwise be born expired.
// All items of one delivery expire together.
func (c *Channel) items(d smsgw.Delivery, systemID, source string) ([]smsgw.OutboxItem, error) {
	now := c.Now
	if now == nil {
		now = time.Now
	}
	ttl := c.TTL
	if ttl <= 0 {
		ttl = DefaultOutboxTTL
	}
	written := now()
	suffix := ""
	if d.Redelivers != "" {
		suffix = ":redelivery-" + shortHash(d.Redelivers)
	}
	item := func(id, kind, subject string, created time.Time, pdu []byte) smsgw.OutboxItem {
		return smsgw.OutboxItem{
			ID: id + suffix, CustomerID: d.CustomerID, SystemID: systemID, Kind: kind, Subject: subject, PDU: pdu,
			CreatedAt: created, ExpiresAt: later(created, written).Add(ttl), Delivery: &d,
		}
	}
	switch {
	case d.Notification != nil:
		n := d.Notification
		_, what := d.Subject()
		id := "receipt:" + n.MessageID + ":" + strconv.Itoa(n.Seq) + ":" + what
		return []smsgw.OutboxItem{item(id, smsgw.OutboxReceipt, n.MessageID, nonZero(n.OccurredAt, written), ReceiptPDU(*n))}, nil
	case d.Inbound != nil:
		in := d.Inbound
		pdus, err := MOPDUs(*in)
		if err != nil {
			return nil, err
		}
		received := nonZero(in.ReceivedAt, written)
		items := make([]smsgw.OutboxItem, len(pdus))
		for i, pdu := range pdus {
			// A millisecond apart, the store's resolution, so parts go out in order.
			items[i] = item(fmt.Sprintf("mo:%s:%d", in.ID, i+1), smsgw.OutboxMO, in.ID, received.Add(time.Duration(i)*time.Millisecond), pdu)
			items[i].ExpiresAt = later(received, written).Add(ttl)
		}
		return items, nil
	case d.Balance != nil:
		pdus, err := BalancePDUs(*d.Balance, source)
		if err != nil {
			return nil, err
		}
		at := nonZero(d.Balance.OccurredAt, written)
		items := make([]smsgw.OutboxItem, len(pdus))
		for i, pdu := range pdus {
			items[i] = item(fmt.Sprintf("balance:%s:%d", d.Balance.ID, i+1), smsgw.OutboxBalance, d.Balance.ID, at.Add(time.Duration(i)*time.Millisecond), pdu)
			items[i].ExpiresAt = later(at, written).Add(ttl)
		}
		return items, nil
	}
	return nil, fmt.Errorf("delivery to %s carries nothing", d.CustomerID)
}

// DefaultOutboxTTL is how long a receipt or MO waits for a receiver bind
// when the Channel sets none.
const DefaultOutboxTTL = smsgw.DefaultValidity

// nonZero returns t, or def when t is zero.
func nonZero(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// shortHash names a long string briefly in an item ID.
func shortHash(s string) string {
	h := fnv.New64a()
	h.Write([]byte(s))
	return strconv.FormatUint(h.Sum64(), 36)
}
