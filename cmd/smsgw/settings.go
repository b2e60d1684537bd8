package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/smsgw/smsgw/connectors/smppserver"
	"github.com/smsgw/smsgw/payloadcrypt"
	"github.com/smsgw/smsgw/store/mongostore"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

// settings are what every serving role reads from flags, with defaults from
// SMSGW_* environment variables (the form a Kubernetes Deployment uses).
type settings struct {
	configPath          string
	temporalAddress     string
	temporalNamespace   string
	temporalTLSCert     string
	temporalTLSKey      string
	temporalTLSCA       string
	mongoURI            string
	mongoDatabase       string
	mysqlDSN            string
	mysqlTLSCA          string
	httpAddr            string
	metricsAddr         string
	temporalCompression string
	pprof               bool
	grpcAddr            string
	smtpAddr            string
	smtpTLSCert         string
	smtpTLSKey          string
	smtpTLSReload       time.Duration
	smtpInsecureAuth    bool
	smtpMaxAuth         int
	smppAddr            string
	smppTLSAddr         string
	smppTLSCert         string
	smppTLSKey          string
	smppTLSReload       time.Duration
	smppOutboxTTL       time.Duration
	smppOutboxSweep     time.Duration
	smppEntry           smppserver.Config // the limits on unbound connections and failed binds
	storeBatch          int
	storeBatchLinger    time.Duration
	sendHere            bool
	storeBatchLazyWait  time.Duration
	goroutineStack      int
	storeBatchWait      time.Duration
	connectors          string
	logLevel            string
	logFormat           string
	pollers             int
	localActivities     int
	workerStopTimeout   time.Duration
	webhookTimeout      time.Duration
	webhookInFlight     int
	reloadInterval      time.Duration
	configPoll          time.Duration
	configFileWins      bool
	failoverAfter       time.Duration
	maxBacklog          int
	retentionInterval   time.Duration
	retentionBatch      int
	// reservationGrace and reservationInterval drive the reconciler of
	// prepaid reservations whose message never started (docs/billing.md).
	reservationGrace    time.Duration
	reservationInterval time.Duration
	// billingOperatorKey authorises top-ups over the API: "sha256:<hex>"
	// or, for development, "plain:<key>"; empty disables them.
	billingOperatorKey string
	protection         protection
}

