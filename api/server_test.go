package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	smsgw "github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/testenv"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

const (
	aliceKey = "alice-key-1"
	bobKey   = "bob-key-1"
)

// recordingSubmitter validates with the domain's own rules, records what it
// accepted and answers with a fixed error when one is set.
type recordingSubmitter struct {
	mu   sync.Mutex
	got  []smsgw.Message
	fail error
	// panicWith, when set, makes Submit panic with it.
	panicWith any
	// existing, when set, answers every submission as a repeat of it.
	existing *smsgw.Accepted
}

func (s *recordingSubmitter) Submit(_ context.Context, m smsgw.Message) (smsgw.Accepted, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.panicWith != nil {
		panic(s.panicWith)
	}
	if s.fail != nil {
		return smsgw.Accepted{}, s.fail
	}
	if s.existing != nil {
		return *s.existing, nil
	}
	if err := m.Validate(); err != nil {
		return smsgw.Accepted{}, err
	}
	s.got = append(s.got, m)
	return smsgw.Accepted{ID: fmt.Sprintf("msg-%d", len(s.got)), Status: smsgw.StatusAccepted, Segments: 1, Encoding: "GSM7"}, nil
}

func (s *recordingSubmitter) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *recordingSubmitter) received() []smsgw.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smsgw.Message(nil), s.got...)
}

// recordReader serves message records from a map.
type recordReader map[string]smsgw.MessageRecord

func (r recordReader) GetMessage(_ context.Context, id string) (smsgw.MessageRecord, error) {
	rec, ok := r[id]
	if !ok {
		return smsgw.MessageRecord{}, smsgw.Errorf(smsgw.ENOTFOUND, "no message %s", id)
	}
	return rec, nil
}

// customerList finds customers by their hashed keys, as configuration does.
type customerList []*smsgw.Customer

func (l customerList) CustomerByAPIKey(key string) (*smsgw.Customer, bool) {
	for _, c := range l {
		if c.HasAPIKey(key) {
			return c, true
		}
	}
	return nil, false
}

type testServer struct {
	submitter *recordingSubmitter // nil when the test brought its own
	changes   *recordingChanger
	baseURL   string
	grpcAddr  string
	logs      *testenv.SyncBuffer
	readyErr  error
	reg       *prometheus.Registry
}

// metrics returns what the metrics listener would serve.
func (ts *testServer) metrics(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(OperationsHandler(ts.reg, nil, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	return get(t, srv.URL+"/metrics", http.StatusOK)
}

// fixed date: the fake reader returns it and the API only formats it; the API reads the clock only to time requests
var deliveredAt = time.Date(2026, 11, 26, 10, 0, 5, 0, time.UTC)

// startServer runs a Server on loopback ports until the test ends, and
// checks that it then stops cleanly.
func startServer(t testing.TB, cfg Config, readyErr error) *testServer {
	t.Helper()
	return startServerWith(t, cfg, readyErr, &recordingSubmitter{})
}

// startServerWith is startServer with a submitter of the test's own.
func startServerWith(t testing.TB, cfg Config, readyErr error, sub smsgw.Submitter, change ...func(*Deps)) *testServer {
	t.Helper()
	ts := &testServer{logs: &testenv.SyncBuffer{}, readyErr: readyErr}
	ts.submitter, _ = sub.(*recordingSubmitter)
	accepted := deliveredAt.Add(-5 * time.Second)
	reg := prometheus.NewRegistry()
	ts.reg = reg
	messages := recordReader{
		"alice-1": {ID: "alice-1", CustomerID: "alice", From: "Shop", To: "+61412345678", Status: smsgw.StatusDelivered,
			ConnectorID: "telco-a", Segments: 2, Encoding: "UCS2", ClientRef: "order-7", AcceptedAt: accepted, SentAt: &accepted, DoneAt: &deliveredAt},
		"alice-queued": {ID: "alice-queued", CustomerID: "alice", From: "Shop", To: "+61412345678", Status: smsgw.StatusAccepted, AcceptedAt: accepted},
		"bob-1":        {ID: "bob-1", CustomerID: "bob", From: "Bob", To: "+61400000000", Status: smsgw.StatusSent, AcceptedAt: accepted},
	}
	ts.changes = &recordingChanger{messages: messages}
	deps := Deps{
		Submitter: sub,
		Canceller: ts.changes,
		Replacer:  ts.changes,
		Messages:  messages,
		Customers: customerList{
			{ID: "alice", APIKeyHashes: []string{smsgw.HashAPIKey(aliceKey)}},
			{ID: "bob", APIKeyHashes: []string{smsgw.HashAPIKey(bobKey)}},
		},
		Ready: func(context.Context) error {
			if p, ok := ts.readyErr.(panicking); ok {
				panic(string(p))
			}
			return ts.readyErr
		},
		Logger:     slog.New(slog.NewJSONHandler(ts.logs, nil)),
		Registerer: reg,
	}
	for _, c := range change {
		c(&deps)
	}
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.grpcAddr = grpcLn.Addr().String()
	ts.baseURL = "http://" + httpLn.Addr().String()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, grpcLn, httpLn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v after a requested stop", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return within 10s of its context ending")
		}
		if c, err := net.DialTimeout("tcp", ts.grpcAddr, time.Second); err == nil {
			c.Close()
			t.Error("gRPC listener still accepts after Serve returned")
		}
	})
	return ts
}

