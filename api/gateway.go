package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/textproto"
	"runtime/debug"
	"strconv"
	"sync/atomic"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	smsgw "github.com/smsgw/smsgw"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// idempotencyKeyMD is the gRPC metadata key for the idempotency key; the REST
// header Idempotency-Key is forwarded under it.
const idempotencyKeyMD = "idempotency-key"

// gatewayAddr is the remote address of every connection the REST gateway
// makes to the gRPC server. Only the in-process listener hands it out, so a
// network client cannot pose as the gateway.
type gatewayAddr struct{}

func (gatewayAddr) Network() string { return "inprocess" }
func (gatewayAddr) String() string  { return "rest-gateway" }

// inProcessListener is an in-memory listener whose connections report
// gatewayAddr as their remote address.
type inProcessListener struct{ *bufconn.Listener }

type gatewayConn struct{ net.Conn }

func (gatewayConn) RemoteAddr() net.Addr { return gatewayAddr{} }

func newInProcessListener() *inProcessListener {
	return &inProcessListener{bufconn.Listen(256 << 10)}
}

func (l *inProcessListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return gatewayConn{c}, nil
}

// jsonMarshaler is the REST wire format: camelCase names, every field
// present in answers, and unknown fields in requests refused.
var jsonMarshaler = &runtime.HTTPBodyMarshaler{
	Marshaler: &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	},
}

// newGateway returns the REST mapping of MessageService over client.
func newGateway(ctx context.Context, client smsgwv1.MessageServiceClient) (*runtime.ServeMux, error) {
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, jsonMarshaler),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithForwardResponseOption(acceptedStatus),
		runtime.WithErrorHandler(retryAfterHeader),
	)
	if err := smsgwv1.RegisterMessageServiceHandlerClient(ctx, mux, client); err != nil {
		return nil, fmt.Errorf("api: register REST gateway: %w", err)
	}
	return mux, nil
}

// incomingHeader forwards the Idempotency-Key header as gRPC metadata, and
// everything else as grpc-gateway does by default (Authorization included).
func incomingHeader(key string) (string, bool) {
	if textproto.CanonicalMIMEHeaderKey(key) == "Idempotency-Key" {
		return idempotencyKeyMD, true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// retryAfterHeader answers an error as grpc-gateway does, with a
// Retry-After header (whole seconds, at least 1) when the status carries a
// RetryInfo: a submission refused for the customer's backlog (429). A
// FAILED_PRECONDITION (a message too far along to cancel or replace) is
// answered 409 Conflict, where grpc-gateway would say 400, unless its
// ErrorInfo says the balance is insufficient: 402 Payment Required.
func retryAfterHeader(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if st, ok := status.FromError(err); ok {
		if st.Code() == codes.FailedPrecondition {
			code := http.StatusConflict
			if insufficientBalance(st) {
				code = http.StatusPaymentRequired
			}
			err = &runtime.HTTPStatusError{HTTPStatus: code, Err: err}
		}
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
				secs := int64(math.Ceil(ri.GetRetryDelay().AsDuration().Seconds()))
				w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
			}
		}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// insufficientBalance tells an EPAYMENT refusal by its ErrorInfo.
func insufficientBalance(st *status.Status) bool {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.GetReason() == smsgw.ReasonInsufficientBalance {
			return true
		}
	}
	return false
}

// acceptedStatus answers a submission with 202 Accepted: the message is
// durable but not yet delivered.
func acceptedStatus(_ context.Context, w http.ResponseWriter, m proto.Message) error {
	if _, ok := m.(*smsgwv1.SubmitMessageResponse); ok {
		w.WriteHeader(http.StatusAccepted)
	}
	return nil
}

// newHTTPHandler serves the REST gateway, with the body capped at maxBody
// bytes, and the probes /healthz and /readyz for load balancers. Metrics are
// not served here: they have a listener of their own (OperationsHandler),
// so no path on the public listener reaches them.
func newHTTPHandler(gw *runtime.ServeMux, csv *csvExport, maxBody bodyLimits, ready func(context.Context) error, m *metrics, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	addProbes(mux, ready, log)
	var rest http.Handler = checkIdempotencyKey(gw, limitBody(gw, maxBody))
	if csv != nil {
		rest = csv.or(rest)
	}
	mux.Handle("/", rest)
	return recoverHTTP(mux, m, log)
}

// OperationsHandler serves /metrics, /healthz and /readyz on the metrics
// listener every role has, which is for the cluster's monitoring and
// probes only, never for the public.
func OperationsHandler(g prometheus.Gatherer, ready func(context.Context) error, log *slog.Logger) http.Handler {
	if ready == nil {
		ready = func(context.Context) error { return nil }
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	addProbes(mux, ready, log)
	return mux
}

// addProbes adds /healthz (the process answers) and /readyz (it can take
// work: its dependencies answer) to mux.
func addProbes(mux *http.ServeMux, ready func(context.Context) error, log *slog.Logger) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	var last atomic.Value // the last answer that was not ready, to log each change once
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		err := ready(r.Context())
		if err == nil {
			last.Store("")
			io.WriteString(w, "ready\n")
			return
		}
		answer := "not ready: " + unready(err)
		if prev, _ := last.Swap(answer).(string); prev != answer {
			log.WarnContext(r.Context(), "not ready", "err", err)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, answer+"\n")
	})
}