func (s *settings) register(fs *flag.FlagSet, getenv func(string) string) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&s.configPath, "config", env("SMSGW_CONFIG", "config.yaml"), "configuration file (customers, connectors, routes); env SMSGW_CONFIG")
	fs.StringVar(&s.temporalAddress, "temporal-address", env("SMSGW_TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend host:port; env SMSGW_TEMPORAL_ADDRESS")
	fs.StringVar(&s.temporalNamespace, "temporal-namespace", env("SMSGW_TEMPORAL_NAMESPACE", "default"), "Temporal namespace; env SMSGW_TEMPORAL_NAMESPACE")
	fs.StringVar(&s.temporalCompression, "temporal-compression", env("SMSGW_TEMPORAL_COMPRESSION", "gzip"), "compression of requests to Temporal: gzip (saves bandwidth to a remote cluster) or none (saves CPU on both ends when Temporal is near, as in make dev); env SMSGW_TEMPORAL_COMPRESSION")
	fs.StringVar(&s.temporalTLSCert, "temporal-tls-cert", env("SMSGW_TEMPORAL_TLS_CERT", ""), "client certificate (PEM file) for mTLS to Temporal; env SMSGW_TEMPORAL_TLS_CERT")
	fs.StringVar(&s.temporalTLSKey, "temporal-tls-key", env("SMSGW_TEMPORAL_TLS_KEY", ""), "client key (PEM file) for mTLS to Temporal; env SMSGW_TEMPORAL_TLS_KEY")
	fs.StringVar(&s.temporalTLSCA, "temporal-tls-ca", env("SMSGW_TEMPORAL_TLS_CA", ""), "CA certificates (PEM file) to trust for Temporal; env SMSGW_TEMPORAL_TLS_CA")
	fs.StringVar(&s.mongoURI, "mongodb-uri", env("SMSGW_MONGODB_URI", "mongodb://127.0.0.1:27017/"), "event store URI; env SMSGW_MONGODB_URI")
	fs.StringVar(&s.mongoDatabase, "mongodb-database", env("SMSGW_MONGODB_DATABASE", "smsgw"), "event store database; env SMSGW_MONGODB_DATABASE")
	fs.StringVar(&s.mysqlDSN, "mysql-dsn", env("SMSGW_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/smsgw?parseTime=true&loc=UTC"), "reporting database DSN (go-sql-driver form); env SMSGW_MYSQL_DSN")
	fs.StringVar(&s.mysqlTLSCA, "mysql-tls-ca", env("SMSGW_MYSQL_TLS_CA", ""), "CA certificates (PEM file) to verify the reporting database's certificate with; connects over TLS (verified, host name included) when set; env SMSGW_MYSQL_TLS_CA")
	fs.StringVar(&s.httpAddr, "http-addr", env("SMSGW_HTTP_ADDR", ":8080"), "HTTP listen address of REST, /healthz and /readyz (api role); env SMSGW_HTTP_ADDR")
	fs.StringVar(&s.metricsAddr, "metrics-addr", env("SMSGW_METRICS_ADDR", ":9102"), "listen address of /metrics, /healthz and /readyz (every role); keep it off the public network; env SMSGW_METRICS_ADDR")
	fs.BoolVar(&s.pprof, "pprof", false, "also serve Go's profiles (/debug/pprof/) on the metrics address, for measuring where the CPU goes")
	fs.StringVar(&s.grpcAddr, "grpc-addr", env("SMSGW_GRPC_ADDR", ":9090"), "gRPC listen address (api role); env SMSGW_GRPC_ADDR")
	fs.StringVar(&s.smtpAddr, "smtp-addr", env("SMSGW_SMTP_ADDR", ":2525"), "SMTP listen address of email to SMS (email role); env SMSGW_SMTP_ADDR")
	fs.StringVar(&s.smtpTLSCert, "smtp-tls-cert", env("SMSGW_SMTP_TLS_CERT", ""), "PEM certificate (chain) for STARTTLS on the SMTP ingress, read again when it changes; env SMSGW_SMTP_TLS_CERT")
	fs.StringVar(&s.smtpTLSKey, "smtp-tls-key", env("SMSGW_SMTP_TLS_KEY", ""), "PEM private key for STARTTLS on the SMTP ingress; env SMSGW_SMTP_TLS_KEY")
	fs.DurationVar(&s.smtpTLSReload, "smtp-tls-reload", time.Minute, "how often the SMTP TLS certificate and key files are looked at for a renewal")
	fs.BoolVar(&s.smtpInsecureAuth, "smtp-insecure-auth", env("SMSGW_SMTP_INSECURE_AUTH", "") == "true",
		"accept SMTP AUTH without STARTTLS, passwords in the clear: only for loopback or a private network; env SMSGW_SMTP_INSECURE_AUTH=true")
	fs.IntVar(&s.smtpMaxAuth, "smtp-max-auth-attempts", envInt(getenv, "SMSGW_SMTP_MAX_AUTH_ATTEMPTS", 3),
		"failed SMTP AUTHs a connection may make before it is closed; env SMSGW_SMTP_MAX_AUTH_ATTEMPTS")
	fs.StringVar(&s.smppAddr, "smpp-addr", env("SMSGW_SMPP_ADDR", ":2775"), "SMPP listen address (smpp role); env SMSGW_SMPP_ADDR")
	fs.StringVar(&s.smppTLSAddr, "smpp-tls-addr", env("SMSGW_SMPP_TLS_ADDR", ":3550"), "SMPP over TLS listen address, used when -smpp-tls-cert and -smpp-tls-key are set; env SMSGW_SMPP_TLS_ADDR")
	fs.StringVar(&s.smppTLSCert, "smpp-tls-cert", env("SMSGW_SMPP_TLS_CERT", ""), "PEM certificate (chain) of SMPP over TLS, read again when it changes; env SMSGW_SMPP_TLS_CERT")
	fs.StringVar(&s.smppTLSKey, "smpp-tls-key", env("SMSGW_SMPP_TLS_KEY", ""), "PEM private key of SMPP over TLS; env SMSGW_SMPP_TLS_KEY")
	fs.DurationVar(&s.smppTLSReload, "smpp-tls-reload", time.Minute, "how often the SMPP TLS certificate and key files are looked at for a renewal")
	fs.DurationVar(&s.smppOutboxTTL, "smpp-outbox-ttl", envDuration(getenv, "SMSGW_SMPP_OUTBOX_TTL", smppserver.DefaultOutboxTTL), "how long a receipt or MO waits for the customer's receiver bind before it is recorded as a failed notification; env SMSGW_SMPP_OUTBOX_TTL")
	fs.DurationVar(&s.smppOutboxSweep, "smpp-outbox-sweep", envDuration(getenv, "SMSGW_SMPP_OUTBOX_SWEEP", 30*time.Second), "how often the smpp role looks for expired outbox items; env SMSGW_SMPP_OUTBOX_SWEEP")
	s.registerSMPPEntry(fs, getenv)
	fs.IntVar(&s.storeBatch, "store-batch", 200, "most writes of one kind (events, correlations, reporting rows) sent to a store together (group commit)")
	fs.IntVar(&s.goroutineStack, "goroutine-stack", 64<<10, "the stack, in bytes (a power of two), new goroutines should start with: goroutines holding stack are parked until the runtime's average gets there (0: the runtime's own choice)")
	fs.BoolVar(&s.sendHere, "send-here", false, "when this process runs both the message worker and connectors, send a message through a connector it holds bound from the process that runs its workflow, without the connector's task queue; turn it on only once every replica runs a version that knows it, and off (then wait for the messages in flight) before going back to one that does not (docs/operations.md)")
	fs.DurationVar(&s.storeBatchLinger, "store-batch-linger", 2*time.Millisecond, "how long a batch of store writes waits for more when none is in flight but one went in the last 100 ms (0: it goes at once)")
	fs.DurationVar(&s.storeBatchLazyWait, "store-batch-lazy-wait", 50*time.Millisecond, "how long a store operation nobody waits on (the look for receipts that came before their correlation, the record that a notification went out) waits to go with the next batch of that kind")
	fs.DurationVar(&s.storeBatchWait, "store-batch-wait", 2*time.Millisecond, "how long a batch of store writes waits for more while another is in flight")
	fs.StringVar(&s.connectors, "connectors", env("SMSGW_CONNECTORS", ""), "comma-separated connector IDs this process binds (default: all in the configuration); env SMSGW_CONNECTORS")
	fs.StringVar(&s.logLevel, "log-level", env("SMSGW_LOG_LEVEL", "info"), "debug, info, warn or error; env SMSGW_LOG_LEVEL")
	fs.StringVar(&s.logFormat, "log-format", env("SMSGW_LOG_FORMAT", "json"), "json or text; env SMSGW_LOG_FORMAT")
	fs.IntVar(&s.pollers, "pollers", 16, "Temporal task pollers per kind (worker role); half the workflow pollers wait on the worker's sticky queue, where a message's workflow tasks after its eager start go")
	fs.IntVar(&s.localActivities, "local-activities", envInt(getenv, "SMSGW_LOCAL_ACTIVITIES", 500),
		"local activities the worker runs at once: every message's store writes and first notification attempts; env SMSGW_LOCAL_ACTIVITIES")
	fs.DurationVar(&s.workerStopTimeout, "worker-stop-timeout", envDuration(getenv, "SMSGW_WORKER_STOP_TIMEOUT", 15*time.Second),
		"how long the worker role, when stopping, waits for each kind of work it holds to finish, one after the other: workflow tasks with their local activities (webhook calls, store writes), then local activities, then activities; a workflow task cut short runs again on another worker (0: 15 s); env SMSGW_WORKER_STOP_TIMEOUT")
	fs.DurationVar(&s.webhookTimeout, "webhook-timeout", envDuration(getenv, "SMSGW_WEBHOOK_TIMEOUT", 5*time.Second),
		"how long one webhook call may take; env SMSGW_WEBHOOK_TIMEOUT")
	fs.IntVar(&s.webhookInFlight, "webhook-max-in-flight", envInt(getenv, "SMSGW_WEBHOOK_MAX_IN_FLIGHT", 32),
		"webhook calls to one customer in progress at once in this process; more wait to be retried (0: no cap); env SMSGW_WEBHOOK_MAX_IN_FLIGHT")
	fs.StringVar(&s.billingOperatorKey, "billing-operator-key", env("SMSGW_BILLING_OPERATOR_KEY", ""), "the key that authorises top-ups over the API (BillingService.TopUp), as \"sha256:<hex>\" (see `smsgw hash-key`) or, for development, \"plain:<key>\"; empty: top-ups only with `smsgw billing topup`; env SMSGW_BILLING_OPERATOR_KEY")
	fs.IntVar(&s.maxBacklog, "max-backlog", envInt(getenv, "SMSGW_MAX_BACKLOG", 128), "most messages of one customer accepted, due and not yet handed upstream, across replicas; above it submissions are refused (429, RESOURCE_EXHAUSTED, ESME_RTHROTTLED, SMTP 451) until the backlog drains (0: no cap; a customer's maxBacklog overrides it); env SMSGW_MAX_BACKLOG")
	fs.DurationVar(&s.failoverAfter, "failover-after", 30*time.Second, "how long a message waits for a bound connector before the next of its route is tried")
	fs.DurationVar(&s.retentionInterval, "retention-interval", envDuration(getenv, "SMSGW_RETENTION_INTERVAL", time.Hour),
		"how often the worker role purges messages past their customer's retention (docs/retention.md); env SMSGW_RETENTION_INTERVAL")
	fs.IntVar(&s.retentionBatch, "retention-batch", envInt(getenv, "SMSGW_RETENTION_BATCH", 1000),
		"rows or documents the retention purge deletes per statement; env SMSGW_RETENTION_BATCH")
	fs.DurationVar(&s.reservationGrace, "reservation-grace", envDuration(getenv, "SMSGW_RESERVATION_GRACE", 10*time.Minute),
		"how old a prepaid reservation that nothing settled or released must be before the worker role looks for its message's workflow, and releases it when there is none (docs/billing.md); env SMSGW_RESERVATION_GRACE")
	fs.DurationVar(&s.reservationInterval, "reservation-interval", envDuration(getenv, "SMSGW_RESERVATION_INTERVAL", 5*time.Minute),
		"how often the worker role looks for such reservations; env SMSGW_RESERVATION_INTERVAL")
	fs.DurationVar(&s.reloadInterval, "reload-interval", 2*time.Second, "how often the configuration file is checked for changes")
	fs.BoolVar(&s.configFileWins, "config-file-wins", false, "at start, store a configuration file that differs from the stored configuration as a change instead of only reporting it (for development)")
	fs.DurationVar(&s.configPoll, "config-poll", time.Second, "how often the stored configuration's version is checked for changes made on other replicas (docs/admin.md)")
	s.protection.register(fs, env, getenv)
}