// do sends a REST request and returns the status and decoded JSON body.
func (ts *testServer) do(t testing.TB, method, path, key string, body io.Reader, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, ts.baseURL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if len(raw) > 0 && json.Unmarshal(raw, &out) != nil {
		out = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, out
}

func (ts *testServer) grpcClient(t testing.TB) smsgwv1.MessageServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(ts.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return smsgwv1.NewMessageServiceClient(conn)
}

// withKey returns a context carrying an API key and any more metadata pairs.
func withKey(key string, kv ...string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), append([]string{"authorization", "Bearer " + key}, kv...)...)
}

const validBody = `{"from":"Shop","to":"+61412345678","text":"hello","callbackUrl":"https://example.com/cb","validitySeconds":3600}`

func TestRESTSubmitAnswers202WithIDAndStatus(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	code, body := ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(validBody), nil)
	if code != http.StatusAccepted {
		t.Fatalf("status %d, body %v; want 202", code, body)
	}
	if body["id"] != "msg-1" || body["status"] != "MESSAGE_STATUS_ACCEPTED" || body["encoding"] != "GSM7" || body["segments"] != float64(1) {
		t.Errorf("body = %v", body)
	}
	got := ts.submitter.received()
	if len(got) != 1 {
		t.Fatalf("submitter got %d messages, want 1", len(got))
	}
	want := smsgw.Message{CustomerID: "alice", EntryPoint: smsgw.EntryREST, From: "Shop", To: "+61412345678", Text: "hello",
		CallbackURL: "https://example.com/cb", Validity: time.Hour}
	if got[0] != want {
		t.Errorf("submitted %+v\nwant      %+v", got[0], want)
	}
}

func TestRESTIdempotencyKeyHeaderReachesSubmitter(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	code, body := ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(validBody), map[string]string{"Idempotency-Key": "order-42"})
	if code != http.StatusAccepted {
		t.Fatalf("status %d, body %v", code, body)
	}
	if got := ts.submitter.received(); len(got) != 1 || got[0].IdempotencyKey != "order-42" {
		t.Fatalf("submitted %+v, want idempotency key order-42", got)
	}

	// The header and the body field must not contradict each other.
	b := `{"from":"Shop","to":"+61412345678","text":"hi","idempotencyKey":"other"}`
	code, body = ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(b), map[string]string{"Idempotency-Key": "order-42"})
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body["message"]), "differ") {
		t.Errorf("conflicting keys: status %d, body %v; want 400 naming the difference", code, body)
	}
}

