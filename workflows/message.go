package workflows

import (
	"errors"
	"slices"
	"strconv"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
)

// Retry and timeout settings of a message's steps.
const (
	recordTimeout = 10 * time.Second
	// recordRetryPeriod is how long a store write is retried: long enough
	// to outlast any outage, so a message in flight waits for its stores
	// instead of failing.
	recordRetryPeriod = 7 * 24 * time.Hour
	sendAttemptTime   = time.Minute
	sendMaxAttempts   = 10
	notifyRetryPeriod = 24 * time.Hour
	// sentGrace is how long after the send the SENT step waits to be
	// recorded. Most receipts come within it, and then SENT is recorded
	// with the final status, in the same store write and search attribute
	// update, which saves the message two history events; a message
	// still waiting for its receipt after it shows as SENT everywhere.
	sentGrace = 10 * time.Second
)

// MessageWorkflow is the life of one message; its workflow ID is the message ID.
//
//  1. Take the plan the Submitter made (route, parts, channels), or make
//     one in Prepare (local activity) for a scheduled message.
//  2. Send (activity on the connector's task queue): submit_sm per part;
//     first from this process (SendHere local activity) when the
//     Submitter asked for it and this process holds the connector bound.
//  3. Wait for a receipt per part, or the end of validity; SENT is recorded
//     (event, reporting row, search attributes) once sentGrace has passed
//     without the final receipts, or else with the final status. A receipt
//     the send brought back in its result (a send held for its receipt by
//     the connector's receiptWait) is taken first, as if signalled.
//  4. Record the final status and notify the customer, in one local
//     activity when a channel is free to take it at once.
//
// On the happy path of a one-part message whose receipt comes within
// sentGrace this costs three workflow tasks and 18 history events, the
// bare workflow's count, and one store write per store until the end; when
// the receipt comes back with the send, two workflow tasks and 14 events;
// when it is sent from here, two workflow tasks and 13 events.
func MessageWorkflow(ctx workflow.Context, in MessageInput) (MessageResult, error) {
	m := in.Message
	if m.Validity <= 0 {
		m.Validity = smsgw.DefaultValidity
	}
	var a *activities.Activities
	life := &messageLife{msg: m, status: smsgw.StatusAccepted, charge: in.Charge, sendHere: in.SendHere}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (smsgw.Status, error) { return life.status, nil }); err != nil {
		return MessageResult{}, err
	}
	receipts := workflow.GetSignalChannel(ctx, SignalReceipt)
	notSentYet := func() error {
		if life.sending || life.status.Final() {
			return temporal.NewApplicationError("the message is already "+life.stage(), ErrCannotChange)
		}
		return nil
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateCancel, func(workflow.Context) error {
		life.cancelled = true
		return nil
	}, workflow.UpdateHandlerOptions{Validator: notSentYet}); err != nil {
		return MessageResult{}, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateReview, func(_ workflow.Context, r ReviewRequest) error {
		life.review = &r
		return nil
	}, workflow.UpdateHandlerOptions{Validator: func(ReviewRequest) error {
		switch {
		case !life.held:
			return temporal.NewApplicationError("the message is not held for review", ErrCannotChange)
		case life.review != nil:
			return temporal.NewApplicationError("the message was already reviewed", ErrCannotChange)
		}
		return nil
	}}); err != nil {
		return MessageResult{}, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateReplace, func(_ workflow.Context, r ReplaceRequest) error {
		if r.Text != "" { // a new schedule alone keeps the text
			life.msg.Text = r.Text
		}
		if !r.ScheduleAt.IsZero() {
			life.msg.ScheduleAt = r.ScheduleAt
		}
		life.replaced = true
		return nil
	}, workflow.UpdateHandlerOptions{Validator: func(r ReplaceRequest) error {
		if err := notSentYet(); err != nil {
			return err
		}
		// Only the workflow knows the message's validity: a schedule
		// past its end would wait for a message that has expired.
		if end := life.msg.AcceptedAt.Add(life.msg.Validity); !r.ScheduleAt.IsZero() && !r.ScheduleAt.Before(end) {
			return temporal.NewApplicationError("scheduled delivery "+r.ScheduleAt.UTC().Format(time.RFC3339)+
				" is not before the end of the message's validity "+end.UTC().Format(time.RFC3339), ErrInvalidChange)
		}
		return nil
	}}); err != nil {
		return MessageResult{}, err
	}

	// Store writes retry until the stores are back: a message in flight is never given up
	// because a database was down for a while.
	recordCtx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    recordTimeout,
		ScheduleToCloseTimeout: recordRetryPeriod,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        200 * time.Millisecond,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeNoRoute, activities.ErrTypeInvalid},
		},
	})

	// 1. The plan (route, parts, channels) the Submitter made; its events
	// are recorded with the next step. A message that waits for its time
	// is planned (and recorded) again now and when it may go.
	var prep activities.PrepareResult
	var err error
	if in.Plan != nil && m.ScheduleAt.IsZero() {
		prep = *in.Plan
		life.pending = append(life.pending, activities.AcceptanceEvents(m, life.nextSeq(), prep)...)
		life.nextSeq()
		// Recorded with the next step; if that takes longer than sentGrace
		// (a slow send, a late receipt), when sentGrace ends.
		life.startGrace(ctx)
	} else {
		err = workflow.ExecuteLocalActivity(recordCtx, a.Prepare, activities.PrepareInput{Message: m, Seq: life.nextSeq()}).Get(ctx, &prep)
		life.nextSeq() // Prepare records two events: accepted and routed.
	}
	if err != nil {
		var appErr *temporal.ApplicationError
		code := "PREPARE_FAILED"
		if errors.As(err, &appErr) {
			code = appErr.Type()
			var plan smsgw.NotifyPlan
			if appErr.HasDetails() && appErr.Details(&plan) == nil {
				life.notify = startNotifier(ctx, life, plan)
			}
		}
		return life.end(ctx, recordCtx, smsgw.StatusRejected, code, rootMessage(err))
	}
	life.encoding, life.segments = prep.Encoding, len(prep.Parts)
	life.notify = startNotifier(ctx, life, prep.Notify)

	// The rules that matched when it was accepted are recorded with it; a
	// message a rule held waits for an operator's review.
	if in.Admission != nil {
		life.recordMatches(ctx, *in.Admission)
		if hold := in.Admission.Hold; hold != nil && workflow.GetVersion(ctx, changeReviewHold, workflow.DefaultVersion, 1) == 1 {
			if res, ended, err := life.awaitReview(ctx, recordCtx, *hold); ended {
				return res, err
			}
		}
	}

	// A scheduled message waits, durably, until it may go; until then the
	// customer may cancel it, or replace its text or schedule.
	for {
		if life.cancelled {
			return life.end(ctx, recordCtx, smsgw.StatusCancelled, "CANCELLED", "cancelled by the customer before it was sent")
		}
		if life.replaced {
			life.replaced = false
			life.pending = append(life.pending, life.event(ctx, smsgw.EventReplaced, "replaced-"+strconv.Itoa(life.seq), map[string]any{
				"scheduleAt": life.msg.ScheduleAt,
			}))
			if err := workflow.ExecuteLocalActivity(recordCtx, a.Prepare, activities.PrepareInput{Message: life.msg, Seq: life.nextSeq()}).Get(ctx, &prep); err != nil {
				return life.end(ctx, recordCtx, smsgw.StatusRejected, activities.ErrTypeInvalid, rootMessage(err))
			}
			life.nextSeq()
			life.encoding, life.segments = prep.Encoding, len(prep.Parts)
		}
		wait := life.msg.ScheduleAt.Sub(workflow.Now(ctx))
		if life.msg.ScheduleAt.IsZero() || wait <= 0 {
			break
		}
		if _, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return life.cancelled || life.replaced }); err != nil {
			return MessageResult{}, err
		}
	}
	life.sending = true

	// 2. Send through the route's connectors in order, failing over to the
	// next when one is not bound, runs out of retries, or answers (in its
	// submit response or its receipt) with one of its re-route errors.
	// 3. Record SENT, then wait for the receipts.
	parts := prep.Parts
	stay := false // kept on a connector that accepted part of the message
	for attempt := 0; ; {
		target := prep.Targets[attempt]
		last := attempt+1 == len(prep.Targets)
		sent, err := life.send(ctx, recordCtx, target, parts, prep.FailoverAfter, last, stay)
		if err != nil {
			kind, reason, ok := failoverReason(err)
			if !ok || last {
				status, code := sendFailureStatus(err)
				return life.end(ctx, recordCtx, status, code, rootMessage(err))
			}
			next := prep.Targets[attempt+1]
			reached := partsReached(err)
			if workflow.GetVersion(ctx, changeFailoverPerConnector, workflow.DefaultVersion, 1) == 1 {
				// Part of the message may be on the handset already: it
				// goes again only when the connector says so, or when the
				// connector itself named the refusal a re-route error.
				if reached > 0 && kind != kindRerouteError && !target.ResendOnFailover {
					life.keep(ctx, target.ID, kind, reason, reached)
					stay = true
					continue
				}
				if parts, err = life.encodeFor(ctx, recordCtx, next.ID); err != nil {
					return life.end(ctx, recordCtx, smsgw.StatusFailed, activities.ErrTypeInvalid, rootMessage(err))
				}
			}
			life.reroute(ctx, target.ID, next.ID, kind, reason, reached)
			attempt, stay = attempt+1, false
			continue
		}

		life.status = smsgw.StatusSent
		life.upstreamIDs = sent.UpstreamIDs
		life.withSend = nil
		if sent.Receipt != nil {
			life.withSend = []ReceiptSignal{{Receipt: *sent.Receipt, Segment: 1}}
		}
		life.sentAt = sent.SentAt
		life.sentRecorded = false
		sentData := map[string]any{"connector": target.ID, "upstreamIds": sent.UpstreamIDs}
		if len(sent.Latencies) > 0 {
			// How long upstream took to answer each part's submit_sm.
			ms := make([]int64, len(sent.Latencies))
			for i, d := range sent.Latencies {
				ms[i] = d.Milliseconds()
			}
			sentData["latenciesMs"] = ms
		}
		if sent.Attempt > 0 {
			sentData["attempt"] = sent.Attempt // > 1: earlier attempts were retried
		}
		if len(sent.Resubmitted) > 0 {
			// Parts sent again while in doubt: the handset may have them twice.
			sentData["resubmitted"] = sent.Resubmitted
		}
		life.pending = append(life.pending, life.event(ctx, smsgw.EventSent, "sent-"+target.ID, sentData))
		if prep.Notify.AllStatuses {
			// The customer hears of SENT now, so it is recorded now.
			if err := life.recordSent(ctx, recordCtx); err != nil {
				return MessageResult{}, err
			}
			life.notify.send(life.notification(ctx, smsgw.StatusSent, "", "", ""))
		}

		status, code, err := life.awaitReceipts(ctx, recordCtx, receipts)
		if err != nil {
			return MessageResult{}, err
		}
		if status != smsgw.StatusDelivered && status != smsgw.StatusExpired && !last && slices.Contains(target.RerouteReceiptErrs, smsgw.NormalizeReceiptErr(code)) {
			// Every part went out: the next connector sends the whole
			// message again, as a resend.
			next := prep.Targets[attempt+1]
			reached := len(life.upstreamIDs)
			if workflow.GetVersion(ctx, changeFailoverPerConnector, workflow.DefaultVersion, 1) == 1 {
				if parts, err = life.encodeFor(ctx, recordCtx, next.ID); err != nil {
					return life.end(ctx, recordCtx, smsgw.StatusFailed, activities.ErrTypeInvalid, rootMessage(err))
				}
			}
			life.reroute(ctx, target.ID, next.ID, "receipt_error", "receipt "+string(status)+" err:"+code, reached)
			attempt, stay = attempt+1, false
			continue
		}
		return life.end(ctx, recordCtx, status, code, "")
	}
}

