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
	together    bool // the final record and first attempts go in one local activity (NotifyPlan.FinalTogether)
	steps       notifySteps
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
// to write before it is delivered, if any, or the first attempt already
// made on every channel at once, which failed on this one.
type queuedNote struct {
	note   smsgw.Notification
	record *activities.RecordInput
	tried  *triedNote
}

// triedNote is a delivery whose first attempt RecordAndNotifyAll made.
type triedNote struct {
	delivery smsgw.Delivery
	outcome  activities.NotifyOutcome
}

// err is the first attempt's failure as the workflow sees an activity's.
func (t *triedNote) err() error {
	if t.outcome.Refused {
		return temporal.NewNonRetryableApplicationError(t.outcome.Error, activities.ErrTypeWebhookRefused, nil)
	}
	return errors.New(t.outcome.Error)
}

func startNotifier(ctx workflow.Context, l *messageLife, plan smsgw.NotifyPlan) *notifier {
	n := &notifier{allStatuses: plan.AllStatuses, together: plan.FinalTogether, steps: newNotifySteps(ctx, plan.RetryFor)}
	steps := n.steps // the same for every channel
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
				var d smsgw.Delivery
				if item.tried != nil {
					d = item.tried.delivery
				} else {
					d = q.delivery(l, item.note)
					q.taken = true
				}
				var err error
				switch {
				case item.tried != nil:
					// Tried with the record and the other channels; retried here alone.
					if err = item.tried.err(); mayRetry(err) {
						err = steps.retry(ctx, d)
					}
				case item.record == nil:
					err = steps.deliver(ctx, d)
				default:
					err = workflow.ExecuteLocalActivity(steps.first, a.RecordAndNotify, *item.record, d).Get(ctx, nil)
					var appErr *temporal.ApplicationError
					switch {
					case errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeRecordFailed:
						// Recorded apart, with the store retries, before the customer hears.
						steps.recordApart(ctx, *item.record)
						err = steps.deliver(ctx, d)
					case errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeNotifyLater:
						err = steps.retry(ctx, d)
					case mayRetry(err) && durableRetries(ctx):
						// The local activity itself failed (it timed out): whether
						// the record was written is not known, so it is written apart.
						steps.recordApart(ctx, *item.record)
						err = steps.deliver(ctx, d)
					}
				}
				if err != nil {
					// Refused, or out of retries: keep it for redelivery and go on.
					_ = workflow.ExecuteLocalActivity(steps.record, a.NotifyFailed, d, rootMessage(err)).Get(ctx, nil)
				}
				q.busy = false
			}
		})
	}
	return n
}

// Notifications are tried once at once, in a local activity: a customer
// that answers at once costs the message no history event. A delivery that
// failed and may be retried is retried in an activity: the server spaces
// its attempts with durable timers, so a customer whose endpoint is slow
// or down holds no worker slot between attempts, and its attempts take
// activity slots, not the local activity and workflow task slots every
// message needs. Each attempt is bounded by the channel's own timeout
// (the webhook client's), and a channel may refuse at once an attempt for
// a customer with too many in flight, which the server retries later.
//
// Workflows that started before the retries moved to an activity keep
// retrying in the local activity (durableRetries).
type notifySteps struct {
	first   workflow.Context // one attempt, local activity
	retries workflow.Context // the rest, activity, for the customer's retry period
	legacy  workflow.Context // the local activity retried for the retry period, as before
	record  workflow.Context // store writes, retried until the stores are back
}

// notifyAttemptTime bounds one attempt of a delivery.
const notifyAttemptTime = 30 * time.Second

// durableRetriesChange names the change that moved notification retries
// from the local activity to an activity (workflow.GetVersion).
const durableRetriesChange = "notify-durable-retries"

func newNotifySteps(ctx workflow.Context, retryFor time.Duration) notifySteps {
	if retryFor <= 0 {
		retryFor = activities.DefaultNotifyRetry
	}
	retry := &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        10 * time.Minute,
		NonRetryableErrorTypes: []string{activities.ErrTypeWebhookRefused},
	}
	return notifySteps{
		first: workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: notifyAttemptTime,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
		}),
		retries: workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			ScheduleToCloseTimeout: retryFor,
			StartToCloseTimeout:    notifyAttemptTime,
			RetryPolicy:            retry,
		}),
		legacy: workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			ScheduleToCloseTimeout: retryFor,
			StartToCloseTimeout:    notifyAttemptTime,
			RetryPolicy:            retry,
		}),
		record: workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout:    recordTimeout,
			ScheduleToCloseTimeout: recordRetryPeriod,
			RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute},
		}),
	}
}

