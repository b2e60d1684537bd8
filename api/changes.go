package api

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	smsgw "github.com/smsgw/smsgw"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// CancelMessage withdraws a message not yet sent, through the same workflow
// update as SMPP cancel_sm.
func (s *messageService) CancelMessage(ctx context.Context, req *smsgwv1.CancelMessageRequest) (*smsgwv1.CancelMessageResponse, error) {
	cust, ok := CustomerFromContext(ctx)
	if !ok {
		return nil, smsgw.Errorf(smsgw.EUNAUTHORIZED, "not authenticated")
	}
	if s.canceller == nil {
		return nil, status.Error(codes.Unimplemented, "cancelling is not available")
	}
	if err := checkID(req.GetId()); err != nil {
		return nil, err
	}
	if err := s.canceller.Cancel(ctx, cust.ID, req.GetId()); err != nil {
		return nil, changeError(err)
	}
	return &smsgwv1.CancelMessageResponse{}, nil
}

// ReplaceMessage changes the text, the schedule or both of a message not yet
// sent, through the same workflow update as SMPP replace_sm.
func (s *messageService) ReplaceMessage(ctx context.Context, req *smsgwv1.ReplaceMessageRequest) (*smsgwv1.ReplaceMessageResponse, error) {
	cust, ok := CustomerFromContext(ctx)
	if !ok {
		return nil, smsgw.Errorf(smsgw.EUNAUTHORIZED, "not authenticated")
	}
	if s.replacer == nil {
		return nil, status.Error(codes.Unimplemented, "replacing is not available")
	}
	if err := checkID(req.GetId()); err != nil {
		return nil, err
	}
	at, err := scheduleTime("scheduleAt", req.GetScheduleAt())
	if err != nil {
		return nil, err
	}
	if req.GetText() == "" && at.IsZero() {
		return nil, smsgw.Errorf(smsgw.EINVALID, "text or scheduleAt is required")
	}
	if err := s.replacer.Replace(ctx, cust.ID, req.GetId(), req.GetText(), at); err != nil {
		return nil, changeError(err)
	}
	return &smsgwv1.ReplaceMessageResponse{}, nil
}

// changeError answers a change refused because the message is already on
// its way or final (ECONFLICT) with FAILED_PRECONDITION, which REST answers
// 409: the request was fine, the message's state does not allow it.
func changeError(err error) error {
	if smsgw.ErrorCode(err) == smsgw.ECONFLICT {
		return status.Error(codes.FailedPrecondition, smsgw.ErrorMessage(err))
	}
	return err
}