// changeFailoverPerConnector marks the failover that encodes the message
// for the connector it moves to and keeps a message some parts of which
// were accepted on its connector (unless the connector says resend);
// workflows that failed over before it replay without either.
const changeFailoverPerConnector = "failover-per-connector"

// changeReviewHold marks the hold for review of a message a rule held.
const changeReviewHold = "review-hold"

// changeReleaseRecorded marks the record made as soon as a held message is
// released; workflows released before it record the release with their
// next step.
const changeReleaseRecorded = "release-recorded"

// Error codes of a message rejected in review.
const (
	CodeReviewRejected = "REVIEW_REJECTED"
	CodeReviewTimeout  = "REVIEW_TIMEOUT"
)

// recordMatches adds an event per rule that matched the message when it
// was accepted; they are recorded with the next step.
func (l *messageLife) recordMatches(ctx workflow.Context, adm smsgw.Admission) {
	for i, m := range adm.Matches {
		data := map[string]any{"rule": m.Rule, "action": m.Action}
		if m.Detail != "" {
			data["detail"] = m.Detail
		}
		if m.Tag != "" {
			data["tag"] = m.Tag
		}
		if m.Sender != "" {
			data["sender"] = m.Sender
		}
		l.pending = append(l.pending, l.event(ctx, smsgw.EventRuleMatched, "rule-"+strconv.Itoa(i+1), data))
	}
}