// An idempotency key is 1 to 255 printable ASCII characters, in the
// header, the body field or gRPC metadata; anything else is a 400 (gRPC
// INVALID_ARGUMENT) that reaches no submitter.
func TestIdempotencyKeyIsBounded(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	long := strings.Repeat("k", 256)
	for name, c := range map[string]struct {
		header, field string
		want          int
	}{
		"255 in the header":       {header: strings.Repeat("k", 255), want: http.StatusAccepted},
		"printable symbols":       {header: "order 42/#~!", want: http.StatusAccepted},
		"256 in the header":       {header: long, want: http.StatusBadRequest},
		"not ASCII in the header": {header: "clé-1", want: http.StatusBadRequest},
		"256 in the body":         {field: long, want: http.StatusBadRequest},
		"a control in the body":   {field: `a\u0001b`, want: http.StatusBadRequest},
		"a newline in the body":   {field: `a\nb`, want: http.StatusBadRequest},
		"not ASCII in the body":   {field: "clé", want: http.StatusBadRequest},
		"header and field of 256": {header: long, field: long, want: http.StatusBadRequest},
	} {
		before := len(ts.submitter.received())
		body := `{"from":"Shop","to":"+61412345678","text":"hi","idempotencyKey":"` + c.field + `"}`
		header := map[string]string{}
		if c.header != "" {
			header["Idempotency-Key"] = c.header
		}
		code, out := ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(body), header)
		if code != c.want {
			t.Errorf("%s: status %d %v, want %d", name, code, out, c.want)
		}
		if code == http.StatusBadRequest && (!strings.Contains(fmt.Sprint(out["message"]), "printable ASCII") || len(ts.submitter.received()) != before) {
			t.Errorf("%s: %v, want a reason and nothing submitted", name, out)
		}
	}
	_, err := ts.grpcClient(t).SubmitMessage(withKey(aliceKey, "idempotency-key", long), &smsgwv1.SubmitMessageRequest{From: "Shop", To: "+61412345678", Text: "x"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("gRPC with a key of 256: %v, want InvalidArgument", err)
	}
}

// panicking, as the readiness error of startServer, makes the readiness
// check panic with its text.
type panicking string

func (p panicking) Error() string { return string(p) }

// The services served without an API key (health, reflection) are guarded
// as well: a panic in the readiness check is INTERNAL over gRPC and 500 on
// /readyz, and the server goes on serving.
func TestPanicsInPublicServicesAreCaught(t *testing.T) {
	ts := startServer(t, Config{}, panicking("readiness check bug"))
	_, err := healthpb.NewHealthClient(dialRaw(t, ts.grpcAddr)).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Internal {
		t.Errorf("health Check: %v, want INTERNAL", err)
	}
	resp, err := http.Get(ts.baseURL + "/readyz")
	if err != nil {
		t.Fatalf("/readyz: %v (the connection was dropped?)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("/readyz: %d, want 500", resp.StatusCode)
	}
	if m := ts.metrics(t); !strings.Contains(m, `smsgw_api_panics_total{method="grpc.health.v1.Health/Check"} 1`) ||
		!strings.Contains(m, `smsgw_api_panics_total{method="http"} 1`) {
		t.Errorf("panics not counted:\n%s", m)
	}
	if code, body := ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(validBody), nil); code != http.StatusAccepted {
		t.Errorf("after the panics: status %d %v, want 202", code, body)
	}
}

