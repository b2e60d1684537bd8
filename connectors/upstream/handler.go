package upstream

import (
	"context"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/lifecycle"
)

// Handler takes what an upstream SMSC delivers on a connector's binds:
// receipts go to the Matcher, mobile-originated messages to their inbound
// workflows. Each is acknowledged upstream (deliver_sm_resp) only once it
// is durably held.
type Handler struct {
	Matcher  *Matcher
	Temporal client.Client // starts inbound workflows
	// IDKey keys the hash that names inbound workflows after the numbers
	// (lifecycle.StartInbound).
	IDKey  []byte
	Logger *slog.Logger
}

// HandleReceipt implements smppclient.Handler.
func (h *Handler) HandleReceipt(ctx context.Context, r smsgw.Receipt) error {
	return h.Matcher.HandleReceipt(ctx, r)
}

// HandleMO starts the workflow of a mobile-originated message (or signals a
// part to its reassembly) and returns once Temporal holds it, so
// deliver_sm_resp goes upstream only then. A deliver_sm delivered again
// within the dedup window is acknowledged without a second message.
func (h *Handler) HandleMO(ctx context.Context, mo smsgw.MO) error {
	id, duplicate, err := lifecycle.StartInbound(ctx, h.Temporal, h.IDKey, mo)
	if err != nil {
		return fmt.Errorf("inbound message not taken: %w", err)
	}
	h.Logger.Info("MO received", "connector", mo.ConnectorID, "id", id, "duplicate", duplicate)
	return nil
}
