package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/routing"
)

// EventStore appends events idempotently (an event ID seen before is kept once).
type EventStore interface {
	AppendEvents(ctx context.Context, events ...smsgw.Event) error
}

// BackgroundEventStore is an EventStore that can also write events
// nobody waits on in the background, with the next batch of events
// written (mongostore's). The events that record a notification delivered
// go that way when the Activities' EventStore is one: the activity that
// delivered returns as soon as the customer has heard, so a worker killed
// after a delivery has less time to have it run, and deliver, again.
type BackgroundEventStore interface {
	EventStore
	// AppendEventsInBackground returns once the events are handed over
	// (ctx bounds that, not the write) and hands done, when not nil, the
	// outcome of the write; done must not block.
	AppendEventsInBackground(ctx context.Context, done func(error), events ...smsgw.Event)
}

// ReportStore moves a message's reporting row forward, idempotently and never backwards.
type ReportStore interface {
	UpsertMessage(ctx context.Context, r smsgw.MessageRecord) error
}

// Encoder turns a text into the parts to submit for a customer.
type Encoder interface {
	Encode(text, customerID, connectorID, to string) (encoding string, parts []smsgw.Part, err error)
}

// Channel delivers to customers through one means (webhook, SMPP, email).
// It returns an error wrapping ErrRefused when retrying cannot help.
type Channel interface {
	Deliver(ctx context.Context, d smsgw.Delivery) error
}

// Activities are the steps of a message's life that need no SMPP bind.
type Activities struct {
	Config *config.Live
	Routes *routing.Cache
	// FailoverAfter is how long a send waits for a bound connector before
	// the next of the route is tried (default DefaultFailoverAfter).
	FailoverAfter time.Duration
	Events        EventStore
	Reports       ReportStore
	Encoder       Encoder
	// Reroutes, when set, counts messages moved to another connector by
	// connector and kind (labels "connector", "kind").
	Reroutes *prometheus.CounterVec
	// Resends, when set, counts the reroutes that send a message again
	// whose first connector may have delivered some of it (same labels).
	Resends *prometheus.CounterVec
	// Channels by name: ChannelWebhook, ChannelSMPP, ChannelEmail.
	Channels map[string]Channel
	// Recent, when set, keeps a notification this process delivered from
	// going out again when the workflow task that delivered it runs again.
	Recent *RecentDeliveries
	// Ledger settles and releases billed messages (RecordInput.Close).
	Ledger smsgw.Ledger
	// Balances, when set, hears of every new ledger movement, for the
	// customers' low-balance alerts.
	Balances BalanceWatcher
	// Holds, when set, keeps the operators' list of messages held for
	// review: Record marks a message when its held event is recorded and
	// clears it when its review ends.
	Holds HoldStore
	// Here, when set, sends through the connectors this process holds
	// bound (SendHere); without it every send goes through the
	// connector's task queue.
	Here   HereSender
	Logger *slog.Logger
	Now    func() time.Time
}

// HoldStore keeps which messages are held for review (on the message's
// reporting row), for the operators' list.
type HoldStore interface {
	MarkHeld(ctx context.Context, h smsgw.HeldMessage) error
	ClearHeld(ctx context.Context, messageID string) error
}

// BalanceWatcher hears of new movements of customers' balances.
type BalanceWatcher interface {
	Moved(ctx context.Context, m smsgw.Movement)
}

// Planner decides how a message goes: its route, its parts as the route's
// first connector sends them, and who hears about it. The Submitter plans
// each message once, when it accepts it, and hands the plan to the
// message's workflow; Prepare plans again only for a message whose plan is
// stale (scheduled for later, or replaced).
type Planner struct {
	Config *config.Live
	Routes *routing.Cache
	// FailoverAfter is how long a send waits for a bound connector before
	// the next of the route is tried (default DefaultFailoverAfter).
	FailoverAfter time.Duration
	Encoder       Encoder
	Now           func() time.Time
}

// PlanError is why a message cannot be planned; Type is ErrTypeNoRoute or
// ErrTypeInvalid.
type PlanError struct {
	Type string
	Err  error
}

func (e *PlanError) Error() string { return e.Err.Error() }
func (e *PlanError) Unwrap() error { return e.Err }