// awaitReview holds the message until an operator releases or rejects it
// (UpdateReview), the customer cancels it, or the hold times out, which
// rejects it. The hold is recorded first, so the message shows as held.
// ended is true when the message's life is over.
func (l *messageLife) awaitReview(ctx, recordCtx workflow.Context, hold smsgw.Hold) (res MessageResult, ended bool, err error) {
	l.held = true
	l.pending = append(l.pending, l.event(ctx, smsgw.EventHeld, "held", map[string]any{
		"reason": hold.Reason, "timeout": hold.Timeout.String(),
	}))
	if err := l.record(ctx, recordCtx); err != nil {
		return MessageResult{}, true, err
	}
	reviewed, err := workflow.AwaitWithTimeout(ctx, hold.Timeout, func() bool { return l.review != nil || l.cancelled })
	if err != nil {
		return MessageResult{}, true, err
	}
	l.held = false
	switch {
	case l.cancelled:
		return MessageResult{}, false, nil // the schedule loop ends it as cancelled
	case !reviewed:
		text := "not released within " + hold.Timeout.String() + " of review (" + hold.Reason + ")"
		l.pending = append(l.pending, l.event(ctx, smsgw.EventReviewRejected, "review-rejected", map[string]any{"reason": text, "timeout": true}))
		res, err := l.end(ctx, recordCtx, smsgw.StatusRejected, CodeReviewTimeout, text)
		return res, true, err
	case !l.review.Release:
		text := "rejected in review"
		if l.review.Reason != "" {
			text += ": " + l.review.Reason
		}
		l.pending = append(l.pending, l.event(ctx, smsgw.EventReviewRejected, "review-rejected", map[string]any{"reason": l.review.Reason}))
		res, err := l.end(ctx, recordCtx, smsgw.StatusRejected, CodeReviewRejected, text)
		return res, true, err
	}
	l.pending = append(l.pending, l.event(ctx, smsgw.EventReviewReleased, "review-released", map[string]any{"reason": l.review.Reason}))
	// The release is recorded at once, so that the message leaves the
	// operators' list of held messages now rather than with its next
	// step (which, for a scheduled message, may be hours away).
	if workflow.GetVersion(ctx, changeReleaseRecorded, workflow.DefaultVersion, 1) == 1 {
		if err := l.record(ctx, recordCtx); err != nil {
			return MessageResult{}, true, err
		}
	}
	return MessageResult{}, false, nil
}

