package workflows

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/segment"
)

// Mobile-originated (MO) messages: a connector hands each deliver_sm that is
// not a receipt to StartInbound before it answers deliver_sm_resp. A
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

// MO is a mobile-originated short message as a connector received it.
type MO struct {
	ConnectorID  string
	From         string
	To           string
	DataCoding   byte
	ESMClass     byte
	ShortMessage []byte          // with its user data header when ESMClass has UDHI
	SAR          *activities.SAR // from sar_* optional parameters, if any
	ReceivedAt   time.Time
}

// InboundInput starts an InboundWorkflow; its workflow ID is Message.ID.
type InboundInput struct {
	Message activities.InboundMessage `json:"message"`
	// DedupWindow keeps the workflow open this long after delivering, so a
	// redelivered deliver_sm finds its ID taken (see InboundDedupWindow).
	DedupWindow time.Duration `json:"dedupWindow,omitempty"`
}

// InboundResult is how an inbound message ended.
type InboundResult struct {
	CustomerID string `json:"customerId"`
	Status     string `json:"status"` // activities.InboundDelivered, InboundFailed or InboundUnrouted
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
	res := InboundResult{CustomerID: route.CustomerID, Status: activities.InboundUnrouted}
	if route.CustomerID != "" {
		if err := workflow.UpsertTypedSearchAttributes(ctx, SearchCustomerID.ValueSet(route.CustomerID)); err != nil {
			return InboundResult{}, err
		}
		msg.Keyword = route.Keyword
		failed := deliverInbound(ctx, route, msg)
		res.Status = activities.InboundDelivered
		if len(failed) > 0 {
			res.Status = activities.InboundFailed
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

// deliverInbound delivers msg on every channel of the plan at once and
// returns the channels that gave up.
func deliverInbound(ctx workflow.Context, route activities.InboundRoute, msg activities.InboundMessage) []string {
	var a *activities.Activities
	notifyCtx := workflow.WithLocalActivityOptions(ctx, notifyOptions(route.Plan.RetryFor))
	recordCtx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    recordTimeout,
		ScheduleToCloseTimeout: recordRetryPeriod,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute},
	})
	msg.Connector = "" // customers need not know which upstream carried it
	var failed []string
	wg := workflow.NewWaitGroup(ctx)
	for _, ch := range route.Plan.Channels {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			d := activities.Delivery{Channel: ch, CustomerID: route.CustomerID, Inbound: &msg}
			if err := workflow.ExecuteLocalActivity(notifyCtx, a.Notify, d).Get(ctx, nil); err != nil {
				failed = append(failed, ch)
				_ = workflow.ExecuteLocalActivity(recordCtx, a.NotifyFailed, d, failureReason(err)).Get(ctx, nil)
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
	Delivery activities.Delivery `json:"delivery"`
	RetryFor time.Duration       `json:"retryFor"`
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

// StartInbound starts the workflow an MO needs, and returns once Temporal
// holds it: then, and only then, may the connector answer deliver_sm_resp.
// id is the inbound message ID, or for a part of a concatenated message
// the ID of its reassembly workflow. duplicate is true for a deliver_sm
// already taken within the dedup window.
func StartInbound(ctx context.Context, c client.Client, mo MO) (id string, duplicate bool, err error) {
	text, encoding, concat := decodeMO(mo)
	if concat == nil {
		id = singleInboundID(mo)
		_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                                       id,
			TaskQueue:                                TaskQueue,
			WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			WorkflowExecutionErrorWhenAlreadyStarted: true,
			StaticSummary:                            "inbound message via " + mo.ConnectorID,
		}, InboundWorkflow, InboundInput{
			Message: activities.InboundMessage{
				ID: id, From: mo.From, To: mo.To, Text: text, Encoding: encoding, Parts: 1,
				Connector: mo.ConnectorID, ReceivedAt: mo.ReceivedAt.UTC(),
			},
			DedupWindow: InboundDedupWindow,
		})
		var already *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &already) {
			return id, true, nil
		}
		if err != nil {
			return id, false, smsgw.Unavailable("workflow engine", err)
		}
		return id, false, nil
	}

	in := ReassemblyInput{
		ConnectorID: mo.ConnectorID, From: mo.From, To: mo.To, Ref: concat.Ref, Total: concat.Total,
		Timeout: ReassemblyTimeout, DedupWindow: InboundDedupWindow,
	}
	id = reassemblyID(in)
	_, err = c.SignalWithStartWorkflow(ctx, id, SignalInboundPart,
		InboundPart{Seq: concat.Seq, Text: text, Encoding: encoding, ReceivedAt: mo.ReceivedAt.UTC()},
		client.StartWorkflowOptions{
			ID:                    id,
			TaskQueue:             TaskQueue,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			StaticSummary:         "reassembly of a concatenated inbound message via " + mo.ConnectorID,
		}, ReassemblyWorkflow, in)
	if err != nil {
		return id, false, smsgw.Unavailable("workflow engine", err)
	}
	return id, false, nil
}