// registerSMPPEntry registers the flags of the SMPP server's limits on
// connections that have not bound and on failed binds (docs/security.md).
func (s *settings) registerSMPPEntry(fs *flag.FlagSet, getenv func(string) string) {
	c, b := &s.smppEntry, &s.smppEntry.BindFailures
	fs.DurationVar(&c.FirstPDUTimeout, "smpp-first-pdu-timeout", envDuration(getenv, "SMSGW_SMPP_FIRST_PDU_TIMEOUT", 5*time.Second),
		"close an SMPP connection that has sent no whole PDU by then (TLS handshake included); env SMSGW_SMPP_FIRST_PDU_TIMEOUT")
	fs.IntVar(&c.MaxUnbound, "smpp-max-unbound", envInt(getenv, "SMSGW_SMPP_MAX_UNBOUND", 1024),
		"most SMPP connections not bound yet, in all (-1: no cap); env SMSGW_SMPP_MAX_UNBOUND")
	fs.IntVar(&c.MaxUnboundPerSource, "smpp-max-unbound-per-source", envInt(getenv, "SMSGW_SMPP_MAX_UNBOUND_PER_SOURCE", 32),
		"most SMPP connections not bound yet from one IPv4 address or IPv6 /64 (-1: no cap); env SMSGW_SMPP_MAX_UNBOUND_PER_SOURCE")
	fs.DurationVar(&b.Window, "smpp-bind-failure-window", envDuration(getenv, "SMSGW_SMPP_BIND_FAILURE_WINDOW", 10*time.Minute),
		"how long a failed SMPP bind counts against its source and system_id; env SMSGW_SMPP_BIND_FAILURE_WINDOW")
	fs.IntVar(&b.SlowAfter, "smpp-bind-slow-after", envInt(getenv, "SMSGW_SMPP_BIND_SLOW_AFTER", 5),
		"failed binds of a source or system_id within the window before its binds wait (-1: never); env SMSGW_SMPP_BIND_SLOW_AFTER")
	fs.DurationVar(&b.Delay, "smpp-bind-delay", envDuration(getenv, "SMSGW_SMPP_BIND_DELAY", 500*time.Millisecond),
		"first wait of a bind after repeated failures, doubled by each further one; env SMSGW_SMPP_BIND_DELAY")
	fs.DurationVar(&b.MaxDelay, "smpp-bind-max-delay", envDuration(getenv, "SMSGW_SMPP_BIND_MAX_DELAY", 10*time.Second),
		"longest wait of a bind from a source that failed repeatedly; env SMSGW_SMPP_BIND_MAX_DELAY")
	fs.DurationVar(&b.MaxSystemIDDelay, "smpp-bind-max-delay-system-id", envDuration(getenv, "SMSGW_SMPP_BIND_MAX_DELAY_SYSTEM_ID", 2*time.Second),
		"longest wait of a bind naming a system_id that failed repeatedly (a system_id is never locked out); env SMSGW_SMPP_BIND_MAX_DELAY_SYSTEM_ID")
	fs.IntVar(&b.LockoutAfter, "smpp-bind-lockout-after", envInt(getenv, "SMSGW_SMPP_BIND_LOCKOUT_AFTER", 20),
		"failed binds of a source within the window that lock it out (-1: never); env SMSGW_SMPP_BIND_LOCKOUT_AFTER")
	fs.DurationVar(&b.Lockout, "smpp-bind-lockout", envDuration(getenv, "SMSGW_SMPP_BIND_LOCKOUT", 10*time.Minute),
		"how long a locked-out source's binds are refused unchecked; env SMSGW_SMPP_BIND_LOCKOUT")
}

