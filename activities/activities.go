package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/routing"
)

// EventStore appends events idempotently (an event ID seen before is kept once).
type EventStore interface {
	AppendEvents(ctx context.Context, events ...smsgw.Event) error
}

// ReportStore moves a message's reporting row forward, idempotently and never backwards.
type ReportStore interface {
	UpsertMessage(ctx context.Context, r smsgw.MessageRecord) error
}

// Encoder turns a text into the parts to submit for a customer.
type Encoder interface {
	Encode(text, customerID, connectorID, to string) (encoding string, parts []Part, err error)
}

// Notifier delivers a notification to an HTTP endpoint. It returns an error
// wrapping ErrRefused when retrying cannot help (the endpoint answered 4xx).
type Notifier interface {
	Notify(ctx context.Context, url, secret string, n Notification) error
}

// ErrRefused marks a notification the receiver refused for good.
var ErrRefused = errors.New("refused by the receiver")

// Activities are the steps of a message's life that need no SMPP bind.
type Activities struct {
	Config   *config.Live
	Events   EventStore
	Reports  ReportStore
	Encoder  Encoder
	Notifier Notifier
	Logger   *slog.Logger
	Now      func() time.Time
}

// Prepare routes and encodes a message and records its acceptance.
func (a *Activities) Prepare(ctx context.Context, in PrepareInput) (PrepareResult, error) {
	m := in.Message
	decision, err := routing.Match(a.Config.Config(), m.To)
	if err != nil {
		return PrepareResult{}, temporal.NewNonRetryableApplicationError(smsgw.ErrorMessage(err), ErrTypeNoRoute, err)
	}
	encoding, parts, err := a.Encoder.Encode(m.Text, m.CustomerID, decision.Connectors[0], m.To)
	if err != nil {
		return PrepareResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalid, err)
	}
	events := []smsgw.Event{
		smsgw.NewEvent(m.ID, m.CustomerID, in.Seq, smsgw.EventAccepted, "accepted", m.AcceptedAt, map[string]any{
			"entryPoint": string(m.EntryPoint), "validity": m.Validity.String(),
		}),
		smsgw.NewEvent(m.ID, m.CustomerID, in.Seq+1, smsgw.EventRouted, "routed", a.Now().UTC(), map[string]any{
			"route": decision.Route, "prefix": decision.Prefix, "connectors": decision.Connectors,
			"encoding": encoding, "segments": len(parts),
		}),
	}
	row := smsgw.MessageRecord{
		ID:          m.ID,
		CustomerID:  m.CustomerID,
		EntryPoint:  m.EntryPoint,
		From:        m.From,
		To:          m.To,
		Status:      smsgw.StatusAccepted,
		ConnectorID: decision.Connectors[0],
		Segments:    len(parts),
		Encoding:    encoding,
		AcceptedAt:  m.AcceptedAt,
		UpdatedAt:   a.Now().UTC(),
	}
	if err := a.Record(ctx, RecordInput{Events: events, Row: row}); err != nil {
		return PrepareResult{}, err
	}
	return PrepareResult{Route: decision, Encoding: encoding, Parts: parts}, nil
}

// Record appends events and moves the reporting row forward. Both writes are
// idempotent, so a retry after a partial failure records nothing twice.
func (a *Activities) Record(ctx context.Context, in RecordInput) error {
	if len(in.Events) > 0 {
		if err := a.Events.AppendEvents(ctx, in.Events...); err != nil {
			return fmt.Errorf("record events of %s: %w", in.Row.ID, err)
		}
	}
	if in.Row.ID != "" {
		if err := a.Reports.UpsertMessage(ctx, in.Row); err != nil {
			return fmt.Errorf("update reporting row of %s: %w", in.Row.ID, err)
		}
	}
	return nil
}

// Notify posts a notification to the message's callback URL, or else to the
// customer's webhook, and records that it was delivered. A customer with no
// endpoint is not notified.
func (a *Activities) Notify(ctx context.Context, in NotifyInput) error {
	n := in.Notification
	customer, ok := a.Config.Customer(in.CustomerID)
	if !ok {
		return temporal.NewNonRetryableApplicationError("customer "+in.CustomerID+" no longer exists", ErrTypeWebhookRefused, nil)
	}
	url := in.CallbackURL
	if url == "" {
		url = customer.WebhookURL
	}
	if url == "" {
		return nil
	}
	if err := a.Notifier.Notify(ctx, url, customer.WebhookSecret, n); err != nil {
		if errors.Is(err, ErrRefused) {
			return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeWebhookRefused, err)
		}
		return fmt.Errorf("notify %s: %w", n.MessageID, err)
	}
	ev := smsgw.NewEvent(n.MessageID, in.CustomerID, n.Seq, smsgw.EventNotified, "notified-"+string(n.Status), a.Now().UTC(),
		map[string]any{"channel": "webhook", "status": string(n.Status)})
	if err := a.Events.AppendEvents(ctx, ev); err != nil {
		// The customer has it; a retry would post it again. Log and move on.
		a.Logger.Warn("notification delivered but not recorded", "message", n.MessageID, "err", err)
	}
	return nil
}
