package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	smsgw "github.com/smsgw/smsgw"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// recordingChanger cancels and replaces the messages of a recordReader as
// the lifecycle does: another customer's message is not found, and only a
// message not yet sent may change.
type recordingChanger struct {
	messages recordReader

	mu        sync.Mutex
	cancelled []string
	replaced  []replaceCall
}

type replaceCall struct {
	id, text string
	at       time.Time
}

func (c *recordingChanger) check(customerID, id string) error {
	rec, ok := c.messages[id]
	if !ok || rec.CustomerID != customerID {
		return smsgw.Errorf(smsgw.ENOTFOUND, "no message %s", id)
	}
	if rec.Status != smsgw.StatusAccepted {
		return smsgw.Errorf(smsgw.ECONFLICT, "the message is already final (%s)", rec.Status)
	}
	return nil
}

func (c *recordingChanger) Cancel(_ context.Context, customerID, id string) error {
	if err := c.check(customerID, id); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancelled = append(c.cancelled, id)
	return nil
}

func (c *recordingChanger) Replace(_ context.Context, customerID, id, text string, at time.Time) error {
	if err := c.check(customerID, id); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replaced = append(c.replaced, replaceCall{id, text, at})
	return nil
}

func (c *recordingChanger) calls() ([]string, []replaceCall) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.cancelled...), append([]replaceCall(nil), c.replaced...)
}

func TestSubmitTakesScheduleAtAndClientRef(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	body := `{"from":"Shop","to":"+61412345678","text":"hello","scheduleAt":"2026-12-24T18:00:00+01:00","clientRef":"order 42 / ü"}`
	if code, out := ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(body), nil); code != http.StatusAccepted {
		t.Fatalf("status %d, body %v; want 202", code, out)
	}
	got := ts.submitter.received()
	// fixed date: the API only parses scheduleAt; the fake submitter compares it with no clock
	want := time.Date(2026, 12, 24, 17, 0, 0, 0, time.UTC)
	if len(got) != 1 || !got[0].ScheduleAt.Equal(want) || got[0].ClientRef != "order 42 / ü" {
		t.Fatalf("submitted %+v; want scheduleAt %s and the clientRef", got, want)
	}

	for name, b := range map[string]string{
		"not RFC 3339":       `{"from":"Shop","to":"+61412345678","text":"x","scheduleAt":"24/12/2026 18:00"}`,
		"clientRef too long": `{"from":"Shop","to":"+61412345678","text":"x","clientRef":"` + strings.Repeat("r", 65) + `"}`,
		"clientRef control":  `{"from":"Shop","to":"+61412345678","text":"x","clientRef":"a\tb"}`,
	} {
		if code, out := ts.do(t, "POST", "/v1/messages", aliceKey, strings.NewReader(b), nil); code != http.StatusBadRequest {
			t.Errorf("%s: status %d, body %v; want 400", name, code, out)
		}
	}
	if n := len(ts.submitter.received()); n != 1 {
		t.Errorf("%d messages accepted, want only the valid one", n)
	}

	code, out := ts.do(t, "GET", "/v1/messages/alice-1", aliceKey, nil, nil)
	if code != http.StatusOK || out["clientRef"] != "order-7" {
		t.Errorf("GET: status %d, body %v; want the clientRef order-7", code, out)
	}
}