// unready names what is not ready, from the customer-safe message of a
// domain error ("event store is unavailable"), never from its cause, which
// may carry hosts, addresses and driver messages.
func unready(err error) string {
	var e *smsgw.Error
	if errors.As(err, &e) && e.Code == smsgw.EUNAVAILABLE {
		return e.Message
	}
	return "a dependency is unavailable"
}

// checkIdempotencyKey answers 400 to a request whose Idempotency-Key header
// is not 1 to 255 printable ASCII characters, before the header becomes
// gRPC metadata.
func checkIdempotencyKey(gw *runtime.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, k := range r.Header.Values("Idempotency-Key") {
			if !smsgw.ValidIdempotencyKey(k) {
				_, out := runtime.MarshalerForRequest(gw, r)
				runtime.HTTPError(r.Context(), gw, out, w, r, errBadIdempotencyKey)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

var errBadIdempotencyKey = status.Errorf(codes.InvalidArgument, "the Idempotency-Key header must be 1 to %d printable ASCII characters", smsgw.MaxIdempotencyKeyLength)

// recoverHTTP answers 500 to a request whose handler panicked, counts it
// and logs it, where net/http would only drop the connection.
func recoverHTTP(next http.Handler, m *metrics, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			m.panics.WithLabelValues("http").Inc()
			log.ErrorContext(r.Context(), "api: HTTP handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"code":13,"message":"internal error","details":[]}`)
		}()
		next.ServeHTTP(w, r)
	})
}

// bodyLimits are the largest request bodies: of a batch (or an opt-out
// import), and of anything else.
type bodyLimits struct{ one, batch int64 }

// batchPath is where SubmitMessages is served over REST.
const batchPath = "/v1/messages:batch"

// configImportPath is where ImportConfig is served over REST: a whole
// configuration file may be as large as a batch.
const configImportPath = "/v1/admin/config:import"

// optOutImportPath is where ImportOptOuts is served over REST.
const optOutImportPath = "/v1/optouts:import"

// limitBody reads at most the limit's bytes of the request body before the
// gateway sees it, and answers 413 with grpc-gateway's error body for
// anything larger.
func limitBody(gw *runtime.ServeMux, limits bodyLimits) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		max := limits.one
		if r.URL.Path == batchPath || r.URL.Path == configImportPath || r.URL.Path == optOutImportPath {
			max = limits.batch
		}
		if r.Body == nil || r.Body == http.NoBody {
			gw.ServeHTTP(w, r)
			return
		}
		tooLarge := func() {
			_, out := runtime.MarshalerForRequest(gw, r)
			runtime.HTTPError(r.Context(), gw, out, w, r, &runtime.HTTPStatusError{
				HTTPStatus: http.StatusRequestEntityTooLarge,
				Err:        status.Errorf(codes.InvalidArgument, "request body is larger than %d bytes", max),
			})
		}
		if r.ContentLength > max {
			tooLarge()
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
		if err != nil {
			_, out := runtime.MarshalerForRequest(gw, r)
			runtime.HTTPError(r.Context(), gw, out, w, r, status.Errorf(codes.InvalidArgument, "reading request body: %v", err))
			return
		}
		if int64(len(body)) > max {
			tooLarge()
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		gw.ServeHTTP(w, r)
	})
}