// A handler that panics answers 500 over REST and INTERNAL over gRPC, is
// counted and logged, and the server goes on serving.
func TestPanicsAnswerInternalAndAreCounted(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	ts.submitter.mu.Lock()
	ts.submitter.panicWith = "index out of range [3] with length 3"
	ts.submitter.mu.Unlock()
	code, body := ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(validBody), nil)
	if code != http.StatusInternalServerError || body["message"] != "internal error" {
		t.Errorf("REST: status %d %v, want 500 internal error", code, body)
	}
	_, err := ts.grpcClient(t).SubmitMessage(withKey(bobKey), &smsgwv1.SubmitMessageRequest{From: "Bob", To: "+61412345678", Text: "x"})
	if st, _ := status.FromError(err); st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Errorf("gRPC: %v, want INTERNAL internal error", err)
	}
	if m := ts.metrics(t); !strings.Contains(m, `smsgw_api_panics_total{method="smsgw.v1.MessageService/SubmitMessage"} 2`+"\n") ||
		!strings.Contains(m, `smsgw_api_requests_total{code="Internal",method="smsgw.v1.MessageService/SubmitMessage"} 2`+"\n") {
		t.Errorf("panics not counted:\n%s", m)
	}
	if logs := ts.logs.String(); !strings.Contains(logs, "api handler panicked") || !strings.Contains(logs, "index out of range") {
		t.Errorf("the panic is not logged:\n%s", logs)
	}

	ts.submitter.mu.Lock()
	ts.submitter.panicWith = nil
	ts.submitter.mu.Unlock()
	if code, body := ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(validBody), nil); code != http.StatusAccepted {
		t.Errorf("after the panics: status %d %v, want 202", code, body)
	}
}

// A panic outside any gRPC handler (in the gateway's own HTTP code) is a
// 500 too, and counted, where net/http would drop the connection.
func TestHTTPPanicIsA500(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(recoverHTTP(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("gateway bug") }), m, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/messages/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", resp.StatusCode)
	}
	if got := testutil.ToFloat64(m.panics.WithLabelValues("http")); got != 1 {
		t.Errorf("panics{method=http} = %v, want 1", got)
	}
}

// A repeated idempotency key is answered with the stored message as the
// submitter found it, and a key used for another request is a conflict:
// 409 with the reason over REST, ALREADY_EXISTS over gRPC.
func TestRepeatedIdempotencyKeyAnswers(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	ts.submitter.mu.Lock()
	ts.submitter.existing = &smsgw.Accepted{ID: "alice-1", Status: smsgw.StatusDelivered, Segments: 2, Encoding: "UCS2", Existing: true}
	ts.submitter.mu.Unlock()
	code, body := ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(validBody), map[string]string{"Idempotency-Key": "order-42"})
	if code != http.StatusAccepted || body["id"] != "alice-1" || body["status"] != "MESSAGE_STATUS_DELIVERED" ||
		fmt.Sprint(body["segments"]) != "2" || body["encoding"] != "UCS2" {
		t.Errorf("repeat: status %d, body %v; want 202 with the stored message as it is now", code, body)
	}

	reason := `the idempotency key "order-42" was already used for message alice-1 with another request`
	ts.submitter.setFail(smsgw.Errorf(smsgw.ECONFLICT, "%s", reason))
	code, body = ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(validBody), map[string]string{"Idempotency-Key": "order-42"})
	if code != http.StatusConflict || body["message"] != reason {
		t.Errorf("conflict over REST: status %d, body %v; want 409 with the reason", code, body)
	}
	key := "order-42"
	_, err := ts.grpcClient(t).SubmitMessage(withKey(aliceKey), &smsgwv1.SubmitMessageRequest{From: "Shop", To: "+61412345678", Text: "hi", IdempotencyKey: &key})
	if st, _ := status.FromError(err); st.Code() != codes.AlreadyExists || st.Message() != reason {
		t.Errorf("conflict over gRPC: %v; want ALREADY_EXISTS with the reason", err)
	}
}

