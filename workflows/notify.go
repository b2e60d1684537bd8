package workflows

import (
	"errors"
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
	// keep is set when a delivery succeeded after tries inside one
	// workflow task: the workflow then ends in a task of its own, so that
	// an event arriving meanwhile cannot make that task refused and the
	// delivery run again.
	keep bool
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
	// A delivery whose first try failed is retried as an activity, not a
	// local one: a local activity retrying inside the workflow task that
	// then completes the workflow loses its result when an event (a timer,
	// a late receipt) arrives meanwhile, and delivers again.
	retryCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ScheduleToCloseTimeout: retryFor,
		StartToCloseTimeout:    30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        10 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeWebhookRefused},
		},
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
				notify := func() error {
					var res activities.NotifyResult
					err := workflow.ExecuteLocalActivity(notifyCtx, a.Notify, d).Get(ctx, &res)
					n.keep = n.keep || res.Attempt > 1
					return err
				}
				notifyAgain := func() error {
					if workflow.GetVersion(ctx, changeNotifyRetryAsActivity, workflow.DefaultVersion, 1) == 1 {
						return workflow.ExecuteActivity(retryCtx, a.Notify, d).Get(ctx, nil)
					}
					return notify()
				}
				var err error
				if item.record == nil {
					err = notify()
				} else {
					err = workflow.ExecuteLocalActivity(notifyCtx, a.RecordAndNotify, *item.record, d).Get(ctx, nil)
					var appErr *temporal.ApplicationError
					if errors.As(err, &appErr) {
						switch appErr.Type() {
						case activities.ErrTypeRecordFailed:
							// Recorded apart, with the store retries, before the customer hears.
							if rerr := workflow.ExecuteLocalActivity(recordCtx, a.Record, *item.record).Get(ctx, nil); rerr != nil {
								workflow.GetLogger(ctx).Error("final status not recorded", "err", rerr)
							}
							err = notifyAgain()
						case activities.ErrTypeNotifyLater:
							err = notifyAgain()
						}
					}
				}
				if err != nil {
					// Refused, or out of retries: keep it for redelivery and go on.
					_ = workflow.ExecuteLocalActivity(recordCtx, a.NotifyFailed, d, rootMessage(err)).Get(ctx, nil)
				}
				q.busy = false
			}
		})
	}
	return n
}

// changeNotifyRetryAsActivity marks the retries of a final notification
// whose first try failed running as an activity; workflows that retried
// before it replay with the local activity.
const changeNotifyRetryAsActivity = "notify-retry-as-activity"

// send queues a notification on every channel.
func (n *notifier) send(note smsgw.Notification) {
	for _, q := range n.queues {
		if q.takes(note) {
			q.items = append(q.items, queuedNote{note: note})
		}
	}
}

// sendWithRecord queues a notification with the record to write before it,
// when exactly one channel takes it and that channel is idle, so that the
// record is written at once and no customer hears before it is. It returns
// false, queuing nothing, otherwise.
func (n *notifier) sendWithRecord(note smsgw.Notification, record activities.RecordInput) bool {
	var taking []*notifyQueue
	for _, q := range n.queues {
		if q.takes(note) {
			taking = append(taking, q)
		}
	}
	if len(taking) != 1 || taking[0].busy || len(taking[0].items) > 0 {
		return false
	}
	taking[0].items = append(taking[0].items, queuedNote{note: note, record: &record})
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
	if n.keep {
		// A timer, not the end: the task that holds the delivery's result
		// is accepted whatever arrived meanwhile. Histories of deliveries
		// made before results told their attempt have none, and no timer.
		_ = workflow.Sleep(ctx, time.Millisecond)
	}
}
