package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/connectors/smppclient"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/internal/promreg"
)

// Bind is the upstream session the sender submits through.
type Bind interface {
	Submit(ctx context.Context, p smppclient.Part) (upstreamID string, err error)
}

// Intents records, before each submit_sm, that a part is about to go
// upstream, so that a retried send can tell a part that never left from
// one that was sent and whose outcome is unknown; and finds the parts an
// earlier attempt saw accepted.
type Intents interface {
	// RecordSubmitIntent returns first false when an earlier attempt had
	// recorded the intent of this part.
	RecordSubmitIntent(ctx context.Context, connectorID, messageID string, segment int) (first bool, err error)
	// ForgetSubmitIntent removes the intent of a part that was not sent
	// or was refused.
	ForgetSubmitIntent(ctx context.Context, connectorID, messageID string, segment int) error
	// SegmentCorrelation is the correlation recorded for a part, if any.
	SegmentCorrelation(ctx context.Context, connectorID, messageID string, segment int) (smsgw.Correlation, bool, error)
	// AddResends adds add to the resubmissions recorded on a part's intent
	// (0 reads them) and returns them.
	AddResends(ctx context.Context, connectorID, messageID string, segment, add int) (int, error)
}

// Sender is the send activity of one connector. It runs only in the
// connector's own process, on the connector's task queue.
type Sender struct {
	// Connector is the connector's configuration: its addressing and
	// data_coding overrides, in-doubt policy and re-route errors.
	Connector config.Connector
	Bind      Bind
	Matcher   *Matcher
	Intents   Intents
	// Resubmits, when set, counts parts sent again while in doubt (label
	// "connector").
	Resubmits *prometheus.CounterVec
	// Handed, when set, is told of each message whose parts all went
	// upstream (the admission control's own count, lifecycle.Backlog).
	Handed func(messageID string)
	Logger *slog.Logger
	Now    func() time.Time
}

// NewResubmitsCounter returns the counter for Sender.Resubmits, registered
// on reg (or the one already registered there).
func NewResubmitsCounter(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	return promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smsgw_upstream_resubmits_total",
		Help: "Parts submitted again after an earlier submit_sm of theirs was in doubt (inDoubt: resubmit), by connector.",
	}, []string{"connector"}))
}

// sendProgress is heartbeated after each part, so a retried attempt resumes
// after the parts upstream already accepted instead of sending them again.
type sendProgress struct {
	UpstreamIDs []string `json:"upstreamIds"`
	// Resubmitted are the parts (1-based) sent again while in doubt, each
	// as often as it was sent again.
	Resubmitted []int `json:"resubmitted,omitempty"`
	// Latencies are the parts' submit times (see activities.SendResult).
	Latencies []time.Duration `json:"latencies,omitempty"`
}

