package api

import (
	"context"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	smsgw "github.com/smsgw/smsgw"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// Eraser erases every message to or from a phone number (the erasure
// package's Eraser does, wired by the binary). requestedBy and reason go
// into the erasure's audit record; the record returned is what it did.
// An invalid number is EINVALID; messages still running without
// terminateRunning are ECONFLICT.
type Eraser interface {
	EraseNumber(ctx context.Context, number string, terminateRunning bool, requestedBy, reason string) (smsgw.ErasureRecord, error)
}

// maxReasonLength bounds the reason an erasure records.
const maxReasonLength = 500

func (a *adminService) EraseNumber(ctx context.Context, req *smsgwv1.EraseNumberRequest) (*smsgwv1.EraseNumberResponse, error) {
	if a.eraser == nil {
		return nil, status.Error(codes.Unimplemented, "erasure is not served by this gateway")
	}
	number := strings.TrimSpace(req.GetNumber())
	if number == "" {
		return nil, smsgw.Errorf(smsgw.EINVALID, "number is required, such as +61412345678")
	}
	if len(number) > maxFilterLength || len(req.GetReason()) > maxReasonLength {
		return nil, smsgw.Errorf(smsgw.EINVALID, "number or reason is too long (at most %d and %d characters)", maxFilterLength, maxReasonLength)
	}
	rec, err := a.eraser.EraseNumber(ctx, number, req.GetTerminateRunning(), "admin:"+who(ctx), req.GetReason())
	if err != nil {
		return nil, err
	}
	return &smsgwv1.EraseNumberResponse{
		Id: rec.ID, NumberHash: rec.NumberHash, Messages: int32(rec.Messages), Workflows: int32(rec.Workflows),
		Terminated: int32(rec.Terminated), Deleted: rec.Deleted,
	}, nil
}
