package smppserver

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/store/mongostore"
)

// OutboxWriter stores outbox items (mongostore.Outbox).
type OutboxWriter interface {
	Put(ctx context.Context, items ...mongostore.OutboxItem) error
}

// Channel is the smpp notification channel (activities.ChannelSMPP). It
// delivers by writing each deliver_sm owed to a customer into the outbox,
// durably, and returns; the SMPP server replicas the customer binds to
// send it from there. Writing again what was written changes nothing, so a
// retried notification is delivered once.
type Channel struct {
	Outbox OutboxWriter
	Config *config.Live
	// TTL is how long an item waits for a receiver bind before it is
	// dropped. Default DefaultOutboxTTL.
	TTL time.Duration
	// Wake, when set, is told which customer has new items (Server.Wake,
	// when this process also serves SMPP), so they go out at once.
	Wake func(customerID string)
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Deliver implements activities.Channel.
func (c *Channel) Deliver(ctx context.Context, d activities.Delivery) error {
	systemID := ""
	for _, cu := range c.Config.Config().Customers {
		if cu.ID == d.CustomerID {
			systemID = cu.SMPP.SystemID
		}
	}
	if systemID == "" {
		return fmt.Errorf("%w: customer %q has no SMPP access", activities.ErrRefused, d.CustomerID)
	}
	items, err := c.items(d, systemID)
	if err != nil {
		return fmt.Errorf("%w: %v", activities.ErrRefused, err)
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
// deliver, so building them again gives the same IDs.
func (c *Channel) items(d activities.Delivery, systemID string) ([]mongostore.OutboxItem, error) {
	now := c.Now
	if now == nil {
		now = time.Now
	}
	ttl := c.TTL
	if ttl <= 0 {
		ttl = DefaultOutboxTTL
	}
	item := func(id, kind, subject string, created time.Time, pdu []byte) mongostore.OutboxItem {
		return mongostore.OutboxItem{
			ID: id, CustomerID: d.CustomerID, SystemID: systemID, Kind: kind, Subject: subject, PDU: pdu,
			CreatedAt: created, ExpiresAt: created.Add(ttl),
		}
	}
	switch {
	case d.Notification != nil:
		n := d.Notification
		_, what := d.Subject()
		id := "receipt:" + n.MessageID + ":" + strconv.Itoa(n.Seq) + ":" + what
		return []mongostore.OutboxItem{item(id, mongostore.OutboxReceipt, n.MessageID, nonZero(n.OccurredAt, now), ReceiptPDU(*n))}, nil
	case d.Inbound != nil:
		in := d.Inbound
		pdus, err := MOPDUs(*in)
		if err != nil {
			return nil, err
		}
		received := nonZero(in.ReceivedAt, now)
		items := make([]mongostore.OutboxItem, len(pdus))
		for i, pdu := range pdus {
			// A millisecond apart, the store's resolution, so parts go out in order.
			items[i] = item(fmt.Sprintf("mo:%s:%d", in.ID, i+1), mongostore.OutboxMO, in.ID, received.Add(time.Duration(i)*time.Millisecond), pdu)
		}
		return items, nil
	}
	return nil, fmt.Errorf("delivery to %s carries nothing", d.CustomerID)
}

// DefaultOutboxTTL is how long a receipt or MO waits for a receiver bind
// when the Channel sets none.
const DefaultOutboxTTL = smsgw.DefaultValidity

// nonZero returns t, or now when t is zero.
func nonZero(t time.Time, now func() time.Time) time.Time {
	if t.IsZero() {
		return now()
	}
	return t
}
