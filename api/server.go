// Package api is the gateway's customer-facing edge: the gRPC MessageService,
// and REST through a grpc-gateway mux that calls the same gRPC server over an
// in-process connection, so both entry points pass through one interceptor
// chain (panic recovery, logging, metrics, API-key authentication, error
// mapping). The HTTP listener also serves /healthz and /readyz; metrics are
// served by OperationsHandler on a listener of their own.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	smsgw "github.com/smsgw/smsgw"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// Defaults for Config fields left zero.
const (
	DefaultGRPCAddr     = ":9090"
	DefaultHTTPAddr     = ":8080"
	DefaultMaxBodyBytes = 64 << 10
	// DefaultMaxBatchBodyBytes fits a batch of MaxBatchSize ordinary
	// messages (a few hundred bytes each) with room to spare.
	DefaultMaxBatchBodyBytes = 4 << 20
	DefaultShutdownTimeout   = 15 * time.Second
)

// Customers finds the customer an API key belongs to.
type Customers interface {
	CustomerByAPIKey(key string) (*smsgw.Customer, bool)
}

// Config is where and how the API listens.
type Config struct {
	GRPCAddr string // used by ListenAndServe; default ":9090"
	HTTPAddr string // used by ListenAndServe; default ":8080"
	// MaxBodyBytes caps a REST request body and a gRPC request message;
	// default 64 KiB. A larger REST body is answered 413.
	MaxBodyBytes int64
	// MaxBatchBodyBytes caps a batch (SubmitMessages) and a configuration
	// import (ImportConfig) instead; default 4 MiB. gRPC requests of every
	// method may be this large, since the gateway carries a batch over gRPC
	// too.
	MaxBatchBodyBytes int64
	// BatchWorkers bounds how many items of one batch are submitted at
	// once; default DefaultBatchWorkers.
	BatchWorkers int
	// ShutdownTimeout bounds the graceful stop once Serve's context is done;
	// after it, open connections are closed. Default 15 s.
	ShutdownTimeout time.Duration
}

// Deps are what the API serves from. Submitter, Messages and Customers are
// required; a nil Ready means always ready, a nil Logger discards logs, and
// a nil Registerer a private registry.
type Deps struct {
	Submitter  smsgw.Submitter
	Messages   smsgw.MessageReader
	Customers  Customers
	Counter    Counter                         // nil: CountMessage answers Unimplemented
	Canceller  smsgw.Canceller                 // nil: CancelMessage answers Unimplemented
	Replacer   smsgw.Replacer                  // nil: ReplaceMessage answers Unimplemented
	Ready      func(ctx context.Context) error // /readyz: nil error = ready
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Inbound, when set, adds InboundService and NotificationService.
	Inbound *InboundDeps
	// Admin, when set, adds AdminService, which takes admin keys only.
	Admin Admin
	// Eraser, with Admin, serves AdminService's EraseNumber; without it
	// EraseNumber answers Unimplemented.
	Eraser Eraser
	// Traffic, when set, adds TrafficService: search, events, usage; with
	// Admin, OperatorTrafficService too, behind the admin keys.
	Traffic *TrafficDeps
	// Billing, when set, adds BillingService.
	Billing *BillingDeps
	// Rules, when set, adds RulesService.
	Rules *RulesDeps
}

// Server serves the gRPC API, its REST mapping and the operational endpoints.
type Server struct {
	cfg     Config
	log     *slog.Logger
	grpc    *grpc.Server
	gateway *inProcessListener // the REST gateway's way into grpc
	gwConn  *grpc.ClientConn
	http    http.Handler
}