// Send submits each part of a message and records the correlation of each
// upstream ID before it returns. A part upstream accepted is never submitted
// again, whatever happens to the attempt afterwards: its ID is heartbeated
// at once (the last part's only when its correlation is not written at
// once), and a retried attempt starts after it. Heartbeats reach Temporal
// throttled, and an attempt may end between a submit_sm_resp and its
// heartbeat, so each part's intent is recorded before its submit_sm: a part
// whose intent an earlier attempt recorded is looked up among the
// correlations, and submitted again only when none is there and the
// connector's in-doubt policy says so. A one-part message's send may then
// be held for its receipt and completed later (held.go).
func (s *Sender) Send(ctx context.Context, in activities.SendInput) (activities.SendResult, error) {
	var progress sendProgress
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &progress); err != nil {
			return activities.SendResult{}, fmt.Errorf("read send progress: %w", err)
		}
	}
	// Parts accepted by an earlier attempt: make sure their correlations are
	// written (idempotent), then continue with the rest.
	for i, id := range progress.UpstreamIDs {
		if err := s.correlate(ctx, in, i, id); err != nil {
			return activities.SendResult{}, err
		}
	}
	src, dst := s.source(in.From), s.destination(in.To)
	for i := len(progress.UpstreamIDs); i < len(in.Parts); i++ {
		p := in.Parts[i]
		part := smppclient.Part{
			SourceAddr: src.addr, SourceTON: src.ton, SourceNPI: src.npi,
			DestAddr: dst.addr, DestTON: dst.ton, DestNPI: dst.npi,
			DataCoding:         s.Connector.MapDataCoding(p.DataCoding),
			ESMClass:           p.ESMClass,
			ShortMessage:       p.ShortMessage,
			RegisteredDelivery: 1,
			Validity:           in.Validity,
			SAR:                p.SAR,
		}
		start := time.Now()
		id, resends, err := s.submit(ctx, in, i, part)
		if err != nil {
			return activities.SendResult{}, failedAfter(err, len(progress.UpstreamIDs))
		}
		progress.UpstreamIDs = append(progress.UpstreamIDs, id)
		// Parts an earlier attempt submitted before heartbeats carried
		// latencies have none.
		for len(progress.Latencies) < len(progress.UpstreamIDs)-1 {
			progress.Latencies = append(progress.Latencies, 0)
		}
		progress.Latencies = append(progress.Latencies, time.Since(start))
		for range resends {
			progress.Resubmitted = append(progress.Resubmitted, i+1)
		}
		// The last part needs no heartbeat once its correlation is written:
		// a retried attempt finds it by the part's intent. Only when the
		// store does not take it at once does the heartbeat carry it.
		if i < len(in.Parts)-1 || !s.correlatedAtOnce(ctx, in, i, id) {
			activity.RecordHeartbeat(ctx, progress)
			if err := s.correlate(ctx, in, i, id); err != nil {
				return activities.SendResult{}, err
			}
		}
	}
	if s.Handed != nil {
		s.Handed(in.MessageID)
	}
	result := activities.SendResult{
		UpstreamIDs: progress.UpstreamIDs, Resubmitted: progress.Resubmitted, SentAt: s.Now().UTC(),
		Latencies: progress.Latencies, Attempt: attempt(ctx),
	}
	// A one-part message may wait here for its receipt (held.go), for no
	// longer than its attempt has left.
	if wait := s.receiptWait(ctx); len(in.Parts) == 1 && wait > 0 && s.Matcher != nil && result.UpstreamIDs[0] != "" &&
		s.Matcher.holdSend(s.Connector.ID, result.UpstreamIDs[0], activity.GetInfo(ctx).TaskToken, result, wait) {
		return activities.SendResult{}, activity.ErrResultPending
	}
	return result, nil
}

// receiptWait is how long a send may be held for its receipt: the
// connector's receiptWait, within half of what the attempt has left.
func (s *Sender) receiptWait(ctx context.Context) time.Duration {
	wait := s.Connector.HoldForReceipt()
	if wait <= 0 {
		return 0
	}
	if deadline, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(deadline)/2)
	}
	return wait
}

