package api

import (
	"context"
	"log/slog"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	smsgw "github.com/smsgw/smsgw"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
	"github.com/smsgw/smsgw/segment"
)

// maxIDLength bounds a message ID in a request before it reaches a store.
const maxIDLength = 128

// messageService implements smsgwv1.MessageService on the domain's
// Submitter and MessageReader. It runs behind the interceptor, so a customer
// is always in the context and errors may be domain errors.
type messageService struct {
	smsgwv1.UnimplementedMessageServiceServer
	submitter smsgw.Submitter
	messages  smsgw.MessageReader
	counter   Counter
	canceller smsgw.Canceller // nil: CancelMessage answers Unimplemented
	replacer  smsgw.Replacer  // nil: ReplaceMessage answers Unimplemented
	// batchWorkers bounds how many items of one batch are submitted at once.
	batchWorkers int
	log          *slog.Logger
}

// Counter tells how a customer's text would be encoded and split.
type Counter interface {
	CountText(customerID, text string) (segment.Counts, error)
}

func (s *messageService) CountMessage(ctx context.Context, req *smsgwv1.CountMessageRequest) (*smsgwv1.CountMessageResponse, error) {
	cust, ok := CustomerFromContext(ctx)
	if !ok {
		return nil, smsgw.Errorf(smsgw.EUNAUTHORIZED, "not authenticated")
	}
	if s.counter == nil {
		return nil, status.Error(codes.Unimplemented, "counting is not available")
	}
	if req.GetText() == "" {
		return nil, smsgw.Errorf(smsgw.EINVALID, "text is required")
	}
	if n := utf8.RuneCountInString(req.GetText()); n > smsgw.MaxTextRunes {
		return nil, smsgw.Errorf(smsgw.EINVALID, "text has %d characters, at most %d are allowed", n, smsgw.MaxTextRunes)
	}
	c, err := s.counter.CountText(cust.ID, req.GetText())
	if err != nil {
		return nil, smsgw.Errorf(smsgw.EINVALID, "text: %v", err)
	}
	return &smsgwv1.CountMessageResponse{
		Encoding:        c.Encoding,
		Segments:        int32(c.Segments),
		Characters:      int32(c.Characters),
		UnitsUsed:       int32(c.UnitsUsed),
		UnitsPerSegment: int32(c.UnitsPerSegment),
		Remaining:       int32(c.Remaining),
	}, nil
}

func (s *messageService) SubmitMessage(ctx context.Context, req *smsgwv1.SubmitMessageRequest) (*smsgwv1.SubmitMessageResponse, error) {
	cust, ok := CustomerFromContext(ctx)
	if !ok {
		return nil, smsgw.Errorf(smsgw.EUNAUTHORIZED, "not authenticated")
	}
	key, err := idempotencyKey(ctx, req)
	if err != nil {
		return nil, err
	}
	return s.submit(ctx, cust.ID, req, key)
}

// submit submits one message of the customer, alone or as a batch item.
func (s *messageService) submit(ctx context.Context, customerID string, req *smsgwv1.SubmitMessageRequest, key string) (*smsgwv1.SubmitMessageResponse, error) {
	at, err := scheduleTime("scheduleAt", req.GetScheduleAt())
	if err != nil {
		return nil, err
	}
	acc, err := s.submitter.Submit(ctx, smsgw.Message{
		CustomerID:     customerID,
		EntryPoint:     entryPoint(ctx),
		From:           req.GetFrom(),
		To:             req.GetTo(),
		Text:           req.GetText(),
		CallbackURL:    req.GetCallbackUrl(),
		IdempotencyKey: key,
		Validity:       time.Duration(req.GetValiditySeconds()) * time.Second,
		ScheduleAt:     at,
		ClientRef:      req.GetClientRef(),
	})
	if err != nil {
		return nil, err
	}
	return &smsgwv1.SubmitMessageResponse{
		Id:       acc.ID,
		Status:   statusToProto(acc.Status),
		Segments: int32(acc.Segments),
		Encoding: acc.Encoding,
	}, nil
}

// scheduleTime reads an optional time from a request: unset is the zero
// time, an out-of-range one is EINVALID.
func scheduleTime(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, smsgw.Errorf(smsgw.EINVALID, "%s is not a valid time: %v", field, err)
	}
	return ts.AsTime(), nil
}

