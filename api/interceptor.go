package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	smsgw "github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/promreg"
)

// customerKey is the context key of the authenticated customer.
type customerKey struct{}

// CustomerFromContext returns the customer whose API key authenticated the
// request, inside a handler behind the API's interceptors.
func CustomerFromContext(ctx context.Context) (*smsgw.Customer, bool) {
	c, ok := ctx.Value(customerKey{}).(*smsgw.Customer)
	return c, ok && c != nil
}

// entryPoint tells REST from gRPC: REST calls arrive over the gateway's
// in-process connection, which no network client can use.
func entryPoint(ctx context.Context) smsgw.EntryPoint {
	if p, ok := peer.FromContext(ctx); ok {
		if _, ok := p.Addr.(gatewayAddr); ok {
			return smsgw.EntryREST
		}
	}
	return smsgw.EntryGRPC
}

// grpcCodes maps domain error codes to gRPC codes; grpc-gateway then maps
// those to HTTP (400, 401, 403, 404, 409, 429, 503, 504). Anything else is Internal.
var grpcCodes = map[string]codes.Code{
	smsgw.EINVALID:      codes.InvalidArgument,
	smsgw.EUNAUTHORIZED: codes.Unauthenticated,
	smsgw.ENOTFOUND:     codes.NotFound,
	smsgw.ECONFLICT:     codes.AlreadyExists,
	smsgw.EUNAVAILABLE:  codes.Unavailable,
	smsgw.ETHROTTLED:    codes.ResourceExhausted,
	// No answer in time: gRPC's DEADLINE_EXCEEDED (HTTP 504) allows that
	// the operation took effect.
	smsgw.EUNKNOWN:   codes.DeadlineExceeded,
	smsgw.EPAYMENT:   codes.FailedPrecondition, // with ErrorInfo INSUFFICIENT_BALANCE; REST 402
	smsgw.EFORBIDDEN: codes.PermissionDenied,
}

// metrics are the API's request counters, labelled by gRPC method.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	panics   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsgw_api_requests_total",
			Help: "API requests, REST and gRPC, by gRPC method and result code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "smsgw_api_request_duration_seconds",
			Help:    "Time to answer an API request, REST and gRPC, by gRPC method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method"}),
	}
	m.panics = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smsgw_api_panics_total",
		Help: "API handlers that panicked, answered with an internal error (gRPC INTERNAL, HTTP 500), by gRPC method, or \"http\" outside one.",
	}, []string{"method"})
	var err error
	if m.panics, err = promreg.Register(reg, m.panics); err != nil {
		return nil, err
	}
	if m.requests, err = promreg.Register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = promreg.Register(reg, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// interceptor is the one chain every call goes through, REST or gRPC:
// authenticate, run the handler (a panic in it becomes an internal error),
// map its error to a gRPC status, then log and count the result.
type interceptor struct {
	log       *slog.Logger
	metrics   *metrics
	customers Customers
	admins    AdminKeys // nil: no admin API
	// operatorKeyHash authorises the operator methods (billing.go).
	operatorKeyHash string
}

// AdminKeys finds the name of an admin API key.
type AdminKeys interface {
	AdminByKey(key string) (name string, ok bool)
}

func (i *interceptor) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	var resp any
	if publicMethod(info.FullMethod) {
		err := i.guard(ctx, info.FullMethod, func() (err error) {
			resp, err = handler(ctx, req)
			return err
		})
		return resp, err
	}
	if operatorMethod(info.FullMethod) {
		err := i.authenticateOperator(ctx)
		if err == nil {
			err = i.guard(ctx, info.FullMethod, func() (err error) {
				resp, err = handler(ctx, req)
				return err
			})
		}
		err = i.toStatus(ctx, info.FullMethod, err)
		i.observe(ctx, info.FullMethod, nil, start, err)
		return resp, err
	}
	cust, ctx, err := i.authenticate(ctx, info.FullMethod)
	if err == nil {
		err = i.guard(ctx, info.FullMethod, func() (err error) {
			resp, err = handler(ctx, req)
			return err
		})
	}
	err = i.toStatus(ctx, info.FullMethod, err)
	i.observe(ctx, info.FullMethod, cust, start, err)
	return resp, err
}

func (i *interceptor) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if publicMethod(info.FullMethod) {
		return i.guard(ss.Context(), info.FullMethod, func() error { return handler(srv, ss) })
	}
	start := time.Now()
	ctx := ss.Context()
	cust, ctx, err := i.authenticate(ctx, info.FullMethod)
	if err == nil {
		err = i.guard(ctx, info.FullMethod, func() error {
			return handler(srv, &customerStream{ServerStream: ss, ctx: ctx})
		})
	}
	err = i.toStatus(ctx, info.FullMethod, err)
	i.observe(ctx, info.FullMethod, cust, start, err)
	return err
}

