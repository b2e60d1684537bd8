package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/connectors/smppclient"
	"github.com/smsgw/smsgw/connectors/smppstatus"
)

// Bind is the upstream session the sender submits through.
type Bind interface {
	Submit(ctx context.Context, p smppclient.Part) (upstreamID string, err error)
}

// Sender is the send activity of one connector. It runs only in the
// connector's own process, on the connector's task queue.
type Sender struct {
	// Connector is the connector's configuration: its addressing and
	// data_coding overrides, in-doubt policy and re-route errors.
	Connector config.Connector
	Bind      Bind
	Matcher   *Matcher
	Logger    *slog.Logger
	Now       func() time.Time
}

// sendProgress is heartbeated after each part, so a retried attempt resumes
// after the parts upstream already accepted instead of sending them again.
type sendProgress struct {
	UpstreamIDs []string `json:"upstreamIds"`
}

// Send submits each part of a message and records the correlation of each
// upstream ID before it returns. A part upstream accepted is never submitted
// again, whatever happens to the attempt afterwards: its ID is heartbeated
// at once, and a retried attempt starts after it.
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
		id, err := s.Bind.Submit(ctx, part)
		if err != nil {
			return activities.SendResult{}, s.classify(err, i+1, len(in.Parts))
		}
		progress.UpstreamIDs = append(progress.UpstreamIDs, id)
		activity.RecordHeartbeat(ctx, progress)
		if err := s.correlate(ctx, in, i, id); err != nil {
			return activities.SendResult{}, err
		}
	}
	return activities.SendResult{UpstreamIDs: progress.UpstreamIDs, SentAt: s.Now().UTC()}, nil
}

// correlate writes the correlation of one accepted part, retrying until the
// store answers or the attempt runs out of time: once upstream has accepted a
// part, failing here would mean sending it again.
func (s *Sender) correlate(ctx context.Context, in activities.SendInput, i int, id string) error {
	if id == "" {
		return nil // accepted without an ID: no receipt can name it
	}
	c := smsgw.Correlation{ConnectorID: s.Connector.ID, UpstreamID: id, MessageID: in.MessageID, Segment: i + 1, CreatedAt: s.Now().UTC()}
	wait := 100 * time.Millisecond
	for {
		err := s.Matcher.Correlate(ctx, c)
		if err == nil {
			return nil
		}
		s.Logger.Warn("correlation not recorded yet", "message", in.MessageID, "upstream_id", id, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("record correlation of part %d: %w", i+1, err)
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
func (s *Sender) classify(err error, part, parts int) error {
	where := fmt.Sprintf("part %d of %d via %s", part, parts, s.Connector.ID)
	var se *smppclient.SubmitError
	switch {
	case errors.As(err, &se):
		detail := activities.SendFailure{CommandStatus: se.Status, StatusName: smppstatus.Name(se.Status)}
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
		return temporal.NewApplicationErrorWithCause(fmt.Sprintf("%s: not bound", where), activities.ErrTypeNotBound, err)
	case errors.Is(err, smppclient.ErrInDoubt):
		detail := activities.SendFailure{StatusName: "in_doubt"}
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