// kindRerouteError is the failover kind of a refusal the connector lists
// among its rerouteErrors.
const kindRerouteError = "reroute_error"

// send submits the message's parts through one connector, on the task
// queue that only its bound processes poll.
//
// A message kept on its connector (stay) waits for it, and its send is
// retried, until validity ends, like one on the route's last connector.
func (l *messageLife) send(ctx, recordCtx workflow.Context, target smsgw.Target, parts []smsgw.Part, failoverAfter time.Duration, last, stay bool) (activities.SendResult, error) {
	l.connector = target.ID
	remaining := l.msg.AcceptedAt.Add(l.msg.Validity).Sub(workflow.Now(ctx))
	if remaining < time.Second {
		remaining = time.Second
	}
	// When no bound connector process picks the task up in FailoverAfter,
	// the connector is down and the next one of the route gets the message.
	// The last one has no next: the message waits for it until validity ends.
	scheduleToStart := failoverAfter
	if last || stay {
		scheduleToStart = 0
	}
	maxAttempts := int32(sendMaxAttempts)
	if stay {
		maxAttempts = 0 // until validity ends
	}
	sendCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              SendTaskQueue(target.ID),
		ScheduleToCloseTimeout: remaining,
		ScheduleToStartTimeout: scheduleToStart,
		StartToCloseTimeout:    sendAttemptTime,
		HeartbeatTimeout:       sendAttemptTime / 2,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        maxAttempts,
			NonRetryableErrorTypes: sendFinalErrors,
		},
	})
	in := activities.SendInput{
		MessageID:   l.msg.ID,
		ConnectorID: target.ID,
		From:        l.msg.From,
		To:          l.msg.To,
		Validity:    l.msg.Validity,
		Parts:       parts,
	}
	var hereErr error
	if l.sendHere && !stay && !target.QueueOnly {
		var a *activities.Activities
		hereCtx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: sendAttemptTime,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1}, // the task queue retries
		})
		var here activities.SendHereResult
		sending := workflow.ExecuteLocalActivity(hereCtx, a.SendHere, in)
		hereErr = l.awaitSend(ctx, recordCtx, sending, &here)
		switch {
		case !sending.IsReady():
			// The record made while it waited failed, and the send from
			// here goes on: the queue must not send it as well.
			return activities.SendResult{}, hereErr
		case hereErr == nil && here.Here:
			return here.Sent, nil
		case hereErr != nil && !sendRetryable(hereErr):
			return activities.SendResult{}, hereErr
		}
		// Not sent from here, or failed in a way another attempt may mend:
		// the connector's task queue takes the send, and its attempt finds
		// the parts this one submitted by their intents.
	}
	var sent activities.SendResult
	err := l.awaitSend(ctx, recordCtx, workflow.ExecuteActivity(sendCtx, activities.SendName, in), &sent)
	if reached := partsReached(hereErr); err != nil && reached > partsReached(err) {
		// The queue's attempt never ran (no bound connector took it in
		// time) or knew less: the parts the send from here reached may
		// be on the handset all the same.
		err = earlierReach{error: err, reached: reached}
	}
	return sent, err
}

// earlierReach is a send's failure through the connector's task queue
// after a send from here that reached more of the message's parts
// (accepted upstream, or in doubt) than the queue's failure tells.
type earlierReach struct {
	error
	reached int
}

func (e earlierReach) Unwrap() error { return e.error }

// awaitSend waits for a send's outcome into result. A send that takes
// longer than sentGrace (no bound connector yet) leaves the message
// recorded as accepted meanwhile.
func (l *messageLife) awaitSend(ctx, recordCtx workflow.Context, sending workflow.Future, result any) error {
	for l.graceRunning() && !sending.IsReady() {
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(sending, func(workflow.Future) {})
		sel.AddFuture(l.grace, func(workflow.Future) { l.graceFired = true })
		sel.Select(ctx)
		if l.graceFired {
			if err := l.record(ctx, recordCtx); err != nil {
				return err
			}
		}
	}
	return sending.Get(ctx, result)
}

