package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
)

// Mobile-originated (MO) messages: a connector hands each deliver_sm that is
// not a receipt to lifecycle.StartInbound before it answers deliver_sm_resp. A
// single-part message starts an InboundWorkflow; each part of a
// concatenated one is signalled to the ReassemblyWorkflow of its (connector,
// source, destination, reference, total), which starts the InboundWorkflow
// once every part is in or the reassembly timeout ends.

// SignalInboundPart carries one part of a concatenated MO (InboundPart) to
// its ReassemblyWorkflow.
const SignalInboundPart = "inbound-part"

// Defaults of the inbound path.
const (
	// InboundDedupWindow is how long an inbound message's ID stays taken
	// after it arrived: the SMSC delivering the same deliver_sm again within
	// it (its deliver_sm_resp was lost) does not make a second message.
	InboundDedupWindow = 2 * time.Minute
	// ReassemblyTimeout is how long the parts of a concatenated MO are
	// awaited after the first one; then what arrived is delivered, marked partial.
	ReassemblyTimeout = 2 * time.Minute
)

// InboundInput starts an InboundWorkflow; its workflow ID is Message.ID.
type InboundInput struct {
	Message smsgw.InboundMessage `json:"message"`
	// DedupWindow keeps the workflow open this long after delivering, so a
	// redelivered deliver_sm finds its ID taken (see InboundDedupWindow).
	DedupWindow time.Duration `json:"dedupWindow,omitempty"`
}

// InboundResult is how an inbound message ended.
type InboundResult struct {
	CustomerID string `json:"customerId"`
	Status     string `json:"status"` // smsgw.InboundDelivered, InboundFailed or InboundUnrouted
}

// InboundWorkflow is the life of one inbound message:
//
//  1. ReceiveInbound (local activity): route it by destination number and
//     keyword, store it (unrouted ones too) and record it.
//  2. Deliver it on each of the owner's channels at once, each retried for
//     the customer's notify.retryFor; a channel that gives up records a
//     notify_failed event, from which the message can be redelivered.
//  3. Record the outcome, then hold the ID for the dedup window.
func InboundWorkflow(ctx workflow.Context, in InboundInput) (InboundResult, error) {
	var inbound *activities.Inbound
	msg := in.Message
	recordCtx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    recordTimeout,
		ScheduleToCloseTimeout: recordRetryPeriod,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
	var route activities.InboundRoute
	if err := workflow.ExecuteLocalActivity(recordCtx, inbound.ReceiveInbound, msg).Get(ctx, &route); err != nil {
		return InboundResult{}, err
	}
	res := InboundResult{CustomerID: route.CustomerID, Status: smsgw.InboundUnrouted}
	if route.CustomerID != "" {
		if err := workflow.UpsertTypedSearchAttributes(ctx, SearchCustomerID.ValueSet(route.CustomerID)); err != nil {
			return InboundResult{}, err
		}
		msg.Keyword = route.Keyword
		failed := deliverInbound(ctx, route, msg)
		res.Status = smsgw.InboundDelivered
		if len(failed) > 0 {
			res.Status = smsgw.InboundFailed
		}
		if err := workflow.ExecuteLocalActivity(recordCtx, inbound.FinishInbound, activities.FinishInboundInput{
			ID: msg.ID, CustomerID: route.CustomerID, Status: res.Status, Failed: failed, At: workflow.Now(ctx).UTC(),
		}).Get(ctx, nil); err != nil {
			return InboundResult{}, err
		}
	}
	if in.DedupWindow > 0 {
		if err := workflow.Sleep(ctx, in.DedupWindow); err != nil {
			return res, err
		}
	}
	return res, nil
}

// deliverInbound delivers msg on every channel of the plan at once (see
// notifySteps) and returns the channels that gave up.
func deliverInbound(ctx workflow.Context, route activities.InboundRoute, msg smsgw.InboundMessage) []string {
	var a *activities.Activities
	steps := newNotifySteps(ctx, route.Plan.RetryFor)
	msg.Connector = "" // customers need not know which upstream carried it
	var failed []string
	wg := workflow.NewWaitGroup(ctx)
	for _, ch := range route.Plan.Channels {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			d := smsgw.Delivery{Channel: ch, CustomerID: route.CustomerID, Inbound: &msg}
			if err := steps.deliver(ctx, d); err != nil {
				failed = append(failed, ch)
				_ = workflow.ExecuteLocalActivity(steps.record, a.NotifyFailed, d, failureReason(err)).Get(ctx, nil)
			}
		})
	}
	wg.Wait(ctx)
	return failed
}

// failureReason says why a delivery failed in words an operator can act on:
// the channel's own error, and whether retrying ran out of time.
func failureReason(err error) string {
	msg := rootMessage(err)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		msg = appErr.Message()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		msg = "not delivered within the retry period: " + msg
	}
	return msg
}

// notifyOptions retry a delivery with backoff for retryFor, except when the
// receiver refused it for good.
func notifyOptions(retryFor time.Duration) workflow.LocalActivityOptions {
	if retryFor <= 0 {
		retryFor = activities.DefaultNotifyRetry
	}
	return workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: retryFor,
		StartToCloseTimeout:    30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        10 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeWebhookRefused},
		},
	}
}

// RedeliverInput starts a RedeliverWorkflow.
type RedeliverInput struct {
	Delivery smsgw.Delivery `json:"delivery"`
	RetryFor time.Duration  `json:"retryFor"`
}

// RedeliverWorkflow delivers a failed notification again, as a regular
// activity so that its attempts and backoff show in the workflow's history.
// It fails when the delivery fails again; the notify_failed event stays.
func RedeliverWorkflow(ctx workflow.Context, in RedeliverInput) error {
	var a *activities.Activities
	retryFor := in.RetryFor
	if retryFor <= 0 {
		retryFor = activities.DefaultNotifyRetry
	}
	opts := notifyOptions(retryFor)
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ScheduleToCloseTimeout: opts.ScheduleToCloseTimeout,
		StartToCloseTimeout:    opts.StartToCloseTimeout,
		RetryPolicy:            opts.RetryPolicy,
	})
	return workflow.ExecuteActivity(ctx, a.Notify, in.Delivery).Get(ctx, nil)
}

// Registry is where workflows and activities are registered: a worker, or
// the test environment.
type Registry interface {
	RegisterWorkflow(w any)
	RegisterActivity(a any)
}

// RegisterInbound registers the inbound, reassembly and redelivery
// workflows and the inbound activities on the message worker (TaskQueue),
// which must also have activities.Activities registered.
func RegisterInbound(r Registry, acts *activities.Inbound) {
	r.RegisterWorkflow(InboundWorkflow)
	r.RegisterWorkflow(ReassemblyWorkflow)
	r.RegisterWorkflow(RedeliverWorkflow)
	r.RegisterActivity(acts)
}