func TestCancelAndReplaceOverREST(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	if code, out := ts.do(t, "POST", "/v1/messages/alice-queued:cancel", aliceKey, nil, nil); code != http.StatusOK {
		t.Errorf("cancel a queued message: status %d, body %v; want 200", code, out)
	}
	code, out := ts.do(t, "POST", "/v1/messages/alice-1:cancel", aliceKey, strings.NewReader(`{}`), nil)
	if code != http.StatusConflict || out["message"] != "the message is already final (DELIVERED)" {
		t.Errorf("cancel a delivered message: status %d, body %v; want 409 with the reason", code, out)
	}
	if code, out := ts.do(t, "POST", "/v1/messages/bob-1:cancel", aliceKey, nil, nil); code != http.StatusNotFound {
		t.Errorf("cancel another customer's message: status %d, body %v; want 404", code, out)
	}

	b := `{"text":"new words","scheduleAt":"2026-12-24T18:00:00Z"}`
	if code, out := ts.do(t, "POST", "/v1/messages/alice-queued:replace", aliceKey, strings.NewReader(b), nil); code != http.StatusOK {
		t.Errorf("replace: status %d, body %v; want 200", code, out)
	}
	b = `{"scheduleAt":"2026-12-25T08:00:00Z"}`
	if code, out := ts.do(t, "POST", "/v1/messages/alice-queued:replace", aliceKey, strings.NewReader(b), nil); code != http.StatusOK {
		t.Errorf("replace the schedule alone: status %d, body %v; want 200", code, out)
	}
	if code, out := ts.do(t, "POST", "/v1/messages/alice-queued:replace", aliceKey, strings.NewReader(`{}`), nil); code != http.StatusBadRequest {
		t.Errorf("replace with nothing: status %d, body %v; want 400", code, out)
	}
	code, out = ts.do(t, "POST", "/v1/messages/alice-1:replace", aliceKey, strings.NewReader(`{"text":"late"}`), nil)
	if code != http.StatusConflict || !strings.Contains(fmt.Sprint(out["message"]), "final") {
		t.Errorf("replace a delivered message: status %d, body %v; want 409 with the reason", code, out)
	}

	cancelled, replaced := ts.changes.calls()
	if len(cancelled) != 1 || cancelled[0] != "alice-queued" {
		t.Errorf("cancelled %v, want [alice-queued]", cancelled)
	}
	want := []replaceCall{
		// fixed date: the API only parses scheduleAt; the fake changer compares it with no clock
		{"alice-queued", "new words", time.Date(2026, 12, 24, 18, 0, 0, 0, time.UTC)},
		// fixed date: as above
		{"alice-queued", "", time.Date(2026, 12, 25, 8, 0, 0, 0, time.UTC)},
	}
	if len(replaced) != len(want) {
		t.Fatalf("replaced %v, want %v", replaced, want)
	}
	for i := range want {
		if replaced[i].id != want[i].id || replaced[i].text != want[i].text || !replaced[i].at.Equal(want[i].at) {
			t.Errorf("replace %d = %+v, want %+v", i, replaced[i], want[i])
		}
	}
}

