package lifecycle

import (
	"context"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/workflows"
)

// FailedNotifications finds a notify_failed event by its ID.
type FailedNotifications interface {
	FailedNotification(ctx context.Context, eventID string) (smsgw.FailedNotification, error)
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
	eventID, err := smsgw.ParseFailedNotificationID(id)
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
	if cu, ok := r.Config.Config().Customer(customerID); ok {
		retryFor = activities.InboundPlan(cu).RetryFor
	}
	workflowID = "redeliver-" + strings.ReplaceAll(eventID, ":", "-")
	_, err = r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflowID,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.SearchCustomerID.ValueSet(customerID)),
		StaticSummary:            "redelivery of a " + f.Channel + " notification",
	}, workflows.RedeliverWorkflow, workflows.RedeliverInput{Delivery: f.Delivery, RetryFor: retryFor})
	if err != nil {
		return "", smsgw.Unavailable("workflow engine", err)
	}
	return workflowID, nil
}