// Plan routes and encodes a message. Its errors are *PlanError.
func (p Planner) Plan(m smsgw.Message) (PrepareResult, error) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	decision, err := p.Routes.Match(routing.Request{
		MessageID: m.ID, CustomerID: m.CustomerID, From: m.From, To: m.To, At: now(),
	})
	if err != nil {
		return PrepareResult{}, &PlanError{Type: ErrTypeNoRoute, Err: err}
	}
	encoding, parts, err := p.Encoder.Encode(m.Text, m.CustomerID, decision.Connectors[0], m.To)
	if err != nil {
		return PrepareResult{}, &PlanError{Type: ErrTypeInvalid, Err: err}
	}
	failoverAfter := p.FailoverAfter
	if failoverAfter <= 0 {
		failoverAfter = DefaultFailoverAfter
	}
	return PrepareResult{
		Route: decision, Targets: p.targets(decision), FailoverAfter: failoverAfter,
		Encoding: encoding, Parts: parts, Notify: NotifyPlanFor(p.Config, m), PlannedAt: now().UTC(),
	}, nil
}

// AcceptanceEvents are the first two events of a message's life: accepted,
// and routed as plan says, numbered from seq.
func AcceptanceEvents(m smsgw.Message, seq int, plan PrepareResult) []smsgw.Event {
	return []smsgw.Event{
		smsgw.NewEvent(m.ID, m.CustomerID, seq, smsgw.EventAccepted, "accepted", m.AcceptedAt, map[string]any{
			"entryPoint": string(m.EntryPoint), "validity": m.Validity.String(),
		}),
		smsgw.NewEvent(m.ID, m.CustomerID, seq+1, smsgw.EventRouted, "routed", plan.PlannedAt, map[string]any{
			"route": plan.Route.Route, "prefix": plan.Route.Prefix, "connectors": plan.Route.Connectors,
			"encoding": plan.Encoding, "segments": len(plan.Parts),
		}),
	}
}

// Prepare plans a message again (it was scheduled for later, or replaced)
// and records its acceptance.
func (a *Activities) Prepare(ctx context.Context, in PrepareInput) (PrepareResult, error) {
	m := in.Message
	planner := Planner{Config: a.Config, Routes: a.Routes, FailoverAfter: a.FailoverAfter, Encoder: a.Encoder, Now: a.Now}
	plan, err := planner.Plan(m)
	if err != nil {
		var pe *PlanError
		errors.As(err, &pe)
		msg := err.Error()
		if pe.Type == ErrTypeNoRoute {
			msg = smsgw.ErrorMessage(pe.Err)
		}
		return PrepareResult{}, temporal.NewNonRetryableApplicationError(msg, pe.Type, err, NotifyPlanFor(a.Config, m))
	}
	row := smsgw.MessageRecord{
		ID:          m.ID,
		CustomerID:  m.CustomerID,
		EntryPoint:  m.EntryPoint,
		From:        m.From,
		To:          m.To,
		Status:      smsgw.StatusAccepted,
		ConnectorID: plan.Route.Connectors[0],
		Segments:    len(plan.Parts),
		Encoding:    plan.Encoding,
		ClientRef:   m.ClientRef,
		AcceptedAt:  m.AcceptedAt,
		UpdatedAt:   a.Now().UTC(),
	}
	if err := a.Record(ctx, RecordInput{Events: AcceptanceEvents(m, in.Seq, plan), Row: row}); err != nil {
		return PrepareResult{}, err
	}
	return plan, nil
}

// EncodeInput asks for a message's parts as one connector sends them.
type EncodeInput struct {
	Message     smsgw.Message `json:"message"`
	ConnectorID string        `json:"connectorId"`
}

// EncodeResult is a message encoded for one connector.
type EncodeResult struct {
	Encoding string       `json:"encoding"`
	Parts    []smsgw.Part `json:"parts"`
}

// EncodeFor encodes a message for the connector a failover moves it to:
// that connector's concatenation, and reference numbers of its own.
func (a *Activities) EncodeFor(_ context.Context, in EncodeInput) (EncodeResult, error) {
	m := in.Message
	encoding, parts, err := a.Encoder.Encode(m.Text, m.CustomerID, in.ConnectorID, m.To)
	if err != nil {
		return EncodeResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalid, err)
	}
	return EncodeResult{Encoding: encoding, Parts: parts}, nil
}

// DefaultFailoverAfter is how long a message waits for a bound connector
// before it moves to the next one of its route.
const DefaultFailoverAfter = 30 * time.Second

