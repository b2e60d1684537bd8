package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/workflows"
)

// Billing at acceptance. A message of a customer that a price list applies
// to is priced here, by its destination and its segments as the route's
// first connector sends them, and the price goes into its workflow's input
// (smsgw.Charge), so that the workflow settles it at the price it was
// accepted at. A prepaid customer's message is also reserved for here,
// before its workflow starts: the refusal must be synchronous (402 and its
// equivalents), and a reservation in the workflow would come after the
// answer. The reservation is keyed by the message ID, so a submission
// retried under the same idempotency key, or a start tried again, does not
// reserve twice. It costs the submission one ledger transaction; it costs
// the workflow nothing (docs/billing.md).

// charge prices a message for its customer; nil when the customer is not
// billed (or the gateway keeps no ledger).
func (s *Service) charge(m smsgw.Message, cu config.Customer, segments int) (*smsgw.Charge, error) {
	if s.ledger == nil {
		return nil, nil
	}
	q, billed, err := s.config.Config().Quote(m.CustomerID, m.To, m.AcceptedAt)
	if !billed || err != nil {
		return nil, err
	}
	return &smsgw.Charge{
		Currency: q.Currency, UnitMicros: q.Micros, Segments: segments,
		Prepaid: cu.Billing.Prepaid(), ChargeExpired: cu.Billing.ChargeExpired,
		PriceList: q.PriceList, Prefix: q.Prefix,
	}, nil
}

// reserve holds a prepaid message's price; new says this submission made
// the reservation (not an earlier one of the same message).
func (s *Service) reserve(ctx context.Context, m smsgw.Message, c *smsgw.Charge) (new bool, err error) {
	if c == nil || !c.Prepaid {
		return false, nil
	}
	mv, err := s.ledger.Reserve(ctx, m.CustomerID, c.Currency, m.ID, c.Amount(c.Segments), c.Segments, m.AcceptedAt)
	switch {
	case smsgw.ErrorCode(err) == smsgw.EPAYMENT:
		s.countRefusal(ctx, m, smsgw.ReasonInsufficientBalance)
		return false, err
	case err != nil:
		s.logger.Error("message not accepted: no reservation", "customer", m.CustomerID, "err", err)
		return false, smsgw.Unavailable("billing ledger", err)
	}
	s.alerts.Moved(ctx, mv)
	return mv.New, nil
}

// unreserve releases the reservation this submission made for a message
// whose workflow did not start. Should the start have gone through after
// all (its answer was lost), the workflow's settlement finds the message
// closed and it goes unbilled: the error is on the customer's side of the
// ledger, never a double charge.
func (s *Service) unreserve(ctx context.Context, m smsgw.Message, c *smsgw.Charge, reserved bool) {
	if !reserved {
		return
	}
	if _, err := s.ledger.CloseMessage(context.WithoutCancel(ctx), m.CustomerID, c.Currency, m.ID, smsgw.MoveRelease, 0, 0, s.now().UTC()); err != nil {
		s.logger.Error("reservation of a message not accepted is not released", "customer", m.CustomerID, "message", m.ID, "err", err)
	}
}

// BalanceAlerts tells customers when their available balance falls below
// one of their billing.lowBalance thresholds: on each of the customer's
// notification channels (those its inbound messages go to: notify.channels,
// else its webhook), through a workflow per channel that retries the
// delivery as a notification's is retried. Each ledger movement that
// crosses a threshold is told once per channel: the workflow's ID names
// the movement, the threshold and the channel, so a movement seen twice (a
// retried step) starts it once.
type BalanceAlerts struct {
	Temporal client.Client
	Config   *config.Live
	Logger   *slog.Logger
}

// Moved implements activities.BalanceWatcher: it starts the alerts a new
// movement calls for.
func (b *BalanceAlerts) Moved(ctx context.Context, m smsgw.Movement) {
	if b == nil || !m.New {
		return
	}
	cu, ok := b.Config.Config().Customer(m.CustomerID)
	if !ok || len(cu.Billing.LowBalance) == 0 {
		return
	}
	thresholds := make([]int64, 0, len(cu.Billing.LowBalance))
	for _, p := range cu.Billing.LowBalance {
		thresholds = append(thresholds, p.Micros)
	}
	plan := activities.InboundPlan(cu)
	for _, t := range m.Crossed(thresholds) {
		id := fmt.Sprintf("lowbalance-%s-%s-%d-%s-%s", m.CustomerID, m.Currency, t, m.Key, m.Step)
		alert := &smsgw.BalanceAlert{
			ID: id, CustomerID: m.CustomerID, Currency: m.Currency,
			Threshold: smsgw.FormatMicros(t), Available: smsgw.FormatMicros(m.After),
			ThresholdMicros: t, AvailableMicros: m.After, OccurredAt: m.At,
		}
		for _, ch := range plan.Channels {
			_, err := b.Temporal.ExecuteWorkflow(context.WithoutCancel(ctx), client.StartWorkflowOptions{
				ID:                       BalanceAlertWorkflowID(id, ch),
				TaskQueue:                workflows.TaskQueue,
				WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
				TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.SearchCustomerID.ValueSet(m.CustomerID)),
				StaticSummary:            "low-balance alert over " + ch,
			}, workflows.RedeliverWorkflow, workflows.RedeliverInput{
				Delivery: smsgw.Delivery{Channel: ch, CustomerID: m.CustomerID, Balance: alert},
				RetryFor: plan.RetryFor,
			})
			var already *serviceerror.WorkflowExecutionAlreadyStarted
			if err != nil && !errors.As(err, &already) {
				b.Logger.Warn("low-balance alert not started", "customer", m.CustomerID, "threshold", alert.Threshold, "channel", ch, "err", err)
			}
		}
	}
}

// BalanceAlertWorkflowID is the ID of the workflow that tells the crossing
// alertID on channel: the alert's own ID for the webhook (as before there
// were other channels), with the channel after it for the others.
func BalanceAlertWorkflowID(alertID, channel string) string {
	if channel == smsgw.ChannelWebhook {
		return alertID
	}
	return alertID + "-" + channel
}
