package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/workflows"
)

// TemporalSignaler signals message workflows through a Temporal client. A
// receipt for a message whose workflow has ended is a late duplicate:
// SignalReceipt then answers smsgw.ErrMessageEnded.
type TemporalSignaler struct{ Client client.Client }

// SignalReceipt implements Signaler.
func (t TemporalSignaler) SignalReceipt(ctx context.Context, messageID string, s workflows.ReceiptSignal) error {
	err := t.Client.SignalWorkflow(ctx, messageID, "", workflows.SignalReceipt, s)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return fmt.Errorf("signal receipt to %s: %w", messageID, smsgw.ErrMessageEnded)
	}
	if err != nil {
		return fmt.Errorf("signal receipt to %s: %w", messageID, err)
	}
	return nil
}
