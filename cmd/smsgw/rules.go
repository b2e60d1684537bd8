package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/rules"
	"github.com/smsgw/smsgw/store/mongostore"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

// wireRules builds the admission rules every submission passes (the
// opt-out list in the event store, the velocity and traffic counters in
// the reporting database, both shared by every replica) and the handler
// of opt-out keywords in inbound messages.
func wireRules(ctx context.Context, live *config.Live, events *mongostore.Store, reports *mysqlstore.Store, logger *slog.Logger, reg prometheus.Registerer) (*rules.Engine, *rules.OptOutKeywords, error) {
	if err := events.CreateRulesIndexes(ctx); err != nil {
		return nil, nil, err
	}
	engine, err := rules.New(rules.Options{Config: live, OptOuts: events, Counters: reports, Logger: logger.With("component", "rules"), Registerer: reg})
	if err != nil {
		return nil, nil, err
	}
	keywords, err := rules.NewOptOutKeywords(live, events, reg)
	if err != nil {
		return nil, nil, err
	}
	return engine, keywords, nil
}

// expireRuleCounters removes expired velocity and traffic counts every
// interval until ctx is done. Every replica runs it; the deletes are
// idempotent.
func expireRuleCounters(ctx context.Context, reports *mysqlstore.Store, interval time.Duration, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n, err := reports.ExpireRuleCounters(ctx, now); err != nil {
				logger.Warn("rule counters not expired", "err", err)
			} else if n > 0 {
				logger.Debug("rule counters expired", "removed", n)
			}
		}
	}
}
