// Package worker wires the gateway's long-running parts: the Temporal worker
// that runs message workflows, and the connector processes that hold SMPP
// binds to upstream SMSCs and serve their send task queues.
package worker

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/workflows"
)

// MessageWorker runs MessageWorkflow and the activities that need no bind.
type MessageWorker struct {
	Temporal   client.Client
	Activities *activities.Activities
	// Pollers is the number of workflow and activity task pollers (default
	// 16); the SDK's defaults are low for a workflow per message. Half the
	// workflow pollers wait on this worker's sticky queue, where every
	// workflow task of a message after its eager start goes: with too few,
	// those tasks find no poller waiting and go through Temporal's task
	// tables instead (docs/performance.md).
	Pollers int
	// LocalActivities is how many local activities run at once (default
	// 500): every message's store writes and first notification attempts.
	// Notification retries are activities, on slots of their own.
	LocalActivities int
	// StopTimeout is how long Stop waits for each kind of work in hand to
	// finish, one after the other: the workflow tasks (with the local
	// activities they wait on: a webhook call, a store write), then any
	// local activity still running, then the activities (notification
	// retries) (0: 15 s). A workflow task cut short runs again on another
	// worker: a webhook call that reached the customer goes out again.
	StopTimeout time.Duration
}

// New returns the Temporal worker, registered and not started. The caller
// starts it with Start (so eager workflow start can reach it) and stops it.
func (m MessageWorker) New() worker.Worker {
	pollers := m.Pollers
	if pollers <= 0 {
		pollers = 16
	}
	locals := m.LocalActivities
	if locals <= 0 {
		locals = 500
	}
	stop := m.StopTimeout
	if stop <= 0 {
		stop = 15 * time.Second
	}
	w := worker.New(m.Temporal, workflows.TaskQueue, worker.Options{
		MaxConcurrentWorkflowTaskPollers:        pollers,
		MaxConcurrentActivityTaskPollers:        pollers,
		MaxConcurrentLocalActivityExecutionSize: locals,
		WorkerStopTimeout:                       stop,
	})
	w.RegisterWorkflow(workflows.MessageWorkflow)
	w.RegisterActivity(m.Activities)
	return w
}

// RegisterSearchAttributes adds the gateway's search attributes to a
// namespace, leaving those already there alone.
func RegisterSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	want := map[string]enumspb.IndexedValueType{
		workflows.SearchCustomerID.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		workflows.SearchMessageStatus.GetName():     enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		workflows.SearchConnectorID.GetName():       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		workflows.SearchUpstreamMessageID.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
		workflows.SearchEntryPoint.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		workflows.SearchDueAt.GetName():             enumspb.INDEXED_VALUE_TYPE_DATETIME,
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range want {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: missing,
	})
	if err != nil {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}