func TestGRPCSubmitWithMetadata(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	client := ts.grpcClient(t)
	validity := int32(600)
	resp, err := client.SubmitMessage(withKey(bobKey, "idempotency-key", "k-7"), &smsgwv1.SubmitMessageRequest{
		From: "Bob", To: "0061 412 345 678", Text: "hi there", ValiditySeconds: &validity,
	})
	if err != nil {
		t.Fatalf("SubmitMessage: %v", err)
	}
	if resp.GetId() != "msg-1" || resp.GetStatus() != smsgwv1.MessageStatus_MESSAGE_STATUS_ACCEPTED || resp.GetSegments() != 1 {
		t.Errorf("response = %v", resp)
	}
	key := "k-8"
	if _, err := client.SubmitMessage(withKey(bobKey), &smsgwv1.SubmitMessageRequest{From: "Bob", To: "+61412345678", Text: "x", IdempotencyKey: &key}); err != nil {
		t.Fatalf("SubmitMessage with body key: %v", err)
	}
	got := ts.submitter.received()
	if len(got) != 2 {
		t.Fatalf("submitter got %d messages, want 2", len(got))
	}
	if got[0].CustomerID != "bob" || got[0].EntryPoint != smsgw.EntryGRPC || got[0].IdempotencyKey != "k-7" || got[0].Validity != 10*time.Minute {
		t.Errorf("first submission %+v", got[0])
	}
	if got[1].IdempotencyKey != "k-8" || got[1].Validity != 0 {
		t.Errorf("second submission %+v", got[1])
	}
}

func TestUnauthenticatedIsRefused(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	for _, tc := range []struct{ name, auth string }{
		{"no key", ""},
		{"wrong key", "Bearer nope"},
		{"wrong scheme", "Basic " + aliceKey},
		{"empty bearer", "Bearer "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.auth != "" {
				hdr["Authorization"] = tc.auth
			}
			code, body := ts.do(t, "POST", "/v1/messages", "", strings.NewReader(validBody), hdr)
			if code != http.StatusUnauthorized || body["code"] != float64(codes.Unauthenticated) || body["message"] == "" {
				t.Errorf("REST: status %d, body %v; want 401 with a message", code, body)
			}
			code, _ = ts.do(t, "GET", "/v1/messages/alice-1", "", nil, hdr)
			if code != http.StatusUnauthorized {
				t.Errorf("REST GET: status %d, want 401", code)
			}
		})
	}
	client := ts.grpcClient(t)
	_, err := client.SubmitMessage(context.Background(), &smsgwv1.SubmitMessageRequest{From: "a", To: "+61412345678", Text: "x"})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC without key: %v, want Unauthenticated", err)
	}
	_, err = client.GetMessage(withKey("wrong"), &smsgwv1.GetMessageRequest{Id: "alice-1"})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC with a wrong key: %v, want Unauthenticated", err)
	}
	if n := len(ts.submitter.received()); n != 0 {
		t.Errorf("submitter got %d messages from unauthenticated callers", n)
	}
}

func TestRESTBadInputIs400WithReason(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	for _, tc := range []struct{ name, body, reason string }{
		{"malformed JSON", `{"from":"Shop",`, "unexpected EOF"},
		{"not an object", `[1,2]`, "proto"},
		{"unknown field", `{"from":"Shop","to":"+61412345678","text":"hi","colour":"red"}`, `unknown field "colour"`},
		{"missing fields", `{"from":"Shop"}`, "to is required; text is required"},
		{"empty body", ``, "from is required"},
		{"number not a number", `{"from":"Shop","to":"+61412345678","text":"hi","validitySeconds":"soon"}`, "validitySeconds"},
		{"number out of range", `{"from":"Shop","to":"+61412345678","text":"hi","validitySeconds":99999999999}`, "validitySeconds"},
		{"negative validity", `{"from":"Shop","to":"+61412345678","text":"hi","validitySeconds":-5}`, "validity must be between"},
		{"bad destination", `{"from":"Shop","to":"12ab","text":"hi"}`, "not a valid international phone number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(tc.body), nil)
			if code != http.StatusBadRequest {
				t.Fatalf("status %d, body %v; want 400", code, body)
			}
			if body["code"] != float64(codes.InvalidArgument) || !strings.Contains(fmt.Sprint(body["message"]), tc.reason) {
				t.Errorf("body %v; want InvalidArgument mentioning %q", body, tc.reason)
			}
			if _, ok := body["details"].([]any); !ok {
				t.Errorf("body %v has no details array", body)
			}
		})
	}
	if n := len(ts.submitter.received()); n != 0 {
		t.Errorf("submitter accepted %d bad messages", n)
	}
}

