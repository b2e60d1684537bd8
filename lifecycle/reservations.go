package lifecycle

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/promreg"
)

// Reservations whose message never started. A prepaid message is reserved
// for before its workflow starts (billing.go). When the start fails for
// good the Submitter releases the reservation at once; when the start is
// never answered the submission is answered EUNKNOWN, and the Submitter
// cannot tell whether the workflow exists, so it leaves the reservation
// held. The reconciler closes that gap: a reservation older than a grace
// period that nothing has closed, whose message workflow Temporal does not
// know, is released through the ledger. The release is the message's
// close step, so it is made once however many replicas find the same
// reservation, and a workflow that did start settles or releases its own
// message (the grace period is far longer than a workflow start can be in
// flight).

// OpenReservations lists reservations that no close step has lifted
// (mysqlstore.Store's OpenReservations).
type OpenReservations interface {
	// OpenReservations lists those made from since (zero: the oldest)
	// until before, oldest first, after the reservation after (the zero
	// Movement: from the oldest).
	OpenReservations(ctx context.Context, since, before time.Time, after smsgw.Movement, limit int) ([]smsgw.Movement, error)
	CloseMessage(ctx context.Context, customerID, currency, messageID, kind string, charge int64, segments int, at time.Time) (smsgw.Movement, error)
}

// ReservationReconciler releases reservations of messages whose workflow
// never started.
type ReservationReconciler struct {
	Temporal client.Client
	Ledger   OpenReservations
	// Grace is how old an open reservation must be before its workflow is
	// looked for.
	Grace time.Duration
	// Batch is how many open reservations are read at a time (500 when zero).
	Batch int
	// Window bounds Run's passes to the reservations made in it (older
	// ones were looked at by earlier passes), except for a pass over every
	// reservation when Run starts and every FullEvery. Defaults 24h and 24h.
	Window, FullEvery time.Duration
	Logger            *slog.Logger
	Now               func() time.Time

	released prometheus.Counter
	passes   *prometheus.CounterVec
}

// NewReservationReconciler returns a reconciler whose metrics are
// registered on reg: smsgw_billing_orphan_reservations_released_total and
// smsgw_billing_reservation_passes_total{outcome}.
func NewReservationReconciler(tc client.Client, ledger OpenReservations, grace time.Duration, reg prometheus.Registerer, logger *slog.Logger) (*ReservationReconciler, error) {
	released, err := promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "smsgw_billing_orphan_reservations_released_total",
		Help: "Prepaid reservations released because their message's workflow never started.",
	}))
	if err != nil {
		return nil, err
	}
	passes, err := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smsgw_billing_reservation_passes_total",
		Help: "Passes of the reservation reconciler, by outcome (ok, error).",
	}, []string{"outcome"}))
	if err != nil {
		return nil, err
	}
	passes.WithLabelValues("ok")
	passes.WithLabelValues("error")
	if logger == nil {
		logger = slog.Default()
	}
	return &ReservationReconciler{Temporal: tc, Ledger: ledger, Grace: grace, Logger: logger, Now: time.Now, released: released, passes: passes}, nil
}

// Run makes a pass every interval until ctx is done: over every open
// reservation when it starts and every FullEvery, else over those of the
// last Window. A reservation a windowed pass left because its workflow
// existed is settled or released by that workflow; one whose workflow went
// away without closing it (terminated, then deleted) is found by a full
// pass.
func (r *ReservationReconciler) Run(ctx context.Context, interval time.Duration) {
	window, fullEvery := cmp.Or(r.Window, 24*time.Hour), cmp.Or(r.FullEvery, 24*time.Hour)
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastFull time.Time
	for {
		now := r.Now()
		since := now.Add(-window)
		if now.Sub(lastFull) >= fullEvery {
			since = time.Time{}
		}
		_, err := r.ReconcileSince(ctx, since)
		switch {
		case err != nil && ctx.Err() == nil:
			r.Logger.Warn("reservation reconciliation pass failed; the next pass tries again", "err", err)
		case err == nil && since.IsZero():
			lastFull = now
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ReconcileOnce looks at every open reservation older than the grace
// period and releases those whose workflow does not exist. It returns the
// reservations this pass released (a release another replica made first
// is not among them).
func (r *ReservationReconciler) ReconcileOnce(ctx context.Context) ([]smsgw.Movement, error) {
	return r.ReconcileSince(ctx, time.Time{})
}

// ReconcileSince is ReconcileOnce for the reservations made from since.
func (r *ReservationReconciler) ReconcileSince(ctx context.Context, since time.Time) (released []smsgw.Movement, err error) {
	defer func() {
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		if r.passes != nil {
			r.passes.WithLabelValues(outcome).Inc()
		}
	}()
	batch := r.Batch
	if batch <= 0 {
		batch = 500
	}
	before := r.Now().UTC().Add(-r.Grace)
	var after smsgw.Movement
	for {
		open, err := r.Ledger.OpenReservations(ctx, since, before, after, batch)
		if err != nil {
			return released, fmt.Errorf("open reservations: %w", err)
		}
		for _, m := range open {
			mv, err := r.reconcile(ctx, m)
			if err != nil {
				return released, err
			}
			if mv.New {
				released = append(released, mv)
			}
		}
		if len(open) < batch {
			return released, nil
		}
		after = open[len(open)-1]
	}
}

// reconcile releases one open reservation if its workflow does not exist.
func (r *ReservationReconciler) reconcile(ctx context.Context, m smsgw.Movement) (smsgw.Movement, error) {
	_, err := r.Temporal.DescribeWorkflowExecution(ctx, m.Key, "")
	var notFound *serviceerror.NotFound
	switch {
	case err == nil:
		return smsgw.Movement{}, nil // the workflow settles or releases it
	case !errors.As(err, &notFound):
		return smsgw.Movement{}, fmt.Errorf("look for the workflow of message %s: %w", m.Key, err)
	}
	mv, err := r.Ledger.CloseMessage(ctx, m.CustomerID, m.Currency, m.Key, smsgw.MoveRelease, 0, 0, r.Now().UTC())
	if err != nil {
		return smsgw.Movement{}, fmt.Errorf("release the reservation of message %s: %w", m.Key, err)
	}
	if mv.New {
		if r.released != nil {
			r.released.Inc()
		}
		r.Logger.Info("reservation released: its message's workflow never started",
			"customer", m.CustomerID, "message", m.Key, "currency", m.Currency, "amount", smsgw.FormatMicros(m.Reserved), "reservedAt", m.At)
	}
	return mv, nil
}
