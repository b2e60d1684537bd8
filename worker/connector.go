package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/connectors/smppclient"
	"github.com/smsgw/smsgw/connectors/upstream"
	"github.com/smsgw/smsgw/workflows"
)

// Connector holds the binds of one upstream connector and serves its send
// task queue while, and only while, at least one session that can submit is
// bound.
type Connector struct {
	Config   config.Connector
	Temporal client.Client
	Matcher  *upstream.Matcher
	// Intents records each part's submission before its submit_sm.
	Intents upstream.Intents
	// Offers remembers the MO not answered yet, to know one offered again.
	Offers   upstream.MOOffers
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// IDKey keys the hash that names inbound workflows (lifecycle.StartInbound).
	IDKey []byte
	// Handed, when set, is told of each message sent upstream
	// (lifecycle.Backlog.Handed).
	Handed func(messageID string)
	// Here, when set, lets the message workflows of this process send
	// through the connector without its task queue while it is bound,
	// unless the connector has a tps.
	Here *HereConnectors
}

// ClientConfig turns a connector's configuration into the SMPP client's.
func ClientConfig(co config.Connector) (smppclient.Config, error) {
	tlsConfig, err := co.TLSConfig()
	if err != nil {
		return smppclient.Config{}, err
	}
	return smppclient.Config{
		ID:              co.ID,
		Addr:            co.Address,
		SystemID:        co.SystemID,
		Password:        co.Password,
		SystemType:      co.SystemType,
		BindMode:        co.BindMode, // config and smppclient name the modes alike
		Binds:           co.Binds,
		TLS:             tlsConfig,
		TPS:             co.TPS,
		WindowSize:      co.WindowSize,
		EnquireLink:     co.EnquireLink,
		ResponseTimeout: co.ResponseTimeout,
		RebindMin:       co.RebindMin,
		RebindMax:       co.RebindMax,
		ReceiptIDFormat: co.ReceiptIDFormat,
		SubmitIDFormat:  co.SubmitIDFormat,
	}, nil
}

// Run binds, serves and rebinds until ctx is done. Then it stops taking
// work, lets the sends in flight finish (each submit_sm in a window gets its
// response), unbinds every session and returns.
func (c *Connector) Run(ctx context.Context) error {
	co := c.Config
	logger := c.Logger.With("connector", co.ID)
	cc, err := ClientConfig(co)
	if err != nil {
		return fmt.Errorf("connector %s: %w", co.ID, err)
	}
	bind, err := smppclient.New(cc, &upstream.Handler{
		Matcher: c.Matcher, Temporal: c.Temporal, Offers: c.Offers, RedeliveryWindow: co.MORedeliveryWindow, IDKey: c.IDKey, Logger: logger,
	}, logger, c.Registry)
	if err != nil {
		return fmt.Errorf("connector %s: %w", co.ID, err)
	}
	resubmits, err := upstream.NewResubmitsCounter(c.Registry)
	if err != nil {
		return fmt.Errorf("connector %s: %w", co.ID, err)
	}
	sender := &upstream.Sender{
		Connector: co,
		Bind:      bind,
		Matcher:   c.Matcher,
		Intents:   c.Intents,
		Resubmits: resubmits,
		Handed:    c.Handed,
		Logger:    logger,
		Now:       time.Now,
	}

	// The binds outlive ctx: they unbind only after the last send in flight
	// has its response.
	bindCtx, stopBind := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBind()
	bindDone := make(chan error, 1)
	go func() { bindDone <- bind.Run(bindCtx) }()

	window := co.WindowSize
	if window == 0 {
		window = 10 // the SMPP client's default
	}
	// Poll the send task queue only while bound: each poll waits for a slot,
	// and slots are handed out only while a session that can submit is
	// bound. Unbound, the work waits in Temporal (or goes to a replica that
	// is bound, or, after the route's failover time, to the next connector).
	// The worker is not stopped when the bind drops: stopping cancels the
	// polls in flight, and a task the server hands to a cancelled poll is
	// lost until its heartbeat timeout. A poll already waiting when the
	// bind drops may still take one send, which fails at once as not bound
	// and goes back to the queue.
	slots := &boundSlots{bind: bind, free: make(chan struct{}, 2*window*max(co.Binds, 1))}
	unused, err := worker.NewFixedSizeSlotSupplier(1) // the worker runs no workflows and no local activities
	if err != nil {
		stopBind()
		<-bindDone
		return fmt.Errorf("connector %s: %w", co.ID, err)
	}
	tuner, err := worker.NewCompositeTuner(worker.CompositeTunerOptions{
		WorkflowSlotSupplier:      unused,
		ActivitySlotSupplier:      slots,
		LocalActivitySlotSupplier: unused,
		NexusSlotSupplier:         unused,
	})
	if err != nil {
		stopBind()
		<-bindDone
		return fmt.Errorf("connector %s: %w", co.ID, err)
	}
	w := worker.New(c.Temporal, workflows.SendTaskQueue(co.ID), worker.Options{
		Tuner:                            tuner,
		MaxConcurrentActivityTaskPollers: sendPollers(cap(slots.free)),
		TaskQueueActivitiesPerSecond:     co.TPS,
		WorkerStopTimeout:                max(20*time.Second, 2*co.ResponseTimeout),
	})
	activities.RegisterSend(w, sender.Send)
	if err := w.Start(); err != nil {
		stopBind()
		<-bindDone
		return fmt.Errorf("connector %s: start worker: %w", co.ID, err)
	}
	// A connector with a tps sends only what its task queue hands out:
	// Temporal's rate limit on the queue is what holds every replica
	// together to it.
	notHere := func() {}
	if c.Here != nil && co.TPS == 0 {
		// Slots of their own, as many as the windows hold: the queue's
		// idle polls each hold one of the worker's.
		here := &boundSlots{bind: bind, free: make(chan struct{}, window*max(co.Binds, 1))}
		notHere = c.Here.add(co.ID, sender.Send, here)
	}
	go func() {
		for ctx.Err() == nil {
			if bind.WaitBound(ctx) != nil {
				return
			}
			logger.Info("bound; taking work", "task_queue", workflows.SendTaskQueue(co.ID), "sessions", bind.BoundSessions())
			select {
			case <-ctx.Done():
				return
			case <-bind.Lost():
				logger.Warn("unbound; taking no work until a bind is back")
			}
		}
	}()
	<-ctx.Done()
	notHere() // no more sends from here; those in flight end
	w.Stop()  // stops polling, then waits for the sends in flight
	logger.Info("stopping: work in flight done; unbinding")
	stopBind() // each session drains its window, then unbinds
	return <-bindDone
}

