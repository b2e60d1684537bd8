package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/connectors/smppclient"
	"github.com/smsgw/smsgw/connectors/upstream"
	"github.com/smsgw/smsgw/workflows"
)

// Connector holds the binds of one upstream connector and serves its send
// task queue while, and only while, it is bound.
type Connector struct {
	Config   config.Connector
	Temporal client.Client
	Matcher  *upstream.Matcher
	Events   activities.EventStore // keeps MO until inbound routing takes it
	Logger   *slog.Logger
	Registry prometheus.Registerer
}

// Run binds, serves and rebinds until ctx is done; then it stops taking work,
// lets the activities in flight finish, and unbinds.
func (c *Connector) Run(ctx context.Context) error {
	co := c.Config
	logger := c.Logger.With("connector", co.ID)
	bind, err := smppclient.New(smppclient.Config{
		ID:              co.ID,
		Addr:            co.Address,
		SystemID:        co.SystemID,
		Password:        co.Password,
		SystemType:      co.SystemType,
		WindowSize:      co.WindowSize,
		EnquireLink:     co.EnquireLink,
		ResponseTimeout: co.ResponseTimeout,
		ReceiptIDFormat: co.ReceiptIDFormat,
	}, receiptHandler{c.Matcher, c.Events, logger}, logger, c.Registry)
	if err != nil {
		return fmt.Errorf("connector %s: %w", co.ID, err)
	}
	sender := &upstream.Sender{
		ConnectorID: co.ID,
		Bind:        bind,
		Matcher:     c.Matcher,
		Resubmit:    co.InDoubt == "resubmit",
		Logger:      logger,
		Now:         time.Now,
	}

	bindCtx, stopBind := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBind()
	bindDone := make(chan error, 1)
	go func() { bindDone <- bind.Run(bindCtx) }()

	// Poll the send task queue only while bound: unbound, the work waits in
	// Temporal (or goes to another replica that is bound).
	for ctx.Err() == nil {
		if err := bind.WaitBound(ctx); err != nil {
			break
		}
		w := worker.New(c.Temporal, workflows.SendTaskQueue(co.ID), worker.Options{
			MaxConcurrentActivityExecutionSize: max(co.WindowSize, 1) * 2,
			TaskQueueActivitiesPerSecond:       co.TPS,
			WorkerStopTimeout:                  20 * time.Second,
		})
		w.RegisterActivityWithOptions(sender.Send, activity.RegisterOptions{Name: activities.SendName})
		if err := w.Start(); err != nil {
			stopBind()
			return fmt.Errorf("connector %s: start worker: %w", co.ID, err)
		}
		logger.Info("bound; taking work", "task_queue", workflows.SendTaskQueue(co.ID))
		for ctx.Err() == nil && bind.Bound() {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
		w.Stop() // waits for the sends in flight
		if ctx.Err() == nil {
			logger.Warn("unbound; stopped taking work until the bind is back")
		}
	}
	stopBind() // unbind after the last send has its response
	return <-bindDone
}

// receiptHandler passes receipts to the matcher and keeps MO in the event
// store, acknowledged upstream only once it is stored.
type receiptHandler struct {
	matcher *upstream.Matcher
	events  activities.EventStore
	logger  *slog.Logger
}

func (h receiptHandler) HandleReceipt(ctx context.Context, r smsgw.Receipt) error {
	return h.matcher.HandleReceipt(ctx, r)
}

func (h receiptHandler) HandleMO(ctx context.Context, mo smppclient.MO) error {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%s|%x|%d", mo.ConnectorID, mo.From, mo.To, mo.ShortMessage, mo.ReceivedAt.UnixNano()))
	id := "mo-" + hex.EncodeToString(sum[:12])
	h.logger.Info("MO received", "connector", mo.ConnectorID, "id", id)
	return h.events.AppendEvents(ctx, smsgw.Event{
		ID: id + ":received", MessageID: id, Seq: 1, Type: "mo_received", At: mo.ReceivedAt.UTC(),
		Data: map[string]any{
			"connector": mo.ConnectorID, "from": mo.From, "to": mo.To,
			"dataCoding": int(mo.DataCoding), "esmClass": int(mo.ESMClass), "shortMessage": hex.EncodeToString(mo.ShortMessage),
		},
	})
}