func TestRESTOversizeBodyIs413(t *testing.T) {
	ts := startServer(t, Config{MaxBodyBytes: 1024}, nil)
	big := `{"from":"Shop","to":"+61412345678","text":"` + strings.Repeat("a", 2000) + `"}`
	code, body := ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(big), nil)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(fmt.Sprint(body["message"]), "larger than 1024 bytes") {
		t.Errorf("with Content-Length: status %d, body %v; want 413 with a reason", code, body)
	}
	// Without a Content-Length (chunked), the limit holds as the body is read.
	code, body = ts.do(t, "POST", "/v1/messages", aliceKey, io.MultiReader(strings.NewReader(big)), nil)
	if code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked: status %d, body %v; want 413", code, body)
	}
	// Just under the limit still passes.
	code, body = ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(validBody), nil)
	if code != http.StatusAccepted {
		t.Errorf("small body: status %d, body %v; want 202", code, body)
	}
}

func TestGetMessageOnlyForItsCustomer(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	code, body := ts.do(t, "GET", "/v1/messages/alice-1", aliceKey, nil, nil)
	if code != http.StatusOK {
		t.Fatalf("own message: status %d, body %v", code, body)
	}
	want := map[string]any{
		"id": "alice-1", "status": "MESSAGE_STATUS_DELIVERED", "from": "Shop", "to": "+61412345678", "connectorId": "telco-a",
		"segments": float64(2), "encoding": "UCS2", "errorCode": "", "errorText": "",
		"acceptedAt": "2026-11-26T10:00:00Z", "sentAt": "2026-11-26T10:00:00Z", "doneAt": "2026-11-26T10:00:05Z",
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("%s = %v, want %v", k, body[k], v)
		}
	}

	_, other := ts.do(t, "GET", "/v1/messages/bob-1", aliceKey, nil, nil)
	code, _ = ts.do(t, "GET", "/v1/messages/bob-1", aliceKey, nil, nil)
	if code != http.StatusNotFound {
		t.Errorf("another customer's message: status %d, want 404", code)
	}
	code, absent := ts.do(t, "GET", "/v1/messages/nobody-1", aliceKey, nil, nil)
	if code != http.StatusNotFound {
		t.Errorf("unknown message: status %d, want 404", code)
	}
	if strings.ReplaceAll(fmt.Sprint(other), "bob-1", "X") != strings.ReplaceAll(fmt.Sprint(absent), "nobody-1", "X") {
		t.Errorf("another's message answers %v, an absent one %v; they must not be told apart", other, absent)
	}

	client := ts.grpcClient(t)
	if _, err := client.GetMessage(withKey(aliceKey), &smsgwv1.GetMessageRequest{Id: "bob-1"}); status.Code(err) != codes.NotFound {
		t.Errorf("gRPC another's message: %v, want NotFound", err)
	}
	resp, err := client.GetMessage(withKey(bobKey), &smsgwv1.GetMessageRequest{Id: "bob-1"})
	if err != nil || resp.GetMessage().GetStatus() != smsgwv1.MessageStatus_MESSAGE_STATUS_SENT || resp.GetMessage().GetDoneAt() != nil {
		t.Errorf("gRPC own message: %v, %v", resp, err)
	}
}