func TestCancelAndReplaceOverGRPC(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	client := ts.grpcClient(t)
	_, err := client.CancelMessage(withKey(aliceKey), &smsgwv1.CancelMessageRequest{Id: "alice-1"})
	if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition || st.Message() != "the message is already final (DELIVERED)" {
		t.Errorf("cancel a delivered message: %v; want FAILED_PRECONDITION with the reason", err)
	}
	_, err = client.ReplaceMessage(withKey(bobKey), &smsgwv1.ReplaceMessageRequest{Id: "alice-queued", Text: "x"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("replace another customer's message: %v; want NOT_FOUND", err)
	}
	if _, err := client.CancelMessage(withKey(aliceKey), &smsgwv1.CancelMessageRequest{Id: "alice-queued"}); err != nil {
		t.Errorf("cancel a queued message: %v", err)
	}
}

func TestBatchAnswersPerItem(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	b := `{"messages":[
		{"from":"Shop","to":"+61412345678","text":"one","idempotencyKey":"b-1","clientRef":"r1"},
		{"from":"Shop","to":"not a number","text":"two"},
		{"from":"Shop","to":"+61412345679","text":"three","idempotencyKey":"` + strings.Repeat("k", 256) + `"},
		{"from":"Shop","to":"+61412345670","text":"four"}]}`
	code, out := ts.do(t, "POST", "/v1/messages:batch", aliceKey, strings.NewReader(b), nil)
	if code != http.StatusOK {
		t.Fatalf("status %d, body %v; want 200", code, out)
	}
	results, _ := out["results"].([]any)
	if len(results) != 4 {
		t.Fatalf("results %v, want 4", out)
	}
	item := func(i int) map[string]any { m, _ := results[i].(map[string]any); return m }
	for _, i := range []int{0, 3} {
		acc, _ := item(i)["accepted"].(map[string]any)
		if item(i)["index"] != float64(i) || acc == nil || acc["id"] == "" || acc["encoding"] != "GSM7" || acc["segments"] != float64(1) || item(i)["errorCode"] != "" {
			t.Errorf("item %d = %v; want accepted with its ID, segments and encoding", i, item(i))
		}
	}
	for _, i := range []int{1, 2} {
		if item(i)["accepted"] != nil || item(i)["errorCode"] != "INVALID_ARGUMENT" || item(i)["errorMessage"] == "" {
			t.Errorf("item %d = %v; want refused with INVALID_ARGUMENT and a reason", i, item(i))
		}
	}
	if !strings.Contains(fmt.Sprint(item(1)["errorMessage"]), "not a number") {
		t.Errorf("item 1 reason %q does not name the bad number", item(1)["errorMessage"])
	}
	got := ts.submitter.received()
	keys := map[string]string{}
	for _, m := range got {
		keys[m.Text] = m.IdempotencyKey + "|" + m.ClientRef + "|" + string(m.EntryPoint)
	}
	if len(got) != 2 || keys["one"] != "b-1|r1|rest" || keys["four"] != "||rest" {
		t.Errorf("submitted %v; want items one (key b-1, ref r1) and four", keys)
	}
}

func TestBatchMalformedIs400(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	item := `{"from":"Shop","to":"+61412345678","text":"hello"}`
	many := "[" + strings.Repeat(item+",", MaxBatchSize) + item + "]"
	for name, c := range map[string]struct {
		body   string
		header map[string]string
	}{
		"empty":          {body: `{"messages":[]}`},
		"1,001 messages": {body: `{"messages":` + many + `}`},
		"not JSON":       {body: `{"messages":`},
		"header key":     {body: `{"messages":[` + item + `]}`, header: map[string]string{"Idempotency-Key": "k"}},
	} {
		if code, out := ts.do(t, "POST", "/v1/messages:batch", aliceKey, strings.NewReader(c.body), c.header); code != http.StatusBadRequest {
			t.Errorf("%s: status %d, body %v; want 400", name, code, out)
		}
	}
	if n := len(ts.submitter.received()); n != 0 {
		t.Errorf("%d messages of malformed batches were submitted", n)
	}

	// A full batch is larger than a single request may be, and is taken.
	full := "[" + strings.Repeat(item+",", MaxBatchSize-1) + item + "]"
	code, out := ts.do(t, "POST", "/v1/messages:batch", aliceKey, strings.NewReader(`{"messages":`+full+`}`), nil)
	if results, _ := out["results"].([]any); code != http.StatusOK || len(results) != MaxBatchSize {
		t.Errorf("batch of %d: status %d, %d results; want 200 with a result each", MaxBatchSize, code, len(results))
	}
}

// barrierSubmitter holds every submission until `want` are in flight at
// once, and records the most that ever were.
type barrierSubmitter struct {
	want    int
	mu      sync.Mutex
	now     int
	most    int
	release chan struct{}
}

func (s *barrierSubmitter) Submit(ctx context.Context, m smsgw.Message) (smsgw.Accepted, error) {
	s.mu.Lock()
	s.now++
	s.most = max(s.most, s.now)
	if s.now == s.want {
		select {
		case <-s.release:
		default:
			close(s.release)
		}
	}
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.now--; s.mu.Unlock() }()
	select {
	case <-s.release:
	case <-time.After(30 * time.Second):
		return smsgw.Accepted{}, smsgw.Errorf(smsgw.EINVALID, "never %d in flight at once", s.want)
	}
	return smsgw.Accepted{ID: "id-" + m.Text, Status: smsgw.StatusAccepted, Segments: 1, Encoding: "GSM7"}, nil
}