// idempotencyKey takes the key from the request field or from the
// idempotency-key metadata (where REST's Idempotency-Key header arrives).
// Both may be given only if they agree.
func idempotencyKey(ctx context.Context, req *smsgwv1.SubmitMessageRequest) (string, error) {
	key := req.GetIdempotencyKey()
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get(idempotencyKeyMD) {
		switch {
		case v == "" || v == key:
		case key == "":
			key = v
		default:
			return "", smsgw.Errorf(smsgw.EINVALID, "the Idempotency-Key header and idempotencyKey differ")
		}
	}
	if key != "" && !smsgw.ValidIdempotencyKey(key) {
		return "", smsgw.Errorf(smsgw.EINVALID, "the idempotency key must be 1 to %d printable ASCII characters", smsgw.MaxIdempotencyKeyLength)
	}
	return key, nil
}

func (s *messageService) GetMessage(ctx context.Context, req *smsgwv1.GetMessageRequest) (*smsgwv1.GetMessageResponse, error) {
	cust, ok := CustomerFromContext(ctx)
	if !ok {
		return nil, smsgw.Errorf(smsgw.EUNAUTHORIZED, "not authenticated")
	}
	id := req.GetId()
	if err := checkID(id); err != nil {
		return nil, err
	}
	notFound := smsgw.Errorf(smsgw.ENOTFOUND, "message %q not found", id)
	rec, err := s.messages.GetMessage(ctx, id)
	if smsgw.ErrorCode(err) == smsgw.ENOTFOUND {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	// Another customer's message gets the very answer of an absent one.
	if rec.CustomerID != cust.ID {
		return nil, notFound
	}
	return &smsgwv1.GetMessageResponse{Message: recordToProto(rec)}, nil
}

// checkID refuses a message ID that no message can have, before it reaches
// a store.
func checkID(id string) error {
	if id == "" {
		return smsgw.Errorf(smsgw.EINVALID, "id is required")
	}
	if len(id) > maxIDLength {
		return smsgw.Errorf(smsgw.EINVALID, "id is longer than %d characters", maxIDLength)
	}
	return nil
}

func recordToProto(r smsgw.MessageRecord) *smsgwv1.Message {
	return &smsgwv1.Message{
		Id:          r.ID,
		Status:      statusToProto(r.Status),
		From:        r.From,
		To:          r.To,
		ConnectorId: r.ConnectorID,
		Segments:    int32(r.Segments),
		Encoding:    r.Encoding,
		ErrorCode:   r.ErrorCode,
		ErrorText:   r.ErrorText,
		AcceptedAt:  timestamp(&r.AcceptedAt),
		SentAt:      timestamp(r.SentAt),
		DoneAt:      timestamp(r.DoneAt),
		ClientRef:   r.ClientRef,
	}
}

// timestamp returns nil for a missing or zero time, so it is left out.
func timestamp(t *time.Time) *timestamppb.Timestamp {
	if t == nil || t.IsZero() {
		return nil
	}
	return timestamppb.New(*t)
}

var statusProtos = map[smsgw.Status]smsgwv1.MessageStatus{
	smsgw.StatusAccepted:      smsgwv1.MessageStatus_MESSAGE_STATUS_ACCEPTED,
	smsgw.StatusSent:          smsgwv1.MessageStatus_MESSAGE_STATUS_SENT,
	smsgw.StatusDelivered:     smsgwv1.MessageStatus_MESSAGE_STATUS_DELIVERED,
	smsgw.StatusUndeliverable: smsgwv1.MessageStatus_MESSAGE_STATUS_UNDELIVERABLE,
	smsgw.StatusExpired:       smsgwv1.MessageStatus_MESSAGE_STATUS_EXPIRED,
	smsgw.StatusRejected:      smsgwv1.MessageStatus_MESSAGE_STATUS_REJECTED,
	smsgw.StatusFailed:        smsgwv1.MessageStatus_MESSAGE_STATUS_FAILED,
	smsgw.StatusCancelled:     smsgwv1.MessageStatus_MESSAGE_STATUS_CANCELLED,
}

// statusToProto maps a domain status; an unknown one is UNSPECIFIED.
func statusToProto(s smsgw.Status) smsgwv1.MessageStatus {
	return statusProtos[s]
}