// sendRetryable tells a send failure the send activity's retry policy
// would try again (a store or bind that was away, a throttled upstream, a
// timeout) from one that ends the send (sendFinalErrors, or an error its
// connector marked final).
func sendRetryable(err error) bool {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return true
	}
	if appErr.NonRetryable() {
		return false
	}
	return !slices.Contains(sendFinalErrors, appErr.Type())
}

// sendFinalErrors are the send failures that end a send: the next
// connector of the route, or the message's end, follows.
var sendFinalErrors = []string{
	activities.ErrTypeSubmitRejected, activities.ErrTypeInDoubt, activities.ErrTypeInvalid, activities.ErrTypeReroute,
}

// startGrace starts the sentGrace timer, when validity leaves room for it.
func (l *messageLife) startGrace(ctx workflow.Context) {
	if l.msg.AcceptedAt.Add(l.msg.Validity).Sub(workflow.Now(ctx)) > sentGrace {
		l.grace, l.graceFired = workflow.NewTimer(ctx, sentGrace), false
		l.graceEnds = workflow.Now(ctx).Add(sentGrace)
	}
}

// graceRunning tells whether the sentGrace timer is set and has not fired.
func (l *messageLife) graceRunning() bool { return l.grace != nil && !l.graceFired }

// record writes the events so far and the reporting row as it is now.
func (l *messageLife) record(ctx, recordCtx workflow.Context) error {
	var a *activities.Activities
	return workflow.ExecuteLocalActivity(recordCtx, a.Record, activities.RecordInput{
		Events: l.takePending(),
		Row:    l.row(ctx),
	}).Get(ctx, nil)
}

// reroute notes in the history and the event store why the message moves to
// another connector; it keeps its ID. reached is how many of its parts the
// connector it leaves may have delivered: when any, the next connector's
// send is a resend, recorded as one (and counted by Record).
func (l *messageLife) reroute(ctx workflow.Context, from, to, kind, reason string, reached int) {
	workflow.GetLogger(ctx).Info("re-routing", "from", from, "to", to, "reason", reason, "partsReached", reached)
	data := map[string]any{"from": from, "to": to, "kind": kind, "reason": reason}
	if reached > 0 {
		data["resend"], data["partsReached"] = true, reached
	}
	l.pending = append(l.pending, l.event(ctx, smsgw.EventRerouted, "rerouted-"+from, data))
	l.upstreamIDs, l.sentAt = nil, time.Time{}
}

// keep notes that the message stays on its connector, which accepted some
// of its parts, although its retries ran out: the rest go there too, so
// that no part reaches the handset twice.
func (l *messageLife) keep(ctx workflow.Context, connector, kind, reason string, reached int) {
	workflow.GetLogger(ctx).Info("kept on its connector", "connector", connector, "reason", reason, "partsReached", reached)
	l.pending = append(l.pending, l.event(ctx, smsgw.EventSendError, "kept-"+connector+"-"+strconv.Itoa(l.seq+1), map[string]any{
		"connector": connector, "kind": kind, "reason": reason, "partsReached": reached, "kept": true,
	}))
}

// encodeFor encodes the message for the connector it moves to: its
// concatenation and its reference numbers.
func (l *messageLife) encodeFor(ctx, recordCtx workflow.Context, connector string) ([]smsgw.Part, error) {
	var a *activities.Activities
	var enc activities.EncodeResult
	if err := workflow.ExecuteLocalActivity(recordCtx, a.EncodeFor, activities.EncodeInput{Message: l.msg, ConnectorID: connector}).Get(ctx, &enc); err != nil {
		return nil, err
	}
	l.encoding, l.segments = enc.Encoding, len(enc.Parts)
	return enc.Parts, nil
}

// partsReached is how many parts a failed send may have delivered.
func partsReached(err error) int {
	var earlier earlierReach
	if errors.As(err, &earlier) {
		return max(earlier.reached, partsReached(earlier.error))
	}
	var appErr *temporal.ApplicationError
	var f activities.SendFailure
	if errors.As(err, &appErr) && appErr.HasDetails() && appErr.Details(&f) == nil {
		return f.Reached()
	}
	return 0
}

func (l *messageLife) takePending() []smsgw.Event {
	p := l.pending
	l.pending = nil
	return p
}

// failoverReason tells whether a failed send should move to the next
// connector, and why: a kind for metrics and a reason for people.
func failoverReason(err error) (kind, reason string, ok bool) {
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) && timeoutErr.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START {
		return "not_bound", "connector not bound", true
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case activities.ErrTypeReroute:
			return kindRerouteError, "re-route error: " + appErr.Message(), true
		case activities.ErrTypeSubmitRetry, activities.ErrTypeNotBound:
			return "retries_exhausted", "retries exhausted: " + appErr.Message(), true
		}
	}
	return "", "", false
}

