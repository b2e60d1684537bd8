package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
)

// notifier delivers a message's notifications on each of its channels, in
// order: a later status never overtakes an earlier one on the same channel,
// and nothing follows the final status. Each channel has its own coroutine,
// so an endpoint that is down holds back only itself.
type notifier struct {
	allStatuses bool
	queues      []*notifyQueue
}

type notifyQueue struct {
	channel     string
	failureOnly bool // only final failures go out on this channel
	items       []queuedNote
	busy        bool // a notification is being delivered
	taken       bool // a notification was taken off the queue before
	closed      bool
	done        bool
}

// queuedNote is a notification waiting for its channel, with the record
// to write before it is delivered, if any.
type queuedNote struct {
	note   smsgw.Notification
	record *activities.RecordInput
}

func startNotifier(ctx workflow.Context, l *messageLife, plan smsgw.NotifyPlan) *notifier {
	n := &notifier{allStatuses: plan.AllStatuses}
	retryFor := plan.RetryFor
	if retryFor <= 0 {
		retryFor = activities.DefaultNotifyRetry
	}
	notifyCtx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: retryFor,
		StartToCloseTimeout:    30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        10 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeWebhookRefused},
		},
	})
	recordCtx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    recordTimeout,
		ScheduleToCloseTimeout: recordRetryPeriod,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute},
	})
	var a *activities.Activities
	for _, ch := range plan.Channels {
		q := &notifyQueue{channel: ch, failureOnly: plan.SMPPFailureOnly && ch == smsgw.ChannelSMPP}
		n.queues = append(n.queues, q)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer func() { q.done = true }()
			for {
				if err := workflow.Await(ctx, func() bool { return len(q.items) > 0 || q.closed }); err != nil {
					return
				}
				if len(q.items) == 0 {
					return
				}
				item := q.items[0]
				q.items, q.busy = q.items[1:], true
				note := item.note
				d := smsgw.Delivery{Channel: q.channel, CustomerID: l.msg.CustomerID, CallbackURL: l.msg.CallbackURL, Notification: &note, Sequel: q.taken}
				q.taken = true
				if q.channel != smsgw.ChannelWebhook {
					d.CallbackURL = ""
				}
				var err error
				if item.record != nil {
					err = workflow.ExecuteLocalActivity(notifyCtx, a.RecordAndNotify, *item.record, d).Get(ctx, nil)
				} else {
					err = workflow.ExecuteLocalActivity(notifyCtx, a.Notify, d).Get(ctx, nil)
				}
				if err != nil {
					if item.record != nil {
						// The record must not wait on the customer's endpoint.
						_ = workflow.ExecuteLocalActivity(recordCtx, a.Record, *item.record).Get(ctx, nil)
					}
					// Refused, or out of retries: keep it for redelivery and go on.
					_ = workflow.ExecuteLocalActivity(recordCtx, a.NotifyFailed, d, rootMessage(err)).Get(ctx, nil)
				}
				q.busy = false
			}
		})
	}
	return n
}

// send queues a notification on every channel.
func (n *notifier) send(note smsgw.Notification) {
	for _, q := range n.queues {
		if q.takes(note) {
			q.items = append(q.items, queuedNote{note: note})
		}
	}
}

// sendWithRecord queues a notification on every channel, the record going
// with it on the first channel that takes it and is idle, so it is written
// at once. It returns false, queuing nothing, when no channel is idle.
func (n *notifier) sendWithRecord(note smsgw.Notification, record activities.RecordInput) bool {
	i := slices.IndexFunc(n.queues, func(q *notifyQueue) bool { return q.takes(note) && !q.busy && len(q.items) == 0 })
	if i < 0 {
		return false
	}
	n.queues[i].items = append(n.queues[i].items, queuedNote{note: note, record: &record})
	for j, q := range n.queues {
		if j != i && q.takes(note) {
			q.items = append(q.items, queuedNote{note: note})
		}
	}
	return true
}

// takes tells whether a notification goes out on this channel.
func (q *notifyQueue) takes(note smsgw.Notification) bool {
	return !q.failureOnly || (note.Status.Final() && note.Status != smsgw.StatusDelivered)
}

// finish waits until every queued notification was delivered or given up.
func (n *notifier) finish(ctx workflow.Context) {
	for _, q := range n.queues {
		q.closed = true
	}
	_ = workflow.Await(ctx, func() bool {
		for _, q := range n.queues {
			if !q.done {
				return false
			}
		}
		return true
	})
}