// New builds a Server. Nothing listens until Serve.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Submitter == nil || d.Messages == nil || d.Customers == nil {
		return nil, errors.New("api: Submitter, Messages and Customers are required")
	}
	if cfg.GRPCAddr == "" {
		cfg.GRPCAddr = DefaultGRPCAddr
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = DefaultHTTPAddr
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBatchBodyBytes <= 0 {
		cfg.MaxBatchBodyBytes = DefaultMaxBatchBodyBytes
	}
	if cfg.BatchWorkers <= 0 {
		cfg.BatchWorkers = DefaultBatchWorkers
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Ready == nil {
		d.Ready = func(context.Context) error { return nil }
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
	}

	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	chain := &interceptor{log: d.Logger, metrics: m, customers: d.Customers}
	if d.Admin != nil {
		chain.admins = d.Admin
	}
	if d.Billing != nil {
		chain.operatorKeyHash = d.Billing.OperatorKeyHash
	}

	s := &Server{cfg: cfg, log: d.Logger, gateway: newInProcessListener()}
	s.grpc = grpc.NewServer(
		grpc.ChainUnaryInterceptor(chain.unary),
		grpc.ChainStreamInterceptor(chain.stream),
		grpc.MaxRecvMsgSize(int(max(cfg.MaxBodyBytes, cfg.MaxBatchBodyBytes))),
	)
	smsgwv1.RegisterMessageServiceServer(s.grpc, &messageService{
		submitter: d.Submitter, messages: d.Messages, counter: d.Counter,
		canceller: d.Canceller, replacer: d.Replacer,
		batchWorkers: cfg.BatchWorkers, log: d.Logger,
	})
	if err := registerInbound(s.grpc, d.Inbound); err != nil {
		return nil, err
	}
	if err := registerAdmin(s.grpc, d.Admin, d.Eraser, d.Traffic); err != nil {
		return nil, err
	}
	if err := registerTraffic(s.grpc, d.Traffic); err != nil {
		return nil, err
	}
	if err := registerBilling(s.grpc, d.Billing); err != nil {
		return nil, err
	}
	if err := registerRules(s.grpc, d.Rules); err != nil {
		return nil, err
	}
	registerStandardServices(s.grpc, d.Ready)

	// The gateway dials the same grpc.Server through an in-memory listener;
	// NewClient connects lazily, on the first REST request.
	s.gwConn, err = grpc.NewClient("passthrough:///smsgw-gateway",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return s.gateway.DialContext(ctx)
		}),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
	if err != nil {
		return nil, fmt.Errorf("api: in-process gateway connection: %w", err)
	}
	gw, err := newGateway(context.Background(), smsgwv1.NewMessageServiceClient(s.gwConn))
	if err != nil {
		return nil, err
	}
	if err := registerInboundGateway(context.Background(), gw, s.gwConn, d.Inbound); err != nil {
		return nil, err
	}
	if err := registerRulesGateway(context.Background(), gw, s.gwConn, d.Rules); err != nil {
		return nil, err
	}
	if err := registerAdminGateway(context.Background(), gw, s.gwConn, d.Admin, d.Traffic); err != nil {
		return nil, err
	}
	if err := registerBillingGateway(context.Background(), gw, s.gwConn, d.Billing); err != nil {
		return nil, err
	}
	var csv *csvExport
	if d.Traffic != nil {
		client := smsgwv1.NewTrafficServiceClient(s.gwConn)
		if err := smsgwv1.RegisterTrafficServiceHandlerClient(context.Background(), gw, client); err != nil {
			return nil, fmt.Errorf("api: register traffic REST gateway: %w", err)
		}
		csv = &csvExport{gw: gw, client: client, log: d.Logger}
		if d.Admin != nil {
			csv.operator = smsgwv1.NewOperatorTrafficServiceClient(s.gwConn)
		}
	}
	s.http = newHTTPHandler(gw, csv, bodyLimits{one: cfg.MaxBodyBytes, batch: cfg.MaxBatchBodyBytes}, d.Ready, m, d.Logger)
	return s, nil
}

// GRPCServer returns the gRPC server, for registering more services before Serve.
func (s *Server) GRPCServer() *grpc.Server { return s.grpc }

// HTTPHandler returns the HTTP handler: REST API, /healthz and /readyz. The REST routes answer only while Serve runs, because they reach
// the gRPC server through it.
func (s *Server) HTTPHandler() http.Handler { return s.http }

// ListenAndServe listens on the configured addresses and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	grpcLn, err := lc.Listen(ctx, "tcp", s.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("api: listen gRPC: %w", err)
	}
	httpLn, err := lc.Listen(ctx, "tcp", s.cfg.HTTPAddr)
	if err != nil {
		grpcLn.Close()
		return fmt.Errorf("api: listen HTTP: %w", err)
	}
	return s.Serve(ctx, grpcLn, httpLn)
}

// Serve serves gRPC on grpcLn and HTTP on httpLn until ctx is done, then
// stops gracefully: HTTP first (finishing REST calls in flight), then gRPC.
// It returns nil after a stop asked for by ctx, or the error of a server that
// failed on its own. Serve may be called once; it closes both listeners.
func (s *Server) Serve(ctx context.Context, grpcLn, httpLn net.Listener) error {
	if grpcLn == nil || httpLn == nil {
		return errors.New("api: Serve needs a gRPC and an HTTP listener")
	}
	httpSrv := &http.Server{
		Handler:           s.http,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}

	errc := make(chan error, 3)
	// A Serve that starts after the stop (ctx ended at once) reports
	// grpc.ErrServerStopped: that is the stop asked for, not a failure.
	serveGRPC := func(what string, ln net.Listener) {
		err := s.grpc.Serve(ln)
		if errors.Is(err, grpc.ErrServerStopped) {
			err = nil
		}
		errc <- wrapServeErr(what, err)
	}
	go serveGRPC("gRPC", grpcLn)
	go serveGRPC("in-process gRPC", s.gateway)
	go func() {
		err := httpSrv.Serve(httpLn)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- wrapServeErr("HTTP", err)
	}()
	s.log.InfoContext(ctx, "api listening", "grpc", grpcLn.Addr().String(), "http", httpLn.Addr().String())

	var first error
	pending := 3
	select {
	case <-ctx.Done():
	case first = <-errc:
		pending--
	}
	s.shutdown(httpSrv)
	for ; pending > 0; pending-- {
		if err := <-errc; first == nil {
			first = err
		}
	}
	return first
}

// shutdown stops HTTP and then gRPC, each gracefully within ShutdownTimeout.
func (s *Server) shutdown(httpSrv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(ctx); err != nil {
		s.log.Warn("api: HTTP graceful shutdown cut short", "err", err)
		httpSrv.Close()
	}
	s.gwConn.Close()
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.log.Warn("api: gRPC graceful stop cut short")
		s.grpc.Stop()
		<-stopped
	}
	s.log.Info("api stopped")
}

func wrapServeErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("api: %s server: %w", what, err)
}