// messageLife is the state of one message as its workflow moves it along.
type messageLife struct {
	msg         smsgw.Message
	status      smsgw.Status
	seq         int
	connector   string
	encoding    string
	segments    int
	upstreamIDs []string
	sentAt      time.Time
	receipts    []ReceiptSignal
	// withSend is the receipt that came back with the send's result (a
	// send held for it), taken before any signal.
	withSend []ReceiptSignal
	pending  []smsgw.Event // events not yet recorded
	// sentRecorded is true once SENT through the current connector is in
	// the stores and the search attributes.
	sentRecorded bool
	// grace is the sentGrace timer: what is not recorded when it fires is
	// recorded then. graceFired says it has.
	grace      workflow.Future
	graceEnds  time.Time
	graceFired bool
	notify     *notifier
	cancelled  bool          // the customer withdrew it (UpdateCancel)
	replaced   bool          // the customer changed it (UpdateReplace); not yet re-encoded
	sending    bool          // handed to a connector: too late to cancel
	charge     *smsgw.Charge // the price, when the customer is billed
	held       bool          // held for review, awaiting UpdateReview
	review     *ReviewRequest
	sendHere   bool // try the send from the process that runs the workflow first (MessageInput.SendHere)
}

// ErrCannotChange is the error type of a refused UpdateCancel or UpdateReplace.
const ErrCannotChange = "CannotCancel"

// ErrInvalidChange is the error type of an UpdateReplace refused for what it
// asks, not for where the message is (a schedule past the end of validity).
const ErrInvalidChange = "InvalidChange"

// stage names where the message is, for refusals.
func (l *messageLife) stage() string {
	if l.status.Final() {
		return "final (" + string(l.status) + ")"
	}
	return "being sent upstream"
}

func (l *messageLife) nextSeq() int {
	l.seq++
	return l.seq
}

func (l *messageLife) event(ctx workflow.Context, typ, step string, data map[string]any) smsgw.Event {
	return smsgw.NewEvent(l.msg.ID, l.msg.CustomerID, l.nextSeq(), typ, step, workflow.Now(ctx).UTC(), data)
}

func (l *messageLife) row(ctx workflow.Context) smsgw.MessageRecord {
	r := smsgw.MessageRecord{
		ID:          l.msg.ID,
		CustomerID:  l.msg.CustomerID,
		EntryPoint:  l.msg.EntryPoint,
		From:        l.msg.From,
		To:          l.msg.To,
		Status:      l.status,
		ConnectorID: l.connector,
		Segments:    l.segments,
		Encoding:    l.encoding,
		ClientRef:   l.msg.ClientRef,
		AcceptedAt:  l.msg.AcceptedAt,
		UpdatedAt:   workflow.Now(ctx).UTC(),
	}
	if len(l.upstreamIDs) > 0 {
		r.UpstreamID = l.upstreamIDs[0]
	}
	if !l.sentAt.IsZero() {
		t := l.sentAt
		r.SentAt = &t
	}
	return r
}

// recordSent records that the message went out: the SENT search attributes
// (status, connector, upstream IDs), and the events so far with the
// reporting row.
func (l *messageLife) recordSent(ctx, recordCtx workflow.Context) error {
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		SearchMessageStatus.ValueSet(string(smsgw.StatusSent)),
		SearchConnectorID.ValueSet(l.connector),
		SearchUpstreamMessageID.ValueSet(l.upstreamIDs),
	); err != nil {
		return err
	}
	l.sentRecorded = true
	return l.record(ctx, recordCtx)
}

