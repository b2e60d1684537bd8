package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/admin"
	"github.com/smsgw/smsgw/api"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/connectors/upstream"
	"github.com/smsgw/smsgw/erasure"
	"github.com/smsgw/smsgw/lifecycle"
	"github.com/smsgw/smsgw/notify/webhook"
	"github.com/smsgw/smsgw/routing"
	"github.com/smsgw/smsgw/rules"
	"github.com/smsgw/smsgw/segment"
	"github.com/smsgw/smsgw/store/groupcommit"
	"github.com/smsgw/smsgw/store/mongostore"
	"github.com/smsgw/smsgw/store/mysqlstore"
	"github.com/smsgw/smsgw/worker"
)

// serve runs one role, or all of them, until ctx is done.
func serve(ctx context.Context, role string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	s.register(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkGoroutineStack(s.goroutineStack); err != nil {
		return err
	}
	logger := s.logger(stderr).With("role", role)
	runs := func(r string) bool { return role == "all" || role == r }
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go keepStartingStack(ctx, s.goroutineStack, logger)

	keys, idKey, err := s.protection.check(logger)
	if err != nil {
		return err
	}

	live, err := config.NewLive(s.configPath, logger)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/stack/starting-size:bytes$`)})), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	topts, err := s.temporalOptions(logger)
	if err != nil {
		return err
	}
	if topts.MetricsHandler, err = worker.NewTemporalMetrics(reg); err != nil {
		return err
	}
	tc, err := client.NewLazyClient(topts)
	if err != nil {
		return fmt.Errorf("temporal client: %w", err)
	}
	defer tc.Close()

	batchMetrics, err := groupcommit.NewMetrics(reg)
	if err != nil {
		return err
	}
	batching := groupcommit.Options{MaxBatch: s.storeBatch, MaxWait: s.storeBatchWait, Linger: s.storeBatchLinger, LazyWait: s.storeBatchLazyWait}
	events, err := openWithRetry(ctx, logger, "event store", func(ctx context.Context) (*mongostore.Store, error) {
		return mongostore.Open(ctx, s.mongoURI, s.mongoDatabase, mongostore.WithLogger(logger),
			mongostore.WithGroupCommit(batching, batchMetrics))
	})
	if err != nil {
		return err
	}
	defer events.Close(context.WithoutCancel(ctx))

	// The configuration is kept in the event store: the file bootstraps an
	// empty store, and from then on the stored version is in force on
	// every replica (docs/admin.md).
	configs := admin.New(admin.Options{Store: events, Live: live, Logger: logger.With("component", "configuration"), FileWins: s.configFileWins})
	if err := configs.Start(ctx, live.Config(), s.configPath); err != nil {
		return err
	}
	live.OnFileChange(func(cfg *config.Config) error { return configs.FileChanged(ctx, cfg) })
	go live.Watch(ctx, s.reloadInterval)
	go configs.Run(ctx, s.configPoll)
	mysqlDSN, err := s.reportingDSN()
	if err != nil {
		return err
	}
	reports, err := openWithRetry(ctx, logger, "reporting database", func(ctx context.Context) (*mysqlstore.Store, error) {
		return mysqlstore.Open(ctx, mysqlDSN, mysqlstore.WithGroupCommit(batching, batchMetrics))
	})
	if err != nil {
		return err
	}
	defer reports.Close()

	health := lifecycle.NewHealth(time.Second)
	health.Add("event store", events.Ping)
	health.Add("reporting database", reports.Ping)

	encoder := activities.TextEncoder{
		Refs:    segment.NewMemoryAllocator(0),
		Options: activities.CustomerOptions(live),
		Concat:  activities.ConnectorConcat(live),
	}
	planner := &activities.Planner{Config: live, Routes: routing.NewCache(live), FailoverAfter: s.failoverAfter, Encoder: encoder, Now: time.Now}
	backlog, err := lifecycle.NewBacklog(lifecycle.TemporalBacklog{Client: tc, Namespace: s.temporalNamespace}, reg, logger)
	if err != nil {
		return err
	}
	alerts := &lifecycle.BalanceAlerts{Temporal: tc, Config: live, Logger: logger}
	admitter, keywords, err := wireRules(ctx, live, events, reports, logger, reg)
	if err != nil {
		return err
	}
	// A process that runs message workflows and connectors sends from
	// here what it can, without the connectors' task queues (step 32 in
	// docs/performance.md), when s.sendHere asks for it.
	var here *worker.HereConnectors
	if runs("worker") && runs("connector") && s.sendHere {
		here = worker.NewHereConnectors()
	}
	reader := &lifecycle.Reader{Reports: reports, Temporal: tc, DataConverter: topts.DataConverter}
	submitter := lifecycle.New(lifecycle.Options{
		Temporal: tc, DataConverter: topts.DataConverter, Config: live, Counter: encoder, Planner: planner, Health: health,
		Backlog: backlog, MaxBacklog: s.maxBacklog, Ledger: reports, Alerts: alerts, Admitter: admitter,
		Refusals: reports, Messages: reader,
		EagerStart: runs("worker"), SendHere: here != nil, Logger: logger, Registerer: reg,
	})

	var wg sync.WaitGroup
	var afterDrain []func() // run once every part has stopped
	errs := make(chan error, 16)
	spawn := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}

	// Everything a role needs, for the roles wired in their own files.
	hooks := webhook.New(live, webhook.Options{
		Timeout: s.webhookTimeout,
		Policy:  func() smsgw.WebhookPolicy { return live.Config().WebhookPolicy() },
		Logger:  logger.With("component", "webhook"),
	}, reg)
	hooks.MaxInFlight = s.webhookInFlight
	a := &app{
		settings: s, logger: logger, config: live, registry: reg, temporal: tc,
		events: events, reports: reports, reader: reader, submitter: submitter, spawn: spawn, optOutKeywords: keywords,
		channels: map[string]activities.Channel{smsgw.ChannelWebhook: hooks},
	}
	if err := a.wireInbound(ctx); err != nil {
		return err
	}
	if err := a.wireSMPP(ctx, runs("smpp")); err != nil {
		return err
	}
	spawn("rule counters expiry", func(ctx context.Context) error {
		expireRuleCounters(ctx, reports, 10*time.Minute, logger)
		return nil
	})

	if runs("worker") {
		if err := worker.RegisterSearchAttributes(ctx, tc, s.temporalNamespace); err != nil {
			logger.Warn("search attributes not registered; register them with `smsgw migrate`", "err", err)
		}
		notifications, err := activities.NewNotificationMetrics(reg)
		if err != nil {
			return err
		}
		recent, err := activities.NewRecentDeliveries(10*time.Minute, 100_000, reg)
		if err != nil {
			return err
		}
		acts := &activities.Activities{
			Config:        live,
			Routes:        planner.Routes, // one route table per process
			FailoverAfter: s.failoverAfter,
			Reroutes:      activities.NewReroutesCounter(reg),
			Resends:       activities.NewResendsCounter(reg),
			Events:        events,
			Reports:       reports,
			Encoder:       encoder,
			Channels:      notifications.Wrap(a.channels),
			Recent:        recent,
			Ledger:        reports,
			Balances:      alerts,
			Holds:         reports,
			Logger:        logger,
			Now:           time.Now,
		}
		if here != nil {
			acts.Here = here
		}
		w := worker.MessageWorker{Temporal: tc, Activities: acts, Pollers: s.pollers, LocalActivities: s.localActivities, StopTimeout: s.workerStopTimeout}.New()
		if err := a.registerInbound(w); err != nil {
			return err
		}
		if err := w.Start(); err != nil {
			return fmt.Errorf("start message worker: %w", err)
		}
		defer w.Stop()
		logger.Info("message worker started")
		spawn("running workflows count", func(ctx context.Context) error {
			return worker.CountRunning(ctx, tc, s.temporalNamespace, reg, 30*time.Second, logger)
		})
		purger, err := retentionPurger(live, events, reports, s.retentionBatch, reg, logger)
		if err != nil {
			return err
		}
		spawn("retention purge", func(ctx context.Context) error { purger.Run(ctx, s.retentionInterval); return nil })
		reservations, err := lifecycle.NewReservationReconciler(tc, reports, s.reservationGrace, reg, logger.With("component", "reservations"))
		if err != nil {
			return err
		}
		spawn("reservation reconciler", func(ctx context.Context) error { reservations.Run(ctx, s.reservationInterval); return nil })
	}

	if runs("connector") {
		matcher := upstream.NewMatcher(events, lifecycle.TemporalSignaler{Client: tc}, logger, reg)
		spawn("rematcher", func(ctx context.Context) error { matcher.Rematch(ctx, 30*time.Second, 10*time.Second); return nil })
		matcher.HoldSends(tc) // a one-part message's send may wait for its receipt (a connector's receiptWait)
		// The sends held for receipts complete before the Temporal client
		// closes, and the sends' looks for early receipts end before the
		// stores close.
		afterDrain = append(afterDrain, matcher.ReleaseHeld, matcher.Settle)
		ids := s.connectorIDs()
		for _, id := range ids {
			if _, ok := live.Config().Connector(id); !ok {
				return fmt.Errorf("connector %q is not in the configuration", id)
			}
		}
		connectors := &connectorSupervisor{live: live, only: ids, logger: logger, run: func(ctx context.Context, co config.Connector) error {
			c := &worker.Connector{Config: co, Temporal: tc, Matcher: matcher, Intents: events, Offers: events, Logger: logger, Registry: reg, IDKey: idKey, Handed: backlog.Handed, Here: here}
			return c.Run(ctx)
		}}
		spawn("connectors", connectors.Run)
	}

	if runs("email") {
		if err := a.startEmail(); err != nil {
			return err
		}
	}

	if s.protection.codecAddr != "" {
		spawn("codec server", func(ctx context.Context) error {
			return s.protection.serveCodec(ctx, keys, s.temporalNamespace, logger)
		})
	}

	ready := func(ctx context.Context) error { return health.Check(ctx) }
	metricsLn, err := net.Listen("tcp", s.metricsAddr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	logger.Info("metrics listening", "addr", metricsLn.Addr().String())
	spawn("metrics", func(ctx context.Context) error {
		h := api.OperationsHandler(reg, ready, logger)
		if s.pprof {
			h = withProfiles(h)
		}
		return serveOperations(ctx, metricsLn, h)
	})
	if runs("api") {
		operatorKeyHash, err := operatorKeyHash(s.billingOperatorKey)
		if err != nil {
			return err
		}
		srv, err := api.New(api.Config{GRPCAddr: s.grpcAddr, HTTPAddr: s.httpAddr}, api.Deps{
			Submitter:  submitter,
			Canceller:  submitter,
			Replacer:   submitter,
			Messages:   reader,
			Customers:  live,
			Counter:    encoder,
			Inbound:    a.inboundAPI(),
			Admin:      configs,
			Eraser:     apiEraser{&erasure.Eraser{Reports: reports, Events: events, Temporal: tc, Namespace: s.temporalNamespace, Logger: logger}},
			Traffic:    &api.TrafficDeps{Messages: reports, Events: events, Usage: reports},
			Billing:    &api.BillingDeps{Ledger: reports, Accounts: live, OperatorKeyHash: operatorKeyHash},
			Rules:      &api.RulesDeps{OptOuts: events, Reviewer: submitter, Operators: submitter, Held: reports},
			Ready:      ready,
			Logger:     logger,
			Registerer: reg,
		})
		if err != nil {
			return err
		}
		grpcLn, err := net.Listen("tcp", s.grpcAddr)
		if err != nil {
			return err
		}
		httpLn, err := net.Listen("tcp", s.httpAddr)
		if err != nil {
			return err
		}
		logger.Info("API listening", "grpc", grpcLn.Addr().String(), "http", httpLn.Addr().String())
		spawn("api", func(ctx context.Context) error { return srv.Serve(ctx, grpcLn, httpLn) })
	}

	// Run until asked to stop or until a part fails; either way, stop every
	// part and let the work in flight finish before the stores close.
	var failed error
	select {
	case <-ctx.Done():
	case failed = <-errs:
		logger.Error("stopping: a part failed", "err", failed)
	}
	stop()
	logger.Info("stopping: draining work in flight")
	wg.Wait()
	for _, f := range afterDrain {
		f()
	}
	return failed
}

// app is what every role is built from.
type app struct {
	settings  settings
	logger    *slog.Logger
	config    *config.Live
	registry  *prometheus.Registry
	temporal  client.Client
	events    *mongostore.Store
	reports   *mysqlstore.Store
	reader    *lifecycle.Reader // a message's state, from its row or its workflow
	submitter *lifecycle.Service
	// channels deliver notifications; roles add theirs before the worker starts.
	channels map[string]activities.Channel
	// optOutKeywords turn MO keywords into opt-out list changes.
	optOutKeywords *rules.OptOutKeywords
	// spawn runs a long-lived part of the role until ctx is done.
	spawn func(name string, f func(context.Context) error)
}

// serveOperations serves /metrics, /healthz and /readyz on ln until ctx is done.
func serveOperations(ctx context.Context, ln net.Listener, h http.Handler) error {
	return serveUntilDone(ctx, ln, &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, IdleTimeout: time.Minute})
}

// withProfiles adds Go's profiles under /debug/pprof/ to h.
func withProfiles(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}

// serveUntilDone serves srv on ln until ctx is done, then shuts it down
// (requests in flight get 5 s to finish).
func serveUntilDone(ctx context.Context, ln net.Listener, srv *http.Server) error {
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// openWithRetry opens a store, retrying for up to a minute so that a process
// started together with its databases waits for them.
func openWithRetry[T any](ctx context.Context, logger *slog.Logger, what string, open func(context.Context) (T, error)) (T, error) {
	deadline := time.Now().Add(time.Minute)
	wait := 250 * time.Millisecond
	for {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		v, err := open(octx)
		cancel()
		if err == nil {
			return v, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return v, fmt.Errorf("open %s: %w", what, err)
		}
		logger.Warn("waiting for "+what, "err", err)
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