func TestDomainErrorsMapToHTTPStatus(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	for _, tc := range []struct {
		err     error
		code    int
		message string
	}{
		{smsgw.Unavailable("workflow service", errors.New("dial tcp: refused")), http.StatusServiceUnavailable, "workflow service is unavailable"},
		{smsgw.Errorf(smsgw.ETHROTTLED, "over 10 messages per second"), http.StatusTooManyRequests, "over 10 messages per second"},
		{smsgw.Errorf(smsgw.ECONFLICT, "idempotency key reused with another message"), http.StatusConflict, "idempotency key reused with another message"},
		{smsgw.InsufficientBalance("EUR", 50_000, 20_000), http.StatusPaymentRequired, "insufficient balance: the message costs 0.05 EUR and 0.02 EUR is available; top up the account"},
		{fmt.Errorf("boom: secret detail"), http.StatusInternalServerError, "internal error"},
		{&smsgw.Error{Code: smsgw.EINTERNAL, Message: "store broke", Err: errors.New("secret detail")}, http.StatusInternalServerError, "internal error"},
	} {
		ts.submitter.setFail(tc.err)
		code, body := ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(validBody), nil)
		if code != tc.code || body["message"] != tc.message {
			t.Errorf("%v: status %d, body %v; want %d %q", tc.err, code, body, tc.code, tc.message)
		}
		if strings.Contains(fmt.Sprint(body), "secret") {
			t.Errorf("%v: the cause leaked to the client: %v", tc.err, body)
		}
	}
	if !strings.Contains(ts.logs.String(), "secret detail") {
		t.Error("the cause of an internal error was not logged")
	}
}

func TestRESTAndGRPCShareInterceptors(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	if code, body := ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(validBody), nil); code != http.StatusAccepted {
		t.Fatalf("REST submit: %d %v", code, body)
	}
	if _, err := ts.grpcClient(t).SubmitMessage(withKey(bobKey), &smsgwv1.SubmitMessageRequest{From: "Bob", To: "+61412345678", Text: "x"}); err != nil {
		t.Fatalf("gRPC submit: %v", err)
	}
	ts.do(t, "POST", "/v1/messages", "", strings.NewReader(validBody), nil)

	metrics := ts.metrics(t)
	for _, line := range []string{
		`smsgw_api_requests_total{code="OK",method="smsgw.v1.MessageService/SubmitMessage"} 2`,
		`smsgw_api_requests_total{code="Unauthenticated",method="smsgw.v1.MessageService/SubmitMessage"} 1`,
		`smsgw_api_request_duration_seconds_count{method="smsgw.v1.MessageService/SubmitMessage"} 3`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %s", line)
		}
	}

	var entries []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(ts.logs.String()), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(l), &e) == nil && e["msg"] == "api request" {
			entries = append(entries, e)
		}
	}
	seen := map[string]bool{}
	for _, e := range entries {
		seen[fmt.Sprintf("%v %v %v", e["entry"], e["customer"], e["code"])] = true
		if _, ok := e["duration"]; !ok || e["method"] != "smsgw.v1.MessageService/SubmitMessage" {
			t.Errorf("log entry %v lacks method or duration", e)
		}
	}
	for _, want := range []string{"rest alice OK", "grpc bob OK", "rest  Unauthenticated"} {
		if !seen[want] {
			t.Errorf("no request log for %q; got %v", want, seen)
		}
	}
}