// awaitReceipts waits until every part has a final receipt or validity ends.
// Duplicate receipts and receipts for unknown parts are ignored; intermediate
// states (ENROUTE, ACCEPTD) are recorded but do not end the wait. SENT is
// recorded when sentGrace passes first. Timers are left to fire on their
// own: cancelling one would cost a history event.
func (l *messageLife) awaitReceipts(ctx, recordCtx workflow.Context, receipts workflow.ReceiveChannel) (smsgw.Status, string, error) {
	parts := make([]smsgw.Status, len(l.upstreamIDs))
	errs := make([]string, len(l.upstreamIDs))
	remaining := len(parts)
	// take applies a receipt, signalled or come back with the send.
	take := func(s ReceiptSignal) {
		i := l.partOf(s)
		if i < 0 || parts[i].Final() {
			return // not ours, or a duplicate of a final receipt
		}
		st, final := s.Receipt.Status()
		l.receipts = append(l.receipts, s)
		data := map[string]any{
			"segment": i + 1, "upstreamId": s.Receipt.UpstreamID, "stat": s.Receipt.Stat, "err": s.Receipt.Err,
		}
		if s.Receipt.Raw != "" {
			data["raw"] = s.Receipt.Raw
		}
		l.pending = append(l.pending, l.event(ctx, smsgw.EventReceipt, "receipt-"+strconv.Itoa(i+1)+"-"+s.Receipt.Stat, data))
		if final {
			parts[i] = st
			errs[i] = s.Receipt.Err
			remaining--
		} else if l.notify.allStatuses {
			l.notify.send(l.notification(ctx, smsgw.StatusSent, s.Receipt.Stat, "", ""))
		}
	}
	early := l.withSend
	l.withSend = nil
	for _, s := range early {
		take(s)
	}

	deadline := l.msg.AcceptedAt.Add(l.msg.Validity)
	untilDeadline := func() time.Duration { return max(deadline.Sub(workflow.Now(ctx)), time.Second) }
	if !l.sentRecorded {
		switch {
		case l.grace == nil && (remaining > 0 || len(early) == 0):
			l.startGrace(ctx) // planned in Prepare: the grace starts now
		case l.graceFired:
			// sentGrace ended while the send went on: record SENT now.
			if err := l.recordSent(ctx, recordCtx); err != nil {
				return "", "", err
			}
		}
	}
	grace := !l.sentRecorded && l.graceRunning()
	timer := l.grace
	if !grace && (remaining > 0 || len(early) == 0) {
		timer = workflow.NewTimer(ctx, untilDeadline())
	}
	expired := false
	var err error

	for remaining > 0 && !expired && err == nil {
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(receipts, func(c workflow.ReceiveChannel, _ bool) {
			var s ReceiptSignal
			c.Receive(ctx, &s)
			take(s)
		})
		sel.AddFuture(timer, func(workflow.Future) {
			if !grace {
				expired = true
				return
			}
			grace, l.graceFired = false, true
			err = l.recordSent(ctx, recordCtx)
			timer = workflow.NewTimer(ctx, untilDeadline())
		})
		sel.Select(ctx)
	}
	if err != nil {
		return "", "", err
	}

	// A part with no final receipt by the end of validity is EXPIRED, so the
	// customer always gets a final status.
	for i := range parts {
		if !parts[i].Final() {
			parts[i] = smsgw.StatusExpired
		}
	}
	status, code := combine(parts, errs)
	return status, code, nil
}

// partOf finds the part a receipt belongs to: by segment, else by upstream ID.
func (l *messageLife) partOf(s ReceiptSignal) int {
	if s.Receipt.ConnectorID != "" && s.Receipt.ConnectorID != l.connector {
		return -1 // a late receipt from a connector the message has left
	}
	for i, id := range l.upstreamIDs {
		if id == s.Receipt.UpstreamID && (s.Segment == 0 || s.Segment == i+1) {
			return i
		}
	}
	return -1
}

// combine gives a message's status from its parts' statuses: DELIVERED when
// every part is, otherwise the worst part's status.
func combine(parts []smsgw.Status, errs []string) (smsgw.Status, string) {
	for _, worst := range []smsgw.Status{smsgw.StatusUndeliverable, smsgw.StatusRejected, smsgw.StatusExpired} {
		for i, s := range parts {
			if s == worst {
				return s, errs[i]
			}
		}
	}
	return smsgw.StatusDelivered, ""
}

// end records the final status, notifies the customer and finishes the
// workflow. The record goes with the first notification when a channel is
// free to take it at once (one local activity instead of two), or with the
// first attempt on every channel when several take it and all are free.
func (l *messageLife) end(ctx, recordCtx workflow.Context, status smsgw.Status, code, text string) (MessageResult, error) {
	var a *activities.Activities
	l.awaitGraceAboutToEnd(ctx)
	l.status = status
	now := workflow.Now(ctx).UTC()
	attrs := []temporal.SearchAttributeUpdate{SearchMessageStatus.ValueSet(string(status))}
	if !l.sentRecorded && len(l.upstreamIDs) > 0 {
		attrs = append(attrs, SearchConnectorID.ValueSet(l.connector), SearchUpstreamMessageID.ValueSet(l.upstreamIDs))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, attrs...); err != nil {
		return MessageResult{}, err
	}
	final := l.event(ctx, smsgw.EventFinal, "final", map[string]any{"status": string(status), "errorCode": code, "errorText": text})
	row := l.row(ctx)
	row.DoneAt = &now
	row.ErrorCode, row.ErrorText = code, text
	record := activities.RecordInput{Events: append(l.takePending(), final), Row: row}
	if l.charge != nil && workflow.GetVersion(ctx, changeBilling, workflow.DefaultVersion, 1) == 1 {
		l.bill(ctx, status, &record)
	}

	if l.notify == nil {
		l.notify = startNotifier(ctx, l, smsgw.NotifyPlan{})
	}
	note := l.notification(ctx, status, l.lastStat(), code, text)
	if !l.notify.sendAllWithRecord(ctx, l, note, record) && !l.notify.sendWithRecord(note, record) {
		if err := workflow.ExecuteLocalActivity(recordCtx, a.Record, record).Get(ctx, nil); err != nil {
			return MessageResult{}, err
		}
		l.notify.send(note)
	}
	l.notify.finish(ctx)
	return MessageResult{Status: status, ErrorCode: code, ErrorText: text}, nil
}