// submit sends part i once its intent is durable. A part an earlier attempt
// had already started is not sent blindly: accepted (its correlation is
// there), its upstream ID is taken; otherwise it is in doubt, and sent
// again only under inDoubt: resubmit. resends is how often the part was
// sent again, in this attempt and earlier ones, as its intent records.
func (s *Sender) submit(ctx context.Context, in activities.SendInput, i int, part smppclient.Part) (id string, resends int, err error) {
	segment, where := i+1, fmt.Sprintf("part %d of %d via %s", i+1, len(in.Parts), s.Connector.ID)
	storeDown := func(err error, inDoubt bool) error {
		return temporal.NewApplicationErrorWithCause(where+": not sent: "+err.Error(), activities.ErrTypeSubmitRetry, err,
			activities.SendFailure{StatusName: "store_unavailable", PartInDoubt: inDoubt})
	}
	var first bool
	if err := s.untilStored(ctx, "record the submission intent of "+where, func() (err error) {
		first, err = s.Intents.RecordSubmitIntent(ctx, s.Connector.ID, in.MessageID, segment)
		return err
	}); err != nil {
		return "", 0, storeDown(err, false)
	}
	if !first {
		var c smsgw.Correlation
		var ok bool
		if err := s.untilStored(ctx, "look up the earlier submission of "+where, func() (err error) {
			if c, ok, err = s.Intents.SegmentCorrelation(ctx, s.Connector.ID, in.MessageID, segment); err == nil && ok {
				resends, err = s.Intents.AddResends(ctx, s.Connector.ID, in.MessageID, segment, 0)
			}
			return err
		}); err != nil {
			return "", 0, storeDown(err, true)
		}
		if ok {
			s.Logger.Info("part accepted by an earlier attempt; not sent again", "message", in.MessageID, "part", segment, "upstream_id", c.UpstreamID)
			return c.UpstreamID, resends, nil
		}
		detail := activities.SendFailure{StatusName: "in_doubt", PartInDoubt: true}
		if !s.Connector.Resubmit() {
			return "", 0, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s: in doubt, an earlier attempt submitted it and no answer of upstream was recorded; inDoubt policy %s: not sent again", where, config.InDoubtFail),
				activities.ErrTypeInDoubt, nil, detail)
		}
		// Recorded before it is sent, like the first submission's intent.
		if err := s.untilStored(ctx, "record the resubmission of "+where, func() (err error) {
			resends, err = s.Intents.AddResends(ctx, s.Connector.ID, in.MessageID, segment, 1)
			return err
		}); err != nil {
			return "", 0, storeDown(err, true)
		}
		s.Logger.Warn("part in doubt after an earlier attempt; sent again (inDoubt: resubmit)", "message", in.MessageID, "part", segment, "resends", resends)
		if s.Resubmits != nil {
			s.Resubmits.WithLabelValues(s.Connector.ID).Inc()
		}
	}
	id, err = s.Bind.Submit(ctx, part)
	if err != nil {
		// A submission that certainly did not reach upstream is undone: the
		// part's intent goes (a first one) or its resubmission is taken
		// back; one that may have stays in doubt.
		if !errors.Is(err, smppclient.ErrInDoubt) {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			var ferr error
			if first {
				ferr = s.Intents.ForgetSubmitIntent(fctx, s.Connector.ID, in.MessageID, segment)
			} else {
				_, ferr = s.Intents.AddResends(fctx, s.Connector.ID, in.MessageID, segment, -1)
			}
			cancel()
			if ferr != nil {
				s.Logger.Warn("submission not sent left recorded; a retry takes the part as in doubt", "message", in.MessageID, "part", segment, "err", ferr)
			}
		}
		return "", 0, s.classify(err, segment, len(in.Parts), !first)
	}
	return id, resends, nil
}

// failedAfter notes in a send error how many parts upstream had accepted
// before it, for the workflow's failover.
func failedAfter(err error, accepted int) error {
	var appErr *temporal.ApplicationError
	if accepted == 0 || !errors.As(err, &appErr) {
		return err
	}
	var detail activities.SendFailure
	if appErr.HasDetails() {
		if derr := appErr.Details(&detail); derr != nil {
			return err
		}
	}
	detail.PartsAccepted = accepted
	if appErr.NonRetryable() {
		return temporal.NewNonRetryableApplicationError(appErr.Message(), appErr.Type(), errors.Unwrap(appErr), detail)
	}
	return temporal.NewApplicationErrorWithCause(appErr.Message(), appErr.Type(), errors.Unwrap(appErr), detail)
}

// correlate writes the correlation of one accepted part, retrying until the
// store answers or the attempt runs out of time: once upstream has accepted a
// part, failing here would mean sending it again.
func (s *Sender) correlate(ctx context.Context, in activities.SendInput, i int, id string) error {
	if id == "" {
		return nil // accepted without an ID: no receipt can name it
	}
	c := s.correlation(in, i, id)
	return s.untilStored(ctx, fmt.Sprintf("record correlation of part %d of %s", i+1, in.MessageID), func() error {
		return s.Matcher.Correlate(ctx, c)
	})
}

// correlatedAtOnce tries once to record the correlation of part i.
func (s *Sender) correlatedAtOnce(ctx context.Context, in activities.SendInput, i int, id string) bool {
	if id == "" {
		return true
	}
	return s.Matcher.Correlate(ctx, s.correlation(in, i, id)) == nil
}

func (s *Sender) correlation(in activities.SendInput, i int, id string) smsgw.Correlation {
	return smsgw.Correlation{ConnectorID: s.Connector.ID, UpstreamID: id, MessageID: in.MessageID, Segment: i + 1, CreatedAt: s.Now().UTC()}
}