// deliver tries d once, then, when that failed and may be retried, in an
// activity until it is delivered, refused or out of time.
func (s notifySteps) deliver(ctx workflow.Context, d smsgw.Delivery) error {
	var a *activities.Activities
	err := workflow.ExecuteLocalActivity(s.first, a.Notify, d).Get(ctx, nil)
	if !mayRetry(err) || !durableRetries(ctx) {
		return err // delivered, refused, or (started before) retried already
	}
	return workflow.ExecuteActivity(s.retries, a.Notify, d).Get(ctx, nil)
}

// retry delivers d after a first attempt that failed and may be retried.
func (s notifySteps) retry(ctx workflow.Context, d smsgw.Delivery) error {
	var a *activities.Activities
	if !durableRetries(ctx) {
		return workflow.ExecuteLocalActivity(s.legacy, a.Notify, d).Get(ctx, nil)
	}
	return workflow.ExecuteActivity(s.retries, a.Notify, d).Get(ctx, nil)
}

// recordApart writes a record the delivery could not write with it.
func (s notifySteps) recordApart(ctx workflow.Context, record activities.RecordInput) {
	var a *activities.Activities
	if err := workflow.ExecuteLocalActivity(s.record, a.Record, record).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("final status not recorded", "err", err)
	}
}

// durableRetries tells whether this workflow retries deliveries in an
// activity (it started after that change); it is asked only once a
// delivery has failed, so the history of a message whose customer answers
// at once does not change.
func durableRetries(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, durableRetriesChange, workflow.DefaultVersion, 1) == 1
}

// mayRetry tells whether a failed delivery may be tried again: it did not
// succeed, was not refused for good, and the workflow is not cancelled.
func mayRetry(err error) bool {
	if err == nil || temporal.IsCanceledError(err) {
		return false
	}
	var appErr *temporal.ApplicationError
	return !errors.As(err, &appErr) || !appErr.NonRetryable()
}

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
	taking := n.taking(note)
	if len(taking) != 1 || taking[0].busy || len(taking[0].items) > 0 {
		return false
	}
	taking[0].items = append(taking[0].items, queuedNote{note: note, record: &record})
	return true
}

// sendAllWithRecord writes the record and makes the first attempt on every
// channel that takes the notification, in one local activity, when the plan
// asks for it, more than one channel takes it and all of them are idle; the
// channels whose attempt failed retry it on their own, or record that they
// gave up. It returns false, doing nothing, otherwise.
func (n *notifier) sendAllWithRecord(ctx workflow.Context, l *messageLife, note smsgw.Notification, record activities.RecordInput) bool {
	if !n.together {
		return false
	}
	taking := n.taking(note)
	if len(taking) < 2 {
		return false
	}
	for _, q := range taking {
		if q.busy || len(q.items) > 0 {
			return false
		}
	}
	ds := make([]smsgw.Delivery, len(taking))
	for i, q := range taking {
		ds[i] = q.delivery(l, note)
	}
	var a *activities.Activities
	var outcomes []activities.NotifyOutcome
	err := workflow.ExecuteLocalActivity(n.steps.first, a.RecordAndNotifyAll, record, ds).Get(ctx, &outcomes)
	switch {
	case temporal.IsCanceledError(err):
		// The workflow is cancelled: nothing more can be written or
		// delivered (so it is on the one-channel path too).
		return true
	case err != nil:
		// Not recorded (ErrTypeRecordFailed), or the local activity failed
		// and whether it recorded is not known: recorded apart, with the
		// store retries (a record that still fails is logged, as on the
		// one-channel path), before the customer hears; then each channel
		// delivers as usual. A delivery the attempt finished is not made
		// again (Activities.Notify remembers it in this process); one still
		// under way when the local activity timed out may be.
		n.steps.recordApart(ctx, record)
		n.send(note)
		return true
	}
	for i, q := range taking {
		q.taken = true
		outcome := activities.NotifyOutcome{Error: "no outcome of the first attempt"} // retried, never taken as delivered
		if i < len(outcomes) {
			outcome = outcomes[i]
		}
		if outcome.Error != "" {
			q.items = append(q.items, queuedNote{note: note, tried: &triedNote{delivery: ds[i], outcome: outcome}})
		}
	}
	return true
}

// taking is the channels a notification goes out on.
func (n *notifier) taking(note smsgw.Notification) []*notifyQueue {
	var taking []*notifyQueue
	for _, q := range n.queues {
		if q.takes(note) {
			taking = append(taking, q)
		}
	}
	return taking
}

// delivery is the delivery of note on this channel.
func (q *notifyQueue) delivery(l *messageLife, note smsgw.Notification) smsgw.Delivery {
	d := smsgw.Delivery{Channel: q.channel, CustomerID: l.msg.CustomerID, CallbackURL: l.msg.CallbackURL, Notification: &note, Sequel: q.taken}
	if q.channel != smsgw.ChannelWebhook {
		d.CallbackURL = ""
	}
	return d
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