// targets describes the decision's connectors for the workflow.
func (p Planner) targets(d routing.Decision) []smsgw.Target {
	cfg := p.Config.Config()
	out := make([]smsgw.Target, 0, len(d.Connectors))
	for _, id := range d.Connectors {
		t := smsgw.Target{ID: id}
		if c, ok := cfg.Connector(id); ok {
			t.RerouteReceiptErrs = c.RerouteReceiptErrs()
			t.ResendOnFailover = c.ResendOnFailover()
			t.QueueOnly = c.TPS > 0
		}
		out = append(out, t)
	}
	return out
}

// NewReroutesCounter returns the counter for Activities.Reroutes, registered on reg.
func NewReroutesCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	return failoverCounter(reg, "smsgw_reroutes_total",
		"Messages moved from a connector to the next of their route, by connector and reason (not_bound, retries_exhausted, reroute_error, receipt_error).")
}

// NewResendsCounter returns the counter for Activities.Resends, registered on reg.
func NewResendsCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	return failoverCounter(reg, "smsgw_failover_resends_total",
		"Messages sent again through the next connector of their route although the connector they left may have delivered some of their parts, by that connector and reason.")
}

func failoverCounter(reg prometheus.Registerer, name, help string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"connector", "kind"})
	reg.MustRegister(c)
	return c
}

// DefaultNotifyRetry is how long a notification is retried by default.
const DefaultNotifyRetry = 24 * time.Hour

// NotifyPlanFor decides who hears about a message: the channels the
// customer chose, or by default the webhook (when there is one) and, for
// messages submitted over SMPP that asked for a receipt, the customer's binds.
func NotifyPlanFor(live *config.Live, m smsgw.Message) smsgw.NotifyPlan {
	plan := smsgw.NotifyPlan{RetryFor: DefaultNotifyRetry}
	cu, _ := live.Config().Customer(m.CustomerID)
	cfg := cu.Notify
	webhook := m.CallbackURL != "" || cu.Webhook.URL != ""
	if cfg.RetryFor > 0 {
		plan.RetryFor = cfg.RetryFor
	}
	plan.AllStatuses = cfg.Statuses == "all"
	plan.SMPPFailureOnly = m.ReceiptOnFailureOnly
	plan.FinalTogether = true
	plan.Channels = cfg.Channels
	if len(plan.Channels) == 0 {
		if webhook {
			plan.Channels = append(plan.Channels, smsgw.ChannelWebhook)
		}
		if m.EntryPoint == smsgw.EntrySMPP && m.ReceiptRequested {
			plan.Channels = append(plan.Channels, smsgw.ChannelSMPP)
		}
	}
	if m.CallbackURL != "" && !slices.Contains(plan.Channels, smsgw.ChannelWebhook) {
		plan.Channels = append(plan.Channels, smsgw.ChannelWebhook)
	}
	return plan
}

// Record appends events and moves the reporting row forward. Both writes are
// idempotent, so a retry after a partial failure records nothing twice.
func (a *Activities) Record(ctx context.Context, in RecordInput) error {
	if err := a.closeCharge(ctx, in.Close); err != nil {
		return err
	}
	// The events and the reporting row are in stores of their own: both are
	// written at once, and the call returns when both are durable.
	rowDone := make(chan error, 1)
	if in.Row.ID != "" {
		go func() { rowDone <- a.Reports.UpsertMessage(ctx, in.Row) }()
	} else {
		rowDone <- nil
	}
	var eventsErr error
	if len(in.Events) > 0 {
		eventsErr = a.Events.AppendEvents(ctx, in.Events...)
	}
	rowErr := <-rowDone
	if eventsErr != nil {
		return fmt.Errorf("record events of %s: %w", in.Row.ID, eventsErr)
	}
	if rowErr != nil {
		return fmt.Errorf("update reporting row of %s: %w", in.Row.ID, rowErr)
	}
	for _, e := range in.Events {
		if e.Type != smsgw.EventRerouted || activity.GetInfo(ctx).Attempt != 1 {
			continue
		}
		from, _ := e.Data["from"].(string)
		kind, _ := e.Data["kind"].(string)
		if a.Reroutes != nil {
			a.Reroutes.WithLabelValues(from, kind).Inc()
		}
		if resend, _ := e.Data["resend"].(bool); resend && a.Resends != nil {
			a.Resends.WithLabelValues(from, kind).Inc()
		}
	}
	return a.recordHold(ctx, in)
}

