package lifecycle

import (
	"context"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/workflows"
)

// Reader answers a message's state from the reporting database, and for a
// message so new that its row is not written yet, from its workflow.
type Reader struct {
	Reports  smsgw.MessageReader
	Temporal client.Client
}

// GetMessage implements smsgw.MessageReader.
func (r *Reader) GetMessage(ctx context.Context, id string) (smsgw.MessageRecord, error) {
	rec, err := r.Reports.GetMessage(ctx, id)
	if smsgw.ErrorCode(err) != smsgw.ENOTFOUND {
		return rec, err
	}
	if !validID(id) {
		return smsgw.MessageRecord{}, err
	}
	desc, derr := r.Temporal.DescribeWorkflowExecution(ctx, id, "")
	if derr != nil {
		return smsgw.MessageRecord{}, err
	}
	info := desc.GetWorkflowExecutionInfo()
	sa := info.GetSearchAttributes().GetIndexedFields()
	var customer, status string
	if p, ok := sa[workflows.SearchCustomerID.GetName()]; ok {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &customer)
	}
	if p, ok := sa[workflows.SearchMessageStatus.GetName()]; ok {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &status)
	}
	if customer == "" {
		return smsgw.MessageRecord{}, err
	}
	return smsgw.MessageRecord{
		ID:         id,
		CustomerID: customer,
		Status:     smsgw.Status(status),
		AcceptedAt: info.GetStartTime().AsTime(),
		UpdatedAt:  info.GetStartTime().AsTime(),
	}, nil
}

func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