// envDuration reads a duration from the environment, def when unset or
// unreadable (the flag's own parsing then reports a bad value given there).
func envDuration(getenv func(string) string, name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

// envInt reads an integer from the environment, def when unset or unreadable.
func envInt(getenv func(string) string, name string, def int) int {
	if n, err := strconv.Atoi(getenv(name)); err == nil {
		return n
	}
	return def
}

// logger writes JSON or text records at the chosen level, with secrets,
// message content and phone numbers taken out (see redact).
func (s *settings) logger(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(s.logLevel))
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: redact}
	if s.logFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// reportingDSN is the reporting database's DSN, made to verify the server's
// certificate against -mysql-tls-ca when that is set.
func (s *settings) reportingDSN() (string, error) {
	if s.mysqlTLSCA == "" {
		return s.mysqlDSN, nil
	}
	return mysqlstore.WithTLSCA(s.mysqlDSN, s.mysqlTLSCA)
}

// openStores opens the event store and the reporting database (migrated
// to the schema this binary knows), for the commands that use both; close
// closes them.
func (s *settings) openStores(ctx context.Context, logger *slog.Logger) (events *mongostore.Store, reports *mysqlstore.Store, close func(), err error) {
	events, err = mongostore.Open(ctx, s.mongoURI, s.mongoDatabase, mongostore.WithLogger(logger))
	if err != nil {
		return nil, nil, nil, err
	}
	dsn, err := s.reportingDSN()
	if err == nil {
		reports, err = mysqlstore.Open(ctx, dsn)
	}
	if err != nil {
		events.Close(context.WithoutCancel(ctx))
		return nil, nil, nil, err
	}
	return events, reports, func() {
		reports.Close()
		events.Close(context.WithoutCancel(ctx))
	}, nil
}