// finalSettle is how close to its end the sentGrace timer must be for the
// final step to wait for it: longer than the final step's record and first
// delivery usually take.
const finalSettle = 3 * time.Second

// changeFinalAfterGrace marks the final step that waits for a sentGrace
// timer about to fire; workflows that ended before it replay without.
const changeFinalAfterGrace = "final-after-grace"

// awaitGraceAboutToEnd lets a sentGrace timer that fires within finalSettle
// fire before the final step. The final step records the status and makes
// the first delivery in the workflow task that completes the workflow; a
// timer firing while that task runs makes Temporal refuse the task, and the
// next one would deliver the final status again (on another replica, which
// does not know it was delivered). Only the few messages that end within
// finalSettle of the timer pay for it, with that wait and a workflow task;
// the version marker is recorded only for them.
func (l *messageLife) awaitGraceAboutToEnd(ctx workflow.Context) {
	if !l.graceRunning() || l.graceEnds.Sub(workflow.Now(ctx)) > finalSettle {
		return
	}
	if workflow.GetVersion(ctx, changeFinalAfterGrace, workflow.DefaultVersion, 1) < 1 {
		return
	}
	_ = l.grace.Get(ctx, nil) // a timer's only error is its cancellation, which never happens here
	l.graceFired = true
}

// changeBilling marks the settlement or release of a billed message with
// its final record; workflows started before it have no price to settle.
const changeBilling = "billing"

// bill adds the message's last ledger step to its final record: a message
// that was sent is settled for the segments of the connector that sent it
// (an EXPIRED one only when its customer is charged for those), any other is
// released. The step, its event and the row's cost go in one local activity.
func (l *messageLife) bill(ctx workflow.Context, status smsgw.Status, record *activities.RecordInput) {
	c := l.charge
	step := &activities.LedgerClose{
		CustomerID: l.msg.CustomerID, MessageID: l.msg.ID, Currency: c.Currency,
		Kind: smsgw.MoveRelease, Segments: l.segments,
	}
	sent := len(l.upstreamIDs) > 0
	if sent && (status != smsgw.StatusExpired || c.ChargeExpired) {
		step.Kind, step.Charge = smsgw.MoveSettle, c.Amount(l.segments)
	}
	data := map[string]any{
		"kind": step.Kind, "currency": c.Currency, "costMicros": step.Charge, "cost": smsgw.FormatMicros(step.Charge),
		"segments": l.segments, "unitMicros": c.UnitMicros, "priceList": c.PriceList, "prefix": c.Prefix, "prepaid": c.Prepaid,
	}
	if c.Prepaid {
		data["reservedMicros"] = c.Amount(c.Segments)
	}
	record.Events = append(record.Events, l.event(ctx, smsgw.EventBilled, "billed", data))
	record.Row.CostMicros, record.Row.Currency = step.Charge, c.Currency
	record.Close = step
}

// notification describes the message's status now.
func (l *messageLife) notification(ctx workflow.Context, status smsgw.Status, stat, code, text string) smsgw.Notification {
	return smsgw.Notification{
		MessageID:   l.msg.ID,
		Status:      status,
		Seq:         l.nextSeq(),
		OccurredAt:  workflow.Now(ctx).UTC(),
		Stat:        stat,
		ErrorCode:   code,
		ErrorText:   text,
		Parts:       l.segments,
		From:        l.msg.From,
		To:          l.msg.To,
		SubmittedAt: l.msg.AcceptedAt,
		ClientRef:   l.msg.ClientRef,
	}
}

// lastStat is the state word of the last receipt, if any.
func (l *messageLife) lastStat() string {
	if len(l.receipts) == 0 {
		return ""
	}
	return l.receipts[len(l.receipts)-1].Receipt.Stat
}

// sendFailureStatus maps a failed send to the message's final status and error code.
func sendFailureStatus(err error) (smsgw.Status, string) {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		if appErr.Type() == activities.ErrTypeSubmitRejected {
			var f activities.SendFailure
			if appErr.HasDetails() && appErr.Details(&f) == nil && f.StatusName != "" {
				return smsgw.StatusRejected, f.StatusName
			}
			return smsgw.StatusRejected, appErr.Type()
		}
		return smsgw.StatusFailed, appErr.Type()
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		return smsgw.StatusExpired, "VALIDITY_ENDED_BEFORE_SEND"
	}
	return smsgw.StatusFailed, "SEND_FAILED"
}

// rootMessage is the innermost error message, which is what a customer can
// act on: an application error's message alone, without the "(type: …,
// retryable: …)" Temporal adds to its Error().
func rootMessage(err error) string { return activities.RootMessage(err) }
