package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/internal/promreg"
)

// InboundStore keeps inbound messages. PutInbound is idempotent: a message
// stored before is returned as it was stored, with created false.
type InboundStore interface {
	PutInbound(ctx context.Context, r smsgw.InboundRecord) (stored smsgw.InboundRecord, created bool, err error)
	SetInboundStatus(ctx context.Context, id, status string, at time.Time) error
}

// InboundRoute is who owns an inbound message and how they hear about it.
type InboundRoute struct {
	CustomerID string           `json:"customerId"` // "" when unrouted
	Keyword    string           `json:"keyword,omitempty"`
	Plan       smsgw.NotifyPlan `json:"plan"`
}

// FinishInboundInput is the outcome of an inbound message's deliveries.
type FinishInboundInput struct {
	ID         string    `json:"id"`
	CustomerID string    `json:"customerId"`
	Status     string    `json:"status"`
	Failed     []string  `json:"failed,omitempty"` // channels that gave up
	At         time.Time `json:"at"`
}

// Inbound holds the activities of mobile-originated messages. Register it
// on the message worker beside Activities (their method names differ).
type Inbound struct {
	// OptOuts, when set, turns opt-out and opt-in keywords of the
	// messages a customer owns into changes of its opt-out list.
	OptOuts MOKeywords

	config *config.Live
	store  InboundStore
	events EventStore
	logger *slog.Logger
	now    func() time.Time
	mo     *prometheus.CounterVec
}

// NewInbound returns the inbound activities and registers the
// smsgw_mo_total counter on reg.
func NewInbound(cfg *config.Live, store InboundStore, events EventStore, logger *slog.Logger, reg prometheus.Registerer) (*Inbound, error) {
	mo, err := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smsgw_mo_total",
		Help: "Mobile-originated messages received, by result: routed (a customer owns the number) or unrouted (kept for the operator).",
	}, []string{"result"}))
	if err != nil {
		return nil, err
	}
	return &Inbound{config: cfg, store: store, events: events, logger: logger, now: time.Now, mo: mo}, nil
}

// MOKeywords applies the opt-out and opt-in keywords of an inbound
// message (rules.OptOutKeywords does): it returns the change it made, or
// "" for any other text. Applying the same message twice changes nothing
// more.
type MOKeywords interface {
	HandleMO(ctx context.Context, customerID, from, to, text string) (string, error)
}

// ReceiveInbound stores an inbound message, routes it to the customer that
// owns its destination number (and keyword), and says how that customer
// hears about it. A message no one owns is stored as unrouted, never
// dropped. Retries store and count nothing twice.
func (a *Inbound) ReceiveInbound(ctx context.Context, msg smsgw.InboundMessage) (InboundRoute, error) {
	cfg := a.config.Config()
	customerID, keyword, _ := RouteInbound(cfg, msg.To, msg.Text)
	msg.Keyword = keyword
	status := smsgw.InboundRouted
	if customerID == "" {
		status = smsgw.InboundUnrouted
	}
	stored, created, err := a.store.PutInbound(ctx, smsgw.InboundRecord{
		InboundMessage: msg, CustomerID: customerID, Status: status, UpdatedAt: a.now().UTC(),
	})
	if err != nil {
		return InboundRoute{}, fmt.Errorf("store inbound %s: %w", msg.ID, err)
	}
	if created {
		a.mo.WithLabelValues(map[bool]string{true: "routed", false: "unrouted"}[stored.CustomerID != ""]).Inc()
	}
	data := map[string]any{
		"connector": msg.Connector, "encoding": msg.Encoding, "parts": msg.Parts, "partial": msg.Partial,
		"keyword": stored.Keyword, "routed": stored.CustomerID != "",
	}
	if a.OptOuts != nil && stored.CustomerID != "" {
		change, err := a.OptOuts.HandleMO(ctx, stored.CustomerID, msg.From, msg.To, msg.Text)
		if err != nil {
			return InboundRoute{}, fmt.Errorf("opt-out keywords of inbound %s: %w", msg.ID, err)
		}
		if change != "" {
			data["optOut"] = change
		}
	}
	ev := smsgw.NewEvent(msg.ID, stored.CustomerID, 1, smsgw.EventInboundReceived, "inbound-received", msg.ReceivedAt, data)
	if err := a.events.AppendEvents(ctx, ev); err != nil {
		return InboundRoute{}, fmt.Errorf("record inbound %s: %w", msg.ID, err)
	}
	route := InboundRoute{CustomerID: stored.CustomerID, Keyword: stored.Keyword}
	if stored.CustomerID == "" {
		a.logger.Warn("inbound message for a number no customer owns; kept as unrouted", "id", msg.ID, "connector", msg.Connector)
		return route, nil
	}
	if cu, ok := cfg.Customer(stored.CustomerID); ok {
		route.Plan = InboundPlan(cu)
	}
	return route, nil
}

