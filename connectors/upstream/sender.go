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
	ConnectorID string
	Bind        Bind
	Matcher     *Matcher
	// Resubmit says whether a submit_sm that got no response may be sent
	// again. When false (the default), such a message fails as in doubt
	// rather than risk reaching the handset twice.
	Resubmit bool
	Logger   *slog.Logger
	Now      func() time.Time
}

// sendProgress is heartbeated after each part, so a retried attempt resumes
// after the parts upstream already accepted instead of sending them again.
type sendProgress struct {
	UpstreamIDs []string `json:"upstreamIds"`
}

// Send submits each part of a message and records the correlation of each
// upstream ID before it returns.
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
	srcTON, srcNPI, src := addressOf(in.From, true)
	dstTON, dstNPI, dst := addressOf(in.To, false)
	for i := len(progress.UpstreamIDs); i < len(in.Parts); i++ {
		p := in.Parts[i]
		part := smppclient.Part{
			SourceAddr: src, SourceTON: srcTON, SourceNPI: srcNPI,
			DestAddr: dst, DestTON: dstTON, DestNPI: dstNPI,
			DataCoding:         p.DataCoding,
			ESMClass:           p.ESMClass,
			ShortMessage:       p.ShortMessage,
			RegisteredDelivery: 1,
			Validity:           in.Validity,
		}
		if p.SAR != nil {
			part.SAR = &smppclient.SAR{Ref: p.SAR.Ref, Total: p.SAR.Total, Seq: p.SAR.Seq}
		}
		id, err := s.Bind.Submit(ctx, part)
		if err != nil {
			return activities.SendResult{}, s.classify(err, i+1)
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
	c := smsgw.Correlation{ConnectorID: s.ConnectorID, UpstreamID: id, MessageID: in.MessageID, Segment: i + 1, CreatedAt: s.Now().UTC()}
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
// workflow and the retry policy understand.
func (s *Sender) classify(err error, part int) error {
	var se *smppclient.SubmitError
	switch {
	case errors.As(err, &se):
		detail := activities.SendFailure{CommandStatus: se.Status, StatusName: smppstatus.Name(se.Status)}
		msg := fmt.Sprintf("part %d: upstream answered %s", part, detail.StatusName)
		if se.Retryable {
			return temporal.NewApplicationError(msg, activities.ErrTypeSubmitRetry, detail)
		}
		return temporal.NewNonRetryableApplicationError(msg, activities.ErrTypeSubmitRejected, err, detail)
	case errors.Is(err, smppclient.ErrNotBound):
		return temporal.NewApplicationError(fmt.Sprintf("part %d: connector %s is not bound", part, s.ConnectorID), activities.ErrTypeNotBound)
	case errors.Is(err, smppclient.ErrResponseTimeout):
		if s.Resubmit {
			return temporal.NewApplicationError(fmt.Sprintf("part %d: no submit_sm_resp; resubmitting", part), activities.ErrTypeSubmitRetry)
		}
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("part %d: no submit_sm_resp, upstream may have it", part), activities.ErrTypeInDoubt, err)
	}
	return fmt.Errorf("part %d: %w", part, err)
}

// addressOf gives the SMPP TON, NPI and digits of an address: international
// numbers with TON 1/NPI 1 and no '+', alphanumeric senders with TON 5/NPI 0,
// short codes with TON 3/NPI 0.
func addressOf(a string, source bool) (ton, npi byte, addr string) {
	digits := strings.TrimPrefix(a, "+")
	numeric := digits != ""
	for _, r := range digits {
		if r < '0' || r > '9' {
			numeric = false
		}
	}
	switch {
	case !numeric && source:
		return 5, 0, a
	case numeric && len(digits) <= 8 && !strings.HasPrefix(a, "+"):
		return 3, 0, digits
	default:
		return 1, 1, digits
	}
}