// guard runs a handler; if it panics, the panic is logged with its stack and
// counted, and the caller gets an internal error while the process carries on.
func (i *interceptor) guard(ctx context.Context, method string, handler func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			i.metrics.panics.WithLabelValues(strings.TrimPrefix(method, "/")).Inc()
			i.log.ErrorContext(ctx, "api handler panicked", "method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	return handler()
}

type customerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *customerStream) Context() context.Context { return s.ctx }

// authenticate checks the `authorization: Bearer <key>` metadata: the
// admin API takes admin keys only, every other method customers' keys
// only. It returns the customer (nil for an admin) and ctx with the
// customer or the admin key's name.
func (i *interceptor) authenticate(ctx context.Context, method string) (*smsgw.Customer, context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return nil, ctx, smsgw.Errorf(smsgw.EUNAUTHORIZED, "missing API key: send the header Authorization: Bearer <key>")
	}
	key, ok := bearerToken(vals[0])
	if !ok {
		return nil, ctx, smsgw.Errorf(smsgw.EUNAUTHORIZED, "the Authorization header must be Bearer <key>")
	}
	admin, isAdmin := "", false
	if i.admins != nil {
		admin, isAdmin = i.admins.AdminByKey(key)
	}
	if adminMethod(method) {
		if isAdmin {
			return nil, context.WithValue(ctx, adminKey{}, admin), nil
		}
		if cust, ok := i.customers.CustomerByAPIKey(key); ok && cust != nil {
			return nil, ctx, status.Error(codes.PermissionDenied, "a customer's API key cannot use the admin API: use an admin key")
		}
		return nil, ctx, smsgw.Errorf(smsgw.EUNAUTHORIZED, "invalid admin API key")
	}
	cust, ok := i.customers.CustomerByAPIKey(key)
	if !ok || cust == nil {
		if isAdmin {
			return nil, ctx, status.Error(codes.PermissionDenied, "an admin key acts for no customer: use the customer's API key")
		}
		return nil, ctx, smsgw.Errorf(smsgw.EUNAUTHORIZED, "invalid API key")
	}
	return cust, context.WithValue(ctx, customerKey{}, cust), nil
}

// bearerToken returns the key of "Bearer <key>"; the scheme is case-insensitive.
func bearerToken(h string) (string, bool) {
	scheme, key, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	key = strings.TrimSpace(key)
	return key, key != ""
}

// toStatus turns a handler's error into the status the caller sees. Domain
// errors keep their customer-safe message; anything unexpected is logged with
// its cause and answered with a generic Internal.
func (i *interceptor) toStatus(ctx context.Context, method string, err error) error {
	if err == nil {
		return nil
	}
	var domain *smsgw.Error
	if errors.As(err, &domain) {
		if st, ok := domainStatus(domain); ok {
			return st.Err()
		}
	} else if _, ok := status.FromError(err); ok {
		return err
	} else if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, "request canceled")
	} else if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	i.log.ErrorContext(ctx, "api internal error", "method", method, "err", err)
	return status.Error(codes.Internal, "internal error")
}

// ErrorDomain is the domain of the ErrorInfo detail of a policy's refusal.
const ErrorDomain = "smsgw"

// domainStatus is the status of a domain error whose code the API maps
// (grpcCodes), with its customer-safe message; false for any other code.
func domainStatus(domain *smsgw.Error) (*status.Status, bool) {
	c, ok := grpcCodes[domain.Code]
	if !ok {
		return nil, false
	}
	st := status.New(c, domain.Message)
	reason := domain.Reason
	if domain.Code == smsgw.EPAYMENT {
		reason = smsgw.ReasonInsufficientBalance
	}
	if reason != "" {
		// A refusal names itself in the standard ErrorInfo detail:
		// {"@type": ".../google.rpc.ErrorInfo", "reason": "OPTED_OUT", "domain": "smsgw"}.
		if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain}); err == nil {
			st = d
		}
	}
	if domain.RetryAfter > 0 {
		// RESOURCE_EXHAUSTED with the standard RetryInfo detail;
		// the REST gateway turns it into Retry-After.
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(domain.RetryAfter)}); err == nil {
			st = d
		}
	}
	return st, true
}

// observe logs and counts one finished call.
func (i *interceptor) observe(ctx context.Context, method string, cust *smsgw.Customer, start time.Time, err error) {
	elapsed := time.Since(start)
	code := status.Code(err)
	name := strings.TrimPrefix(method, "/")
	i.metrics.requests.WithLabelValues(name, code.String()).Inc()
	i.metrics.duration.WithLabelValues(name).Observe(elapsed.Seconds())

	customer := ""
	if cust != nil {
		customer = cust.ID
	}
	i.log.LogAttrs(ctx, slog.LevelInfo, "api request",
		slog.String("method", name),
		slog.String("code", code.String()),
		slog.Duration("duration", elapsed),
		slog.String("customer", customer),
		slog.String("entry", string(entryPoint(ctx))),
		slog.String("admin", who(ctx)),
	)
}