// recordHold marks the message's row held when its held event is among
// the events (with the rule that held it, from the rule_matched event
// recorded with it), and clears the mark when its review ended: released,
// rejected (by an operator or the hold's timeout) or cancelled.
func (a *Activities) recordHold(ctx context.Context, in RecordInput) error {
	if a.Holds == nil || in.Row.ID == "" {
		return nil
	}
	var held *smsgw.HeldMessage
	ended := in.Row.Status == smsgw.StatusCancelled
	rule := ""
	for _, e := range in.Events {
		switch e.Type {
		case smsgw.EventRuleMatched:
			if action, _ := e.Data["action"].(string); action == smsgw.ActionHold && rule == "" {
				rule, _ = e.Data["rule"].(string)
			}
		case smsgw.EventHeld:
			reason, _ := e.Data["reason"].(string)
			timeout, _ := e.Data["timeout"].(string)
			d, _ := time.ParseDuration(timeout)
			held = &smsgw.HeldMessage{ID: in.Row.ID, CustomerID: in.Row.CustomerID, From: in.Row.From, To: in.Row.To,
				Reason: reason, HeldAt: e.At, HoldUntil: e.At.Add(d)}
		case smsgw.EventReviewReleased, smsgw.EventReviewRejected:
			ended = true
		}
	}
	switch {
	case held != nil && !ended:
		held.Rule = rule
		if err := a.Holds.MarkHeld(ctx, *held); err != nil {
			return fmt.Errorf("mark %s held for review: %w", in.Row.ID, err)
		}
	case ended:
		if err := a.Holds.ClearHeld(ctx, in.Row.ID); err != nil {
			return fmt.Errorf("clear the hold of %s: %w", in.Row.ID, err)
		}
	}
	return nil
}

// closeCharge settles or releases a billed message in the ledger, before
// its events and row say so: a retry after a later write failed finds the
// ledger step made and makes nothing twice.
func (a *Activities) closeCharge(ctx context.Context, c *LedgerClose) error {
	if c == nil {
		return nil
	}
	if a.Ledger == nil {
		return fmt.Errorf("close message %s in the billing ledger: this worker has no ledger", c.MessageID)
	}
	m, err := a.Ledger.CloseMessage(ctx, c.CustomerID, c.Currency, c.MessageID, c.Kind, c.Charge, c.Segments, a.Now().UTC())
	if err != nil {
		return fmt.Errorf("close message %s in the billing ledger: %w", c.MessageID, err)
	}
	if m.New && a.Balances != nil {
		a.Balances.Moved(ctx, m)
	}
	return nil
}

// RecordAndNotify records a message's final step, then delivers its
// notification: one local activity where two would each cost a history
// event. It is tried once: a record that fails comes back as
// ErrTypeRecordFailed and a delivery that can be retried as
// ErrTypeNotifyLater, so that the workflow retries each apart, under its
// own retry policy (the record's outlasts store outages, the delivery's is
// the customer's), and never writes the record again for a delivery retry.
func (a *Activities) RecordAndNotify(ctx context.Context, in RecordInput, d smsgw.Delivery) error {
	if err := a.Record(ctx, in); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeRecordFailed, err)
	}
	err := a.Notify(ctx, d)
	var appErr *temporal.ApplicationError
	if err != nil && !(errors.As(err, &appErr) && appErr.NonRetryable()) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeNotifyLater, err)
	}
	return err
}

// RecordAndNotifyAll is RecordAndNotify for a notification that goes out on
// several channels at once (an SMPP submission that asked for receipts, of a
// customer with a webhook): the record, then the first attempt on every
// channel at the same time, in one local activity instead of one per
// channel, and the deliveries' events in one write once every channel has
// answered. It fails only as ErrTypeRecordFailed; how each delivery went is
// in the outcomes, in the order of ds, for the workflow to retry or give up
// each apart as RecordAndNotify's caller does.
func (a *Activities) RecordAndNotifyAll(ctx context.Context, in RecordInput, ds []smsgw.Delivery) ([]NotifyOutcome, error) {
	if err := a.Record(ctx, in); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeRecordFailed, err)
	}
	outcomes := make([]NotifyOutcome, len(ds))
	notified := make([]*smsgw.Event, len(ds))
	var wg sync.WaitGroup
	for i, d := range ds {
		wg.Go(func() {
			// The SDK recovers a panic only on the local activity's own
			// goroutine: one in a channel fails that channel's attempt.
			defer func() {
				if p := recover(); p != nil {
					outcomes[i] = NotifyOutcome{Error: fmt.Sprintf("notify %s over %s: panic: %v", d.CustomerID, d.Channel, p)}
				}
			}()
			ev, err := a.deliver(ctx, d)
			var appErr *temporal.ApplicationError
			switch {
			case err == nil:
				notified[i] = ev
			case errors.As(err, &appErr) && appErr.NonRetryable():
				outcomes[i] = NotifyOutcome{Error: RootMessage(err), Refused: true}
			default:
				outcomes[i] = NotifyOutcome{Error: RootMessage(err)}
			}
		})
	}
	wg.Wait()
	var delivered []smsgw.Delivery
	var events []smsgw.Event
	for i, ev := range notified {
		if ev != nil {
			delivered, events = append(delivered, ds[i]), append(events, *ev)
		}
	}
	a.recordNotified(ctx, delivered, events)
	return outcomes, nil
}