// FinishInbound records how the deliveries of an inbound message ended.
func (a *Inbound) FinishInbound(ctx context.Context, in FinishInboundInput) error {
	if err := a.store.SetInboundStatus(ctx, in.ID, in.Status, in.At); err != nil {
		return fmt.Errorf("inbound %s status: %w", in.ID, err)
	}
	ev := smsgw.NewEvent(in.ID, in.CustomerID, 2, smsgw.EventInboundDone, "inbound-done", in.At, map[string]any{
		"status": in.Status, "failedChannels": in.Failed,
	})
	if err := a.events.AppendEvents(ctx, ev); err != nil {
		return fmt.Errorf("record inbound %s: %w", in.ID, err)
	}
	return nil
}

// InboundPlan is how a customer hears about its inbound messages: the
// channels of notify.channels, or else its webhook when it has one.
func InboundPlan(cu config.Customer) smsgw.NotifyPlan {
	plan := smsgw.NotifyPlan{Channels: cu.Notify.Channels, RetryFor: DefaultNotifyRetry}
	if cu.Notify.RetryFor > 0 {
		plan.RetryFor = cu.Notify.RetryFor
	}
	if len(plan.Channels) == 0 && cu.Webhook.URL != "" {
		plan.Channels = []string{smsgw.ChannelWebhook}
	}
	return plan
}

// RouteInbound finds the customer that owns an inbound message: the
// destination must equal one of a customer's numbers (compared as digits,
// see config.InboundNumber). A number entry with a keyword matches only
// texts whose first word is that keyword (case-insensitive), and wins over
// an entry for the same number without one. ok is false when no one owns it.
func RouteInbound(cfg *config.Config, to, text string) (customerID, keyword string, ok bool) {
	digits, valid := config.InboundNumber(to)
	if !valid {
		return "", "", false
	}
	first := firstWord(text)
	fallback := ""
	for _, n := range cfg.NumberOwners(digits) {
		switch {
		case n.Keyword == "":
			if fallback == "" {
				fallback = n.CustomerID
			}
		case first != "" && strings.EqualFold(n.Keyword, first):
			return n.CustomerID, n.Keyword, true
		}
	}
	return fallback, "", fallback != ""
}

// firstWord is the text's first word without the punctuation people type
// after a keyword ("STOP.", "Pizza!").
func firstWord(text string) string {
	f := strings.Fields(text)
	if len(f) == 0 {
		return ""
	}
	return strings.TrimRight(f[0], ".,;:!?")
}

// NotificationMetrics counts deliveries per channel and outcome.
type NotificationMetrics struct {
	total *prometheus.CounterVec
}

// NewNotificationMetrics registers smsgw_notifications_total on reg.
func NewNotificationMetrics(reg prometheus.Registerer) (*NotificationMetrics, error) {
	total, err := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smsgw_notifications_total",
		Help: "Notification delivery attempts by channel and result: ok, retry (will be tried again) or refused (given up for good).",
	}, []string{"channel", "result"}))
	if err != nil {
		return nil, err
	}
	return &NotificationMetrics{total: total}, nil
}

// Wrap returns channels that count each delivery attempt. Pass the result
// as Activities.Channels once every role has added its channels.
func (m *NotificationMetrics) Wrap(channels map[string]Channel) map[string]Channel {
	out := make(map[string]Channel, len(channels))
	for name, ch := range channels {
		out[name] = countedChannel{name: name, next: ch, total: m.total}
	}
	return out
}

type countedChannel struct {
	name  string
	next  Channel
	total *prometheus.CounterVec
}

func (c countedChannel) Deliver(ctx context.Context, d smsgw.Delivery) error {
	err := c.next.Deliver(ctx, d)
	result := "ok"
	switch {
	case errors.Is(err, smsgw.ErrRefused):
		result = "refused"
	case err != nil:
		result = "retry"
	}
	c.total.WithLabelValues(c.name, result).Inc()
	return err
}