// moConcat is where a part sits in a concatenated message.
type moConcat struct {
	Ref   uint16
	Total int
	Seq   int
}

// decodeMO decodes an MO's text and finds its concatenation header (UDH, or
// else sar_* parameters). Text that cannot be decoded is never dropped: 8-bit
// data and text in a data coding the gateway cannot read are given as hex,
// with encoding BINARY8 or UNKNOWN. A header that does not describe a part
// of a message of at least two parts is treated as none.
func decodeMO(mo MO) (text, encoding string, concat *moConcat) {
	text, udh, err := segment.DecodePayload(mo.DataCoding, mo.ESMClass, mo.ShortMessage)
	if err != nil {
		payload := mo.ShortMessage
		if mo.ESMClass&segment.ESMClassUDHI != 0 {
			if u, rest, uerr := segment.ParseUDH(payload); uerr == nil {
				udh, payload = &u, rest
			}
		}
		text, encoding = hex.EncodeToString(payload), "UNKNOWN"
	} else {
		enc, _ := segment.DecodeDataCoding(mo.DataCoding)
		encoding = enc.String()
		if enc == segment.Binary8 {
			text = hex.EncodeToString([]byte(text))
		}
	}
	switch {
	case udh != nil && udh.Concat != nil:
		concat = &moConcat{Ref: udh.Concat.Ref, Total: udh.Concat.Total, Seq: udh.Concat.Seq}
	case mo.SAR != nil:
		concat = &moConcat{Ref: mo.SAR.Ref, Total: int(mo.SAR.Total), Seq: int(mo.SAR.Seq)}
	}
	if concat != nil && (concat.Total < 2 || concat.Seq < 1 || concat.Seq > concat.Total) {
		concat = nil
	}
	return text, encoding, concat
}

// singleInboundID derives an MO's ID from what upstream sent, so the same
// deliver_sm delivered again names the same message. No phone number shows
// in it: workflow IDs, like search attributes, are stored unencrypted.
func singleInboundID(mo MO) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00%d\x00%x", mo.ConnectorID, mo.From, mo.To, mo.DataCoding, mo.ESMClass, mo.ShortMessage)
	if mo.SAR != nil {
		fmt.Fprintf(h, "\x00%d/%d/%d", mo.SAR.Ref, mo.SAR.Total, mo.SAR.Seq)
	}
	return "mo-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// FailedNotifications finds a notify_failed event by its ID.
type FailedNotifications interface {
	FailedNotification(ctx context.Context, eventID string) (activities.FailedNotification, error)
}

// Redeliverer starts the redelivery of failed notifications.
type Redeliverer struct {
	Temporal client.Client
	Failed   FailedNotifications
	Config   *config.Live
}

// Redeliver starts a RedeliverWorkflow for the customer's failed
// notification id (as listed) and returns its workflow ID. Redelivering one
// whose redelivery is still running joins that run. Errors are *smsgw.Error:
// ENOTFOUND (no such notification of this customer), EUNAVAILABLE.
func (r *Redeliverer) Redeliver(ctx context.Context, customerID, id string) (workflowID string, err error) {
	eventID, err := activities.ParseFailedNotificationID(id)
	if err != nil {
		return "", err
	}
	f, err := r.Failed.FailedNotification(ctx, eventID)
	if smsgw.ErrorCode(err) == smsgw.ENOTFOUND || (err == nil && f.Delivery.CustomerID != customerID) {
		return "", smsgw.Errorf(smsgw.ENOTFOUND, "failed notification %q not found", id)
	}
	if err != nil {
		return "", smsgw.Unavailable("event store", err)
	}
	if f.Delivery.Channel == "" || (f.Delivery.Notification == nil && f.Delivery.Inbound == nil) {
		return "", smsgw.Errorf(smsgw.EINVALID, "failed notification %q holds no delivery to repeat", id)
	}
	f.Delivery.Redelivers = eventID
	retryFor := activities.DefaultNotifyRetry
	for _, cu := range r.Config.Config().Customers {
		if cu.ID == customerID {
			retryFor = activities.InboundPlan(cu).RetryFor
		}
	}
	workflowID = "redeliver-" + strings.ReplaceAll(eventID, ":", "-")
	_, err = r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflowID,
		TaskQueue:                TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		TypedSearchAttributes:    temporal.NewSearchAttributes(SearchCustomerID.ValueSet(customerID)),
		StaticSummary:            "redelivery of a " + f.Channel + " notification",
	}, RedeliverWorkflow, RedeliverInput{Delivery: f.Delivery, RetryFor: retryFor})
	if err != nil {
		return "", smsgw.Unavailable("workflow engine", err)
	}
	return workflowID, nil
}