// /readyz names what is not ready and nothing more: not the error's text,
// which names hosts and addresses.
func TestHealthAndReadiness(t *testing.T) {
	cause := errors.New("dial tcp 10.20.30.40:27017: connection refused (mongodb://smsgw:hunter2@mongo.internal)")
	ts := startServer(t, Config{}, smsgw.Unavailable("event store", cause))
	get(t, ts.baseURL+"/healthz", http.StatusOK)
	body := get(t, ts.baseURL+"/readyz", http.StatusServiceUnavailable)
	if strings.TrimSpace(body) != "not ready: event store is unavailable" {
		t.Errorf("/readyz body %q, want the component's name only", body)
	}
	for _, secret := range []string{"10.20.30.40", "hunter2", "mongo.internal", "connection refused"} {
		if strings.Contains(body, secret) {
			t.Errorf("/readyz body %q gives away %q", body, secret)
		}
	}
	if !strings.Contains(ts.logs.String(), "10.20.30.40") {
		t.Error("the cause is not logged for the operator")
	}
	opaque := startServer(t, Config{}, errors.New("temporal at 10.0.0.9:7233: connection refused"))
	if body := get(t, opaque.baseURL+"/readyz", http.StatusServiceUnavailable); strings.Contains(body, "10.0.0.9") {
		t.Errorf("/readyz body %q gives away the address", body)
	}

	ready := startServer(t, Config{}, nil)
	get(t, ready.baseURL+"/readyz", http.StatusOK)
}

// Metrics are not served by the public listener, under any path.
func TestMetricsAreNotOnThePublicListener(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	if code, body := ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(validBody), nil); code != http.StatusAccepted {
		t.Fatalf("submit: %d %v", code, body)
	}
	for _, path := range []string{"/metrics", "/metrics/", "//metrics", "/v1/../metrics", "/Metrics"} {
		req, _ := http.NewRequest("GET", ts.baseURL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(b), "smsgw_api_requests_total") || strings.Contains(string(b), "go_goroutines") {
			t.Errorf("GET %s on the REST listener: %d %.80s", path, resp.StatusCode, b)
		}
	}
	if code, _ := ts.do(t, "GET", "/metrics", "", nil, nil); code != http.StatusNotFound {
		t.Errorf("GET /metrics on the REST listener: %d, want 404", code)
	}
	if m := ts.metrics(t); !strings.Contains(m, "smsgw_api_requests_total") {
		t.Errorf("the metrics listener lacks the API's metrics:\n%.300s", m)
	}
}

func TestNewRefusesMissingDependencies(t *testing.T) {
	if _, err := New(Config{}, Deps{Submitter: &recordingSubmitter{}}); err == nil {
		t.Error("New without Messages and Customers succeeded")
	}
}

func TestBearerToken(t *testing.T) {
	for in, want := range map[string]string{
		"Bearer abc": "abc", "bearer abc": "abc", "  Bearer   abc  ": "abc", "Bearer": "", "Bearer ": "", "Basic abc": "", "abc": "",
	} {
		got, ok := bearerToken(in)
		if got != want || ok != (want != "") {
			t.Errorf("bearerToken(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func get(t testing.TB, url string, wantCode int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		t.Fatalf("GET %s: status %d, want %d; body %s", url, resp.StatusCode, wantCode, b)
	}
	return string(b)
}

// A refusal for the balance says why in a machine-readable way: REST 402
// with the ErrorInfo reason in its details, gRPC FAILED_PRECONDITION with
// the same ErrorInfo.
func TestInsufficientBalanceIsMachineReadable(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	ts.submitter.setFail(smsgw.InsufficientBalance("EUR", 50_000, 0))
	code, body := ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(validBody), nil)
	if code != http.StatusPaymentRequired || !strings.Contains(fmt.Sprint(body["details"]), "reason:INSUFFICIENT_BALANCE") {
		t.Errorf("REST: %d %v, want 402 with the reason INSUFFICIENT_BALANCE", code, body)
	}
	_, err := ts.grpcClient(t).SubmitMessage(withKey(aliceKey), &smsgwv1.SubmitMessageRequest{From: "Shop", To: "+61412345678", Text: "x"})
	st := status.Convert(err)
	var reason string
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			reason = ei.GetReason()
		}
	}
	if st.Code() != codes.FailedPrecondition || reason != smsgw.ReasonInsufficientBalance {
		t.Errorf("gRPC: %v with reason %q, want FAILED_PRECONDITION with INSUFFICIENT_BALANCE", err, reason)
	}
}
