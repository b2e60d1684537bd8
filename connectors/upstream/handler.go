package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/lifecycle"
)

// MOOffers remembers the single-part MO a connector has not answered
// ESME_ROK, so that the same deliver_sm offered again makes no second
// message while an identical new one does.
type MOOffers interface {
	// OfferMO records an offer and returns the ID to start the message
	// under: an earlier unanswered offer's within window, else id.
	OfferMO(ctx context.Context, key, id string, at time.Time, window time.Duration) (messageID string, again bool, err error)
	// ForgetMOOffer forgets the offer made at once it is answered ESME_ROK.
	ForgetMOOffer(ctx context.Context, key string, at time.Time) error
}

// DefaultMORedeliveryWindow is how long after a refused or unanswered
// deliver_sm an identical one on the same connector is taken for the same
// message offered again.
const DefaultMORedeliveryWindow = 2 * time.Minute

// Handler takes what an upstream SMSC delivers on a connector's binds:
// receipts go to the Matcher, mobile-originated messages to their inbound
// workflows. Each is acknowledged upstream (deliver_sm_resp) only once it
// is durably held.
type Handler struct {
	Matcher  *Matcher
	Temporal client.Client // starts inbound workflows
	// Offers, when set, tells a deliver_sm offered again after a refused or
	// unanswered deliver_sm_resp (the same message) from an identical new
	// one (another message). Without it an identical MO within the inbound
	// dedup window is taken for the same message.
	Offers MOOffers
	// RedeliveryWindow is how long an offer not answered ESME_ROK is
	// remembered (default DefaultMORedeliveryWindow).
	RedeliveryWindow time.Duration
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
// deliver_sm_resp goes upstream only then. A single-part MO is named before
// its start: an offer of it that was refused or left unanswered within the
// redelivery window lends its ID, so the message is started once; else it
// gets a new ID.
func (h *Handler) HandleMO(ctx context.Context, mo smsgw.MO) error {
	again := false
	if key, single := lifecycle.MOOfferKey(h.IDKey, mo); single && h.Offers != nil {
		id, seen, err := h.Offers.OfferMO(ctx, key, lifecycle.NewInboundID(h.IDKey, mo), mo.ReceivedAt, h.window())
		if err != nil {
			return fmt.Errorf("inbound message not taken: %w", err)
		}
		mo.ID, again = id, seen
	}
	id, duplicate, err := lifecycle.StartInbound(ctx, h.Temporal, h.IDKey, mo)
	if err != nil {
		return fmt.Errorf("inbound message not taken: %w", err)
	}
	h.Logger.Info("MO received", "connector", mo.ConnectorID, "id", id, "offered_again", again, "duplicate", duplicate)
	return nil
}

// MOAnswered implements smppclient.MOAnswerWatcher: an MO answered ESME_ROK
// is no longer awaited again, and an identical one after it is a new message.
func (h *Handler) MOAnswered(ctx context.Context, mo smsgw.MO) {
	key, single := lifecycle.MOOfferKey(h.IDKey, mo)
	if !single || h.Offers == nil {
		return
	}
	if err := h.Offers.ForgetMOOffer(ctx, key, mo.ReceivedAt); err != nil {
		h.Logger.Warn("answered MO offer not forgotten; an identical MO within the redelivery window is taken for it", "connector", mo.ConnectorID, "err", err)
	}
}

func (h *Handler) window() time.Duration {
	if h.RedeliveryWindow > 0 {
		return h.RedeliveryWindow
	}
	return DefaultMORedeliveryWindow
}