// sendPollers is how many polls a connector's worker keeps waiting on its
// send task queue: enough that a send meets a waiting poll instead of being
// written to Temporal's task tables and read back (with 4 polls for a
// window of 50, one send in ten was, and waited about 100 ms), and no more
// than its slots, since each poll waits for a slot first. The polls already
// waiting when a bind drops may each take one send, which fails at once as
// not bound and is retried: never sent, never lost.
func sendPollers(slots int) int {
	return max(1, min(16, slots))
}

// boundSlots hands out the activity slots of a connector's worker, as many
// as its windows hold twice over, and only while the connector is bound.
// The worker polls for a task only with a slot in hand.
type boundSlots struct {
	bind *smppclient.Client
	free chan struct{} // one token per slot in use
}

// ReserveSlot implements worker.SlotSupplier: it waits for a bind and a free slot.
func (s *boundSlots) ReserveSlot(ctx context.Context, _ worker.SlotReservationInfo) (*worker.SlotPermit, error) {
	for {
		if err := s.bind.WaitBound(ctx); err != nil {
			return nil, ctx.Err()
		}
		lost := s.bind.Lost()
		select {
		case s.free <- struct{}{}:
			if s.bind.Bound() {
				return &worker.SlotPermit{}, nil
			}
			<-s.free // the bind dropped meanwhile
		case <-lost:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// TryReserveSlot implements worker.SlotSupplier. It is asked only for eager
// tasks, which a connector does not take.
func (s *boundSlots) TryReserveSlot(worker.SlotReservationInfo) *worker.SlotPermit { return nil }

// MarkSlotUsed implements worker.SlotSupplier.
func (s *boundSlots) MarkSlotUsed(worker.SlotMarkUsedInfo) {}

// ReleaseSlot implements worker.SlotSupplier.
func (s *boundSlots) ReleaseSlot(worker.SlotReleaseInfo) { s.release() }

// tryTake takes a slot for a send made here (HereConnectors), when one is
// free and a session that can submit is bound, without waiting.
func (s *boundSlots) tryTake() bool {
	select {
	case s.free <- struct{}{}:
		if s.bind.Bound() {
			return true
		}
		<-s.free
	default:
	}
	return false
}

// release gives a slot back.
func (s *boundSlots) release() { <-s.free }

// MaxSlots implements worker.SlotSupplier.
func (s *boundSlots) MaxSlots() int { return cap(s.free) }
