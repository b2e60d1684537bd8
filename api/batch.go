package api

import (
	"context"
	"errors"
	"sync"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	smsgw "github.com/smsgw/smsgw"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// MaxBatchSize is the most messages one SubmitMessages call may carry.
const MaxBatchSize = 1000

// DefaultBatchWorkers is how many items of one batch are submitted at once
// when Config.BatchWorkers is zero.
const DefaultBatchWorkers = 16

// SubmitMessages submits each item as SubmitMessage would, a bounded number
// at a time, and answers with a result per item. Only a malformed batch (no
// items, too many, an Idempotency-Key header that could name only one of
// them) fails the call.
func (s *messageService) SubmitMessages(ctx context.Context, req *smsgwv1.SubmitMessagesRequest) (*smsgwv1.SubmitMessagesResponse, error) {
	cust, ok := CustomerFromContext(ctx)
	if !ok {
		return nil, smsgw.Errorf(smsgw.EUNAUTHORIZED, "not authenticated")
	}
	items := req.GetMessages()
	switch {
	case len(items) == 0:
		return nil, smsgw.Errorf(smsgw.EINVALID, "messages is empty: a batch has 1 to %d messages", MaxBatchSize)
	case len(items) > MaxBatchSize:
		return nil, smsgw.Errorf(smsgw.EINVALID, "the batch has %d messages, at most %d are allowed", len(items), MaxBatchSize)
	}
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(idempotencyKeyMD)) > 0 {
		return nil, smsgw.Errorf(smsgw.EINVALID, "the Idempotency-Key header does not apply to a batch: give each message its idempotencyKey")
	}

	results := make([]*smsgwv1.SubmitMessageResult, len(items))
	sem := make(chan struct{}, max(1, s.batchWorkers))
	var wg sync.WaitGroup
	for i, item := range items {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = s.submitItem(ctx, cust.ID, i, item)
		}()
	}
	wg.Wait()
	return &smsgwv1.SubmitMessagesResponse{Results: results}, nil
}

// submitItem submits one item of a batch and describes what became of it.
func (s *messageService) submitItem(ctx context.Context, customerID string, i int, item *smsgwv1.SubmitMessageRequest) *smsgwv1.SubmitMessageResult {
	res := &smsgwv1.SubmitMessageResult{Index: int32(i)}
	key := item.GetIdempotencyKey()
	if key != "" && !smsgw.ValidIdempotencyKey(key) {
		st := status.Newf(codes.InvalidArgument, "the idempotency key must be 1 to %d printable ASCII characters", smsgw.MaxIdempotencyKeyLength)
		res.ErrorCode, res.ErrorMessage = grpcCodeName(st.Code()), st.Message()
		return res
	}
	acc, err := s.submit(ctx, customerID, item, key)
	if err == nil {
		res.Accepted = acc
		return res
	}
	st := s.itemStatus(ctx, i, err)
	res.ErrorCode, res.ErrorMessage, res.ErrorReason = grpcCodeName(st.Code()), st.Message(), statusReason(st)
	return res
}

// statusReason is the reason of a status's ErrorInfo detail: the one a
// policy's refusal carries, as a single submission answers it; "" when it
// has none.
func statusReason(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// itemStatus is the status an item's error would have had alone: a domain
// error's code and customer-safe message, or a logged Internal.
func (s *messageService) itemStatus(ctx context.Context, i int, err error) *status.Status {
	var domain *smsgw.Error
	if errors.As(err, &domain) {
		if st, ok := domainStatus(domain); ok {
			return st
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.New(codes.Canceled, "request canceled")
	}
	s.log.ErrorContext(ctx, "api internal error in a batch item", "index", i, "err", err)
	return status.New(codes.Internal, "internal error")
}

// grpcCodeName is a code as the gRPC specification spells it
// (INVALID_ARGUMENT), which is how the REST error body's clients know it.
func grpcCodeName(c codes.Code) string {
	if name, ok := codeNames[c]; ok {
		return name
	}
	return "UNKNOWN"
}

var codeNames = map[codes.Code]string{
	codes.Canceled:           "CANCELLED",
	codes.InvalidArgument:    "INVALID_ARGUMENT",
	codes.Unauthenticated:    "UNAUTHENTICATED",
	codes.NotFound:           "NOT_FOUND",
	codes.AlreadyExists:      "ALREADY_EXISTS",
	codes.Unavailable:        "UNAVAILABLE",
	codes.ResourceExhausted:  "RESOURCE_EXHAUSTED",
	codes.PermissionDenied:   "PERMISSION_DENIED",
	codes.FailedPrecondition: "FAILED_PRECONDITION",
	codes.DeadlineExceeded:   "DEADLINE_EXCEEDED",
	codes.Internal:           "INTERNAL",
}