func TestBatchConcurrencyIsBounded(t *testing.T) {
	sub := &barrierSubmitter{want: 3, release: make(chan struct{})}
	ts := startServerWith(t, Config{BatchWorkers: 3}, nil, sub)
	req := &smsgwv1.SubmitMessagesRequest{}
	for i := range 20 {
		req.Messages = append(req.Messages, &smsgwv1.SubmitMessageRequest{From: "Shop", To: "+61412345678", Text: fmt.Sprint(i)})
	}
	resp, err := ts.grpcClient(t).SubmitMessages(withKey(aliceKey), req)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.GetResults() {
		if r.GetIndex() != int32(i) || r.GetAccepted().GetId() != fmt.Sprintf("id-%d", i) {
			t.Errorf("result %d = %v; want item %d accepted, in request order", i, r, i)
		}
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.most != 3 {
		t.Errorf("at most %d submissions in flight, want exactly the bound 3", sub.most)
	}
}

// refusingSubmitter refuses the messages to the numbers it lists with their
// error, and accepts the others.
type refusingSubmitter struct{ refuse map[string]error }

func (s refusingSubmitter) Submit(_ context.Context, m smsgw.Message) (smsgw.Accepted, error) {
	if err := s.refuse[m.To]; err != nil {
		return smsgw.Accepted{}, err
	}
	return smsgw.Accepted{ID: "id-" + m.Text, Status: smsgw.StatusAccepted, Segments: 1, Encoding: "GSM7"}, nil
}

// Each refused item of a batch carries the machine-readable reason a
// single submission has in its ErrorInfo: over REST and gRPC alike.
func TestBatchItemsCarryTheRefusalReason(t *testing.T) {
	sub := refusingSubmitter{refuse: map[string]error{
		"+61412345671": smsgw.Refused(smsgw.EFORBIDDEN, smsgw.ReasonOptedOut, "to +61412345671 opted out"),
		"+61412345672": smsgw.InsufficientBalance("EUR", 50_000, 0),
		"+61412345673": smsgw.Refused(smsgw.ETHROTTLED, smsgw.ReasonVelocityLimit, "over the limit"),
		"+61412345674": smsgw.Errorf(smsgw.EINVALID, "no route"),
	}}
	ts := startServerWith(t, Config{}, nil, sub)
	want := []struct{ code, reason string }{
		{"", ""},
		{"PERMISSION_DENIED", smsgw.ReasonOptedOut},
		{"FAILED_PRECONDITION", smsgw.ReasonInsufficientBalance},
		{"RESOURCE_EXHAUSTED", smsgw.ReasonVelocityLimit},
		{"INVALID_ARGUMENT", ""},
	}
	var items []string
	req := &smsgwv1.SubmitMessagesRequest{}
	for i := range want {
		to := fmt.Sprintf("+6141234567%d", i)
		items = append(items, fmt.Sprintf(`{"from":"Shop","to":%q,"text":"m%d"}`, to, i))
		req.Messages = append(req.Messages, &smsgwv1.SubmitMessageRequest{From: "Shop", To: to, Text: fmt.Sprintf("m%d", i)})
	}
	code, out := ts.do(t, "POST", "/v1/messages:batch", aliceKey, strings.NewReader(`{"messages":[`+strings.Join(items, ",")+`]}`), nil)
	results, _ := out["results"].([]any)
	if code != http.StatusOK || len(results) != len(want) {
		t.Fatalf("REST batch: status %d, %v", code, out)
	}
	resp, err := ts.grpcClient(t).SubmitMessages(withKey(aliceKey), req)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		item, _ := results[i].(map[string]any)
		if w.code != "" && item["errorCode"] != w.code {
			t.Errorf("REST item %d: errorCode %v, want %s", i, item["errorCode"], w.code)
		}
		if got := fmt.Sprint(item["errorReason"]); got != w.reason && !(w.reason == "" && item["errorReason"] == nil) {
			t.Errorf("REST item %d: errorReason %q, want %q (%v)", i, got, w.reason, item)
		}
		if got := resp.GetResults()[i].GetErrorReason(); got != w.reason {
			t.Errorf("gRPC item %d: error_reason %q, want %q", i, got, w.reason)
		}
	}
}