func (s *settings) connectorIDs() []string {
	var ids []string
	for _, id := range strings.Split(s.connectors, ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// dialTemporal connects to Temporal with temporalOptions, for the commands
// that need the connection at once.
func (s *settings) dialTemporal(ctx context.Context, logger *slog.Logger) (client.Client, error) {
	topts, err := s.temporalOptions(logger)
	if err != nil {
		return nil, err
	}
	tc, err := client.DialContext(ctx, topts)
	if err != nil {
		return nil, fmt.Errorf("temporal: %w", err)
	}
	return tc, nil
}

// temporalOptions are the Temporal client options: address, namespace, the
// payload codec when payload keys are given, and TLS when a certificate or
// CA is given (Temporal Cloud uses mTLS). Workers built on the client take
// its converters.
func (s *settings) temporalOptions(logger *slog.Logger) (client.Options, error) {
	o := client.Options{
		HostPort:  s.temporalAddress,
		Namespace: s.temporalNamespace,
		Logger:    tlog.NewStructuredLogger(logger.With("component", "temporal")),
	}
	switch s.temporalCompression {
	case "gzip", "":
	case "none":
		o.ConnectionOptions.GrpcCompression = &client.GrpcCompressionNone{}
	default:
		return o, fmt.Errorf("-temporal-compression %q: want gzip or none", s.temporalCompression)
	}
	keys, err := s.protection.keyring()
	if err != nil {
		return o, err
	}
	o.DataConverter, o.FailureConverter = payloadcrypt.Converters(keys)
	if s.temporalTLSCert == "" && s.temporalTLSKey == "" && s.temporalTLSCA == "" {
		return o, nil
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.temporalTLSCert != "" || s.temporalTLSKey != "" {
		cert, err := tls.LoadX509KeyPair(s.temporalTLSCert, s.temporalTLSKey)
		if err != nil {
			return o, fmt.Errorf("temporal TLS client certificate: %w", err)
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	}
	if s.temporalTLSCA != "" {
		pem, err := os.ReadFile(s.temporalTLSCA)
		if err != nil {
			return o, fmt.Errorf("temporal TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return o, fmt.Errorf("temporal TLS CA %s holds no PEM certificate", s.temporalTLSCA)
		}
		tlsCfg.RootCAs = pool
	}
	o.ConnectionOptions.TLS = tlsCfg
	return o, nil
}