// RootMessage is the innermost message of err's chain as it was written
// (an ApplicationError's own message, without what Temporal adds to it):
// what a customer or operator is told of a failed notification.
func RootMessage(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			var appErr *temporal.ApplicationError
			if errors.As(err, &appErr) {
				return appErr.Message()
			}
			return err.Error()
		}
		err = next
	}
}

// Notify delivers to a customer on one channel and records that it did.
func (a *Activities) Notify(ctx context.Context, d smsgw.Delivery) error {
	ev, err := a.deliver(ctx, d)
	if err != nil || ev == nil {
		return err
	}
	a.recordNotified(ctx, []smsgw.Delivery{d}, []smsgw.Event{*ev})
	return nil
}

// deliver delivers d on its channel, remembers at once that it did (a
// task run again, even while this one still waits on another channel,
// does not deliver it twice) and returns the event that records it; no
// event when d was delivered already, for a task that then ran again.
func (a *Activities) deliver(ctx context.Context, d smsgw.Delivery) (*smsgw.Event, error) {
	ch, ok := a.Channels[d.Channel]
	if !ok {
		return nil, temporal.NewNonRetryableApplicationError("no channel "+d.Channel+" in this gateway", ErrTypeWebhookRefused, nil)
	}
	if a.Recent.delivered(d, a.Now()) {
		return nil, nil
	}
	if err := ch.Deliver(ctx, d); err != nil {
		if errors.Is(err, smsgw.ErrRefused) {
			return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeWebhookRefused, err)
		}
		return nil, fmt.Errorf("notify %s over %s: %w", d.CustomerID, d.Channel, err)
	}
	a.Recent.add(d, a.Now())
	id, what := d.Subject()
	seq := 0
	if d.Notification != nil {
		seq = d.Notification.Seq
	}
	data := map[string]any{"channel": d.Channel, "subject": what, "result": "delivered"}
	if activity.IsActivity(ctx) {
		// > 1: the channel failed the earlier attempts, which were retried.
		data["attempt"] = activity.GetInfo(ctx).Attempt
	}
	ev := smsgw.NewEvent(id, d.CustomerID, seq, smsgw.EventNotified, "notified-"+d.Channel+"-"+what, a.Now().UTC(), data)
	return &ev, nil
}

// recordNotified writes the events of deliveries made, in one write, in
// the background when the store can (BackgroundEventStore). The
// customers have them: a write that fails is logged, not retried, since a
// retry would deliver them again; and it is made even when the task's time
// ran out while a slower channel answered, since the others' deliveries
// are made and remembered already.
func (a *Activities) recordNotified(ctx context.Context, ds []smsgw.Delivery, events []smsgw.Event) {
	if len(events) == 0 {
		return
	}
	notRecorded := func(err error) {
		if err == nil {
			return
		}
		for _, d := range ds {
			id, _ := d.Subject()
			a.Logger.Warn("notification delivered but not recorded", "subject", id, "channel", d.Channel, "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifiedWriteTimeout)
	defer cancel()
	if bg, ok := a.Events.(BackgroundEventStore); ok {
		// The customer has heard: nothing waits for this write.
		bg.AppendEventsInBackground(ctx, notRecorded, events...)
		return
	}
	notRecorded(a.Events.AppendEvents(ctx, events...))
}

// notifiedWriteTimeout bounds the write of deliveries' events (handing
// them over, when they are written in the background).
const notifiedWriteTimeout = 10 * time.Second

// NotifyFailed records a delivery that was refused or ran out of retries, so
// operators can list and redeliver it.
func (a *Activities) NotifyFailed(ctx context.Context, d smsgw.Delivery, reason string) error {
	return a.Events.AppendEvents(ctx, smsgw.NotifyFailedEvent(d, reason, "", a.Now()))
}