// untilStored runs a store operation until it succeeds or the attempt runs
// out of time, so that a store that is down for a while delays a send
// instead of failing it.
func (s *Sender) untilStored(ctx context.Context, what string, op func() error) error {
	wait := 100 * time.Millisecond
	for {
		err := op()
		if err == nil {
			return nil
		}
		s.Logger.Warn("store not answering; trying again", "what", what, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// classify turns a submit error into an activity error whose type the
// workflow and the retry policy understand:
//   - a refusal listed in the connector's rerouteErrors: Reroute, not retried
//     here (the workflow moves on to the route's next connector);
//   - a retryable refusal (throttled, queue full, system error): SubmitRetry,
//     retried with backoff;
//   - any other refusal: SubmitRejected, final;
//   - no bind: NotBound, retried;
//   - in doubt (no response in time, connection lost or the attempt ended
//     after the submit_sm was written): by the connector's inDoubt policy,
//     InDoubt (final) or SubmitRetry (sent again).
//
// Each carries a SendFailure; its PartInDoubt is set when this part may
// have reached upstream: now, or in an earlier attempt (sentBefore).
func (s *Sender) classify(err error, part, parts int, sentBefore bool) error {
	where := fmt.Sprintf("part %d of %d via %s", part, parts, s.Connector.ID)
	var se *smppclient.SubmitError
	switch {
	case errors.As(err, &se):
		detail := activities.SendFailure{CommandStatus: se.Status, StatusName: smppstatus.Name(se.Status), PartInDoubt: sentBefore}
		switch {
		case s.Connector.IsRerouteStatus(se.Status):
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s: upstream answered %s, a re-route error of this connector", where, detail.StatusName),
				activities.ErrTypeReroute, err, detail)
		case se.Retryable:
			return temporal.NewApplicationErrorWithCause(
				fmt.Sprintf("%s: upstream answered %s; retrying", where, detail.StatusName),
				activities.ErrTypeSubmitRetry, err, detail)
		}
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s: upstream answered %s", where, detail.StatusName),
			activities.ErrTypeSubmitRejected, err, detail)
	case errors.Is(err, smppclient.ErrNotBound):
		return temporal.NewApplicationErrorWithCause(fmt.Sprintf("%s: not bound", where), activities.ErrTypeNotBound, err,
			activities.SendFailure{StatusName: "not_bound", PartInDoubt: sentBefore})
	case errors.Is(err, smppclient.ErrInDoubt):
		detail := activities.SendFailure{StatusName: "in_doubt", PartInDoubt: true}
		if s.Connector.Resubmit() {
			return temporal.NewApplicationErrorWithCause(
				fmt.Sprintf("%s: in doubt, upstream may have accepted it (%v); inDoubt policy %s: sending it again", where, err, config.InDoubtResubmit),
				activities.ErrTypeSubmitRetry, err, detail)
		}
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s: in doubt, upstream may have accepted it (%v); inDoubt policy %s: not sent again", where, err, config.InDoubtFail),
			activities.ErrTypeInDoubt, err, detail)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// address is an SMPP address with its TON and NPI.
type address struct {
	ton, npi byte
	addr     string
}

// source gives the source address, with the connector's TON and NPI when set.
func (s *Sender) source(from string) address {
	a := addressOf(from, true)
	if v := s.Connector.SourceTON; v != nil {
		a.ton = *v
	}
	if v := s.Connector.SourceNPI; v != nil {
		a.npi = *v
	}
	return a
}

// destination gives the destination address, with the connector's TON and NPI when set.
func (s *Sender) destination(to string) address {
	a := addressOf(to, false)
	if v := s.Connector.DestTON; v != nil {
		a.ton = *v
	}
	if v := s.Connector.DestNPI; v != nil {
		a.npi = *v
	}
	return a
}

// addressOf gives the SMPP TON, NPI and digits of an address: international
// numbers with TON 1/NPI 1 and no '+', alphanumeric senders with TON 5/NPI 0,
// short codes with TON 3/NPI 0.
func addressOf(a string, source bool) address {
	digits := strings.TrimPrefix(a, "+")
	numeric := digits != ""
	for _, r := range digits {
		if r < '0' || r > '9' {
			numeric = false
		}
	}
	switch {
	case !numeric && source:
		return address{5, 0, a}
	case numeric && len(digits) <= 8 && !strings.HasPrefix(a, "+"):
		return address{3, 0, digits}
	default:
		return address{1, 1, digits}
	}
}

// attempt is the activity's attempt, from 1; 0 outside an activity.
func attempt(ctx context.Context) int32 {
	if !activity.IsActivity(ctx) {
		return 0
	}
	return activity.GetInfo(ctx).Attempt
}
