// Package retention purges messages older than their customer's retention
// period from the event store and the reporting database, in small batches,
// on a timer. docs/retention.md says why it is a purge rather than TTL
// indexes, which role runs it, and why two replicas running it at once is
// safe (every pass deletes what is older than a cutoff; a row deleted by
// the other replica is simply not found again).
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw/internal/promreg"
)

// Target is one store the purge deletes from.
type Target struct {
	Name string // a metric label: "events", "reporting"
	// Customers lists the customers that have data in the store.
	Customers func(ctx context.Context) ([]string, error)
	// Purge deletes a customer's data older than before, batch at a time,
	// and returns how much it deleted.
	Purge func(ctx context.Context, customerID string, before time.Time, batch int) (int64, error)
}

// Policy returns how long a customer's messages are kept; forever true
// keeps them for ever. (config.Config's RetentionFor, read on each pass so a
// reload applies at once.)
type Policy func(customerID string) (keep time.Duration, forever bool)

// Purger runs the purge.
type Purger struct {
	Targets []Target
	Policy  Policy
	Batch   int // rows or documents per delete; 1000 when zero
	Logger  *slog.Logger
	Now     func() time.Time
	purged  *prometheus.CounterVec
	passes  *prometheus.CounterVec
}

// NewPurger returns a purger whose metrics are registered on reg:
// smsgw_retention_purged_total{store} and
// smsgw_retention_passes_total{store,outcome}.
func NewPurger(targets []Target, policy Policy, reg prometheus.Registerer, logger *slog.Logger) (*Purger, error) {
	purged, err := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smsgw_retention_purged_total",
		Help: "Documents and rows deleted by the retention purge, per store.",
	}, []string{"store"}))
	if err != nil {
		return nil, err
	}
	passes, err := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smsgw_retention_passes_total",
		Help: "Retention purge passes over a store, by outcome (ok, error).",
	}, []string{"store", "outcome"}))
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	for _, t := range targets {
		purged.WithLabelValues(t.Name)
		passes.WithLabelValues(t.Name, "ok")
		passes.WithLabelValues(t.Name, "error")
	}
	return &Purger{Targets: targets, Policy: policy, Logger: logger, Now: time.Now, purged: purged, passes: passes}, nil
}

// Metrics returns smsgw_retention_purged_total, by store.
func (p *Purger) Metrics() *prometheus.CounterVec { return p.purged }

// PurgeOnce makes one pass over every store and returns how much it
// deleted per store. A store that fails is reported, and the others are
// still purged.
func (p *Purger) PurgeOnce(ctx context.Context) (map[string]int64, error) {
	now := p.Now()
	out := map[string]int64{}
	var firstErr error
	for _, t := range p.Targets {
		n, err := p.purgeTarget(ctx, t, now)
		out[t.Name] = n
		p.purged.WithLabelValues(t.Name).Add(float64(n))
		if err != nil {
			p.passes.WithLabelValues(t.Name, "error").Inc()
			if firstErr == nil {
				firstErr = fmt.Errorf("retention: %s: %w", t.Name, err)
			}
			continue
		}
		p.passes.WithLabelValues(t.Name, "ok").Inc()
	}
	return out, firstErr
}

func (p *Purger) purgeTarget(ctx context.Context, t Target, now time.Time) (int64, error) {
	customers, err := t.Customers(ctx)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, c := range customers {
		keep, forever := p.Policy(c)
		if forever {
			continue
		}
		n, err := t.Purge(ctx, c, now.Add(-keep), p.Batch)
		total += n
		if err != nil {
			return total, fmt.Errorf("customer %s: %w", c, err)
		}
	}
	return total, nil
}

// Run purges every interval until ctx is done, logging what each pass
// deleted and what failed.
func (p *Purger) Run(ctx context.Context, interval time.Duration) {
	for {
		n, err := p.PurgeOnce(ctx)
		if err != nil && ctx.Err() == nil {
			p.Logger.Warn("retention purge failed; it is tried again at the next pass", "err", err, "interval", interval)
		}
		for store, k := range n {
			if k > 0 {
				p.Logger.Info("retention purge", "store", store, "deleted", k)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
