package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/connectors/smppclient"
	"github.com/smsgw/smsgw/connectors/smpptest"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/mongostore"
	"github.com/smsgw/smsgw/workflows"
)

// These tests run the send activity and the receipt matcher against the SMSC
// simulator, each fault mode in turn, with the correlations in a real
// MongoDB-wire store (FerretDB from testenv). Only the Temporal signal is
// recorded in memory; the connector's own tests (worker) signal real workflows.

const wait = 10 * time.Second

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// openStore opens the store of a test's own database on the MongoDB-wire
// server, closed when the test ends.
func openStore(t *testing.T, opts ...mongostore.Option) *mongostore.Store {
	t.Helper()
	store, err := mongostore.Open(ctxT(t), testenv.MongoURI(t), testenv.MongoDatabase(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close(context.Background()) })
	return store
}

// signals records the receipts signalled to message workflows.
type signals struct {
	mu    sync.Mutex
	got   []workflows.ReceiptSignal
	ids   []string
	ch    chan struct{}
	ended map[string]bool // messages whose workflows have ended
}

func newSignals() *signals { return &signals{ch: make(chan struct{}, 100)} }

func (s *signals) SignalReceipt(_ context.Context, messageID string, r workflows.ReceiptSignal) error {
	s.mu.Lock()
	if s.ended[messageID] {
		s.mu.Unlock()
		return fmt.Errorf("signal %s: %w", messageID, smsgw.ErrMessageEnded)
	}
	s.got = append(s.got, r)
	s.ids = append(s.ids, messageID)
	s.mu.Unlock()
	s.ch <- struct{}{}
	return nil
}

// waitN waits for n signals in all and returns them.
func (s *signals) waitN(t *testing.T, n int) ([]string, []workflows.ReceiptSignal) {
	t.Helper()
	deadline := time.After(wait)
	for {
		s.mu.Lock()
		if len(s.got) >= n {
			ids, got := slices.Clone(s.ids), slices.Clone(s.got)
			s.mu.Unlock()
			return ids, got
		}
		s.mu.Unlock()
		select {
		case <-s.ch:
		case <-deadline:
			t.Fatalf("%d receipts signalled, want %d", len(s.got), n)
		}
	}
}

func (s *signals) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// handler passes receipts to the matcher; MO have no place in these tests.
type handler struct{ *Matcher }

func (handler) HandleMO(context.Context, smsgw.MO) error { return errors.New("no MO expected") }

// rig is one connector under test: simulator, client, matcher, sender.
type rig struct {
	smsc    *smpptest.SMSC
	client  *smppclient.Client
	signals *signals
	matcher *Matcher
	reg     *prometheus.Registry
	sender  *Sender
}

func startSMSC(t *testing.T, cfg smpptest.Config) (*smpptest.SMSC, string) {
	t.Helper()
	if cfg.ReceiptDelay == 0 {
		cfg.ReceiptDelay = 10 * time.Millisecond
	}
	cfg.ReceiptRetryInterval = 50 * time.Millisecond
	cfg.Logger = testLogger(t).With("side", "smsc")
	smsc := smpptest.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- smsc.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return smsc, ln.Addr().String()
}

// newRig starts a simulator and a connector configured by co (ID and
// address filled in), bound before it returns.
// connectorStore is what a connector keeps in the event store.
type connectorStore interface {
	Correlations
	Intents
}

func newRig(t *testing.T, store connectorStore, sim smpptest.Config, co config.Connector) *rig {
	t.Helper()
	smsc, addr := startSMSC(t, sim)
	co.ID, co.Address = strings.ReplaceAll(t.Name(), "/", "-"), addr
	if co.SystemID == "" {
		co.SystemID = "smsgw"
	}
	r := &rig{smsc: smsc, signals: newSignals(), reg: prometheus.NewRegistry()}
	r.matcher = NewMatcher(store, r.signals, testLogger(t), r.reg)
	client, err := smppclient.New(smppclient.Config{
		ID: co.ID, Addr: co.Address, SystemID: co.SystemID, Binds: co.Binds, WindowSize: co.WindowSize,
		ResponseTimeout: 2 * time.Second, RebindMin: 20 * time.Millisecond, RebindMax: 100 * time.Millisecond,
		ReceiptIDFormat: co.ReceiptIDFormat, SubmitIDFormat: co.SubmitIDFormat,
	}, handler{r.matcher}, testLogger(t).With("side", "client"), r.reg)
	if err != nil {
		t.Fatal(err)
	}
	r.client = client
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- client.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := client.WaitBound(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	resubmits, err := NewResubmitsCounter(r.reg)
	if err != nil {
		t.Fatal(err)
	}
	r.sender = &Sender{Connector: co, Bind: client, Matcher: r.matcher, Intents: store, Resubmits: resubmits, Logger: testLogger(t), Now: time.Now}
	return r
}

// send runs the send activity once, as Temporal would, with progress from
// an earlier attempt when given; it returns the result and the progress
// heartbeated by this attempt.
func (r *rig) send(t *testing.T, in activities.SendInput, earlier *sendProgress) (activities.SendResult, sendProgress, error) {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(tlog.NewStructuredLogger(testLogger(t)))
	env := ts.NewTestActivityEnvironment()
	activities.RegisterSend(env, r.sender.Send)
	if earlier != nil {
		env.SetHeartbeatDetails(*earlier)
	}
	var mu sync.Mutex
	var beat sendProgress
	env.SetOnActivityHeartbeatListener(func(_ *activity.Info, d converter.EncodedValues) {
		mu.Lock()
		defer mu.Unlock()
		_ = d.Get(&beat)
	})
	val, err := env.ExecuteActivity(activities.SendName, in)
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		return activities.SendResult{}, beat, err
	}
	var res activities.SendResult
	if err := val.Get(&res); err != nil {
		t.Fatal(err)
	}
	return res, beat, nil
}

func message(id string, texts ...string) activities.SendInput {
	in := activities.SendInput{MessageID: id, From: "ACME", To: "+61412345678", Validity: time.Hour}
	for i, text := range texts {
		in.Parts = append(in.Parts, smsgw.Part{Seq: i + 1, ShortMessage: []byte(text)})
	}
	return in
}

// appError returns the ApplicationError in err, failing the test when there is none.
func appError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is no ApplicationError", err)
	}
	return ae
}

func u8(v uint8) *uint8 { return &v }

func TestUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a MongoDB-wire server (testenv starts FerretDB)")
	}
	store := openStore(t, mongostore.WithLogger(testLogger(t)))

	t.Run("parts are correlated and their receipts matched", func(t *testing.T) {
		r := newRig(t, store, smpptest.Config{IDFormat: smsgw.UpstreamIDDecimal}, config.Connector{ReceiptIDFormat: smsgw.UpstreamIDDecimal})
		res, beat, err := r.send(t, message("msg-parts", "first", "second"), nil)
		if err != nil {
			t.Fatal(err)
		}
		// Heartbeats reach the server throttled, so the last one seen may lag.
		if len(res.UpstreamIDs) != 2 || res.SentAt.IsZero() || len(beat.UpstreamIDs) == 0 || !slices.Equal(beat.UpstreamIDs, res.UpstreamIDs[:len(beat.UpstreamIDs)]) {
			t.Fatalf("result %+v, heartbeat %+v", res, beat)
		}
		ids, got := r.signals.waitN(t, 2)
		for i, s := range got {
			want := slices.Index(res.UpstreamIDs, s.Receipt.UpstreamID) + 1
			if ids[i] != "msg-parts" || want == 0 || s.Segment != want || s.Receipt.Stat != "DELIVRD" {
				t.Errorf("signal %d to %s: %+v", i, ids[i], s)
			}
		}
		for _, s := range r.smsc.Submits() {
			if s.SourceAddr != "ACME" || s.SourceTON != 5 || s.SourceNPI != 0 || s.DestAddr != "61412345678" || s.DestTON != 1 || s.DestNPI != 1 ||
				s.RegisteredDelivery != 1 || s.ValidityPeriod != "000000010000000R" {
				t.Errorf("submit_sm %+v", s)
			}
		}
	})

	t.Run("addressing and data_coding overrides", func(t *testing.T) {
		r := newRig(t, store, smpptest.Config{}, config.Connector{
			SourceTON: u8(0), SourceNPI: u8(1), DestTON: u8(0), DestNPI: u8(9),
			DataCoding: map[string]uint8{"UCS2": 0x18, "LATIN1": 0x00},
		})
		in := message("msg-overrides", "\x00h\x00i")
		in.Parts[0].DataCoding = 0x08
		if _, _, err := r.send(t, in, nil); err != nil {
			t.Fatal(err)
		}
		s := r.smsc.Submits()[0]
		if s.SourceTON != 0 || s.SourceNPI != 1 || s.DestTON != 0 || s.DestNPI != 9 || s.DataCoding != 0x18 || s.SourceAddr != "ACME" {
			t.Errorf("submit_sm %+v", s)
		}
	})

	t.Run("re-route error", func(t *testing.T) {
		refuse := smpptest.Config{SubmitStatus: func(string, int) uint32 { return 0x0B }} // ESME_RINVDSTADR
		r := newRig(t, store, refuse, config.Connector{RerouteErrors: []string{"ESME_RINVDSTADR", "err:034"}})
		_, _, err := r.send(t, message("msg-reroute", "hi"), nil)
		ae := appError(t, err)
		var detail activities.SendFailure
		if ae.Type() != "Reroute" || ae.Type() != activities.ErrTypeReroute || !ae.NonRetryable() || ae.Details(&detail) != nil ||
			detail.CommandStatus != 0x0B || detail.StatusName != "ESME_RINVDSTADR" {
			t.Errorf("error %v (type %s, non-retryable %v, detail %+v)", err, ae.Type(), ae.NonRetryable(), detail)
		}

		plain := newRig(t, store, refuse, config.Connector{})
		_, _, err = plain.send(t, message("msg-rejected", "hi"), nil)
		if ae := appError(t, err); ae.Type() != activities.ErrTypeSubmitRejected || !ae.NonRetryable() {
			t.Errorf("without rerouteErrors: %v (type %s)", err, ae.Type())
		}
	})

	t.Run("throttled is retried", func(t *testing.T) {
		r := newRig(t, store, smpptest.Config{ThrottleEvery: 2}, config.Connector{})
		_, _, err := r.send(t, message("msg-throttled", "one", "two"), nil)
		ae := appError(t, err)
		if ae.Type() != activities.ErrTypeSubmitRetry || ae.NonRetryable() || !strings.Contains(ae.Message(), "ESME_RTHROTTLED") {
			t.Fatalf("throttled: %v (type %s)", err, ae.Type())
		}
	})

	t.Run("in doubt fails by default", func(t *testing.T) {
		r := newRig(t, store, smpptest.Config{DropAfter: 1}, config.Connector{})
		_, _, err := r.send(t, message("msg-doubt", "hi"), nil)
		ae := appError(t, err)
		if ae.Type() != activities.ErrTypeInDoubt || !ae.NonRetryable() || !strings.Contains(ae.Message(), "inDoubt policy fail: not sent again") {
			t.Errorf("in doubt: %v (type %s)", err, ae.Type())
		}
	})

	// A message of three parts; the connection drops on the second. With
	// inDoubt: resubmit the attempt is retried, and the retry sends the
	// second part again and the third, never the first.
	t.Run("an accepted part is never sent again", func(t *testing.T) {
		r := newRig(t, store, smpptest.Config{DropAfter: 2}, config.Connector{InDoubt: config.InDoubtResubmit})
		in := message("msg-resume", "part one", "part two", "part three")
		_, beat, err := r.send(t, in, nil)
		ae := appError(t, err)
		if ae.Type() != activities.ErrTypeSubmitRetry || ae.NonRetryable() || !strings.Contains(ae.Message(), "part 2 of 3") ||
			!strings.Contains(ae.Message(), "inDoubt policy resubmit") {
			t.Fatalf("first attempt: %v (type %s)", err, ae.Type())
		}
		if len(beat.UpstreamIDs) != 1 {
			t.Fatalf("heartbeat after the first attempt: %+v, want part one's ID", beat)
		}
		if err := r.smsc.WaitBinds(ctxT(t), 2); err != nil { // bound again after the drop
			t.Fatal(err)
		}
		if err := r.client.WaitBound(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		res, _, err := r.send(t, in, &beat)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.UpstreamIDs) != 3 || res.UpstreamIDs[0] != beat.UpstreamIDs[0] {
			t.Errorf("result %+v after progress %+v", res, beat)
		}
		count := map[string]int{}
		for _, s := range r.smsc.Submits() {
			count[string(s.ShortMessage)]++
		}
		if count["part one"] != 1 || count["part two"] != 2 || count["part three"] != 1 {
			t.Errorf("submit_sm per part %v: part one must go exactly once", count)
		}
		if _, got := r.signals.waitN(t, 3); len(got) != 3 {
			t.Errorf("receipts %+v", got)
		}
	})

	// A one-part message costs no heartbeat: its correlation is written at
	// once, and an attempt run again (its result lost) takes the part's ID
	// from it instead of sending it again.
	t.Run("the last part is correlated instead of heartbeated", func(t *testing.T) {
		r := newRig(t, store, smpptest.Config{}, config.Connector{})
		in := message("msg-one-part", "only part")
		res, beat, err := r.send(t, in, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.UpstreamIDs) != 1 || len(beat.UpstreamIDs) != 0 {
			t.Fatalf("result %+v, heartbeat %+v: want one ID and no heartbeat", res, beat)
		}
		again, _, err := r.send(t, in, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(again.UpstreamIDs, res.UpstreamIDs) || len(r.smsc.Submits()) != 1 {
			t.Errorf("second attempt %+v after %d submit_sm, want the same ID after one", again, len(r.smsc.Submits()))
		}
	})

	// The attempt ended after part two's submit_sm_resp, before its
	// heartbeat reached Temporal (heartbeats are throttled): the retry
	// knows only part one from its progress. Part two's intent and
	// correlation are recorded, so the retry takes its ID instead of
	// submitting it again.
	t.Run("a part accepted before its heartbeat went out is not sent again", func(t *testing.T) {
		r := newRig(t, store, smpptest.Config{ThrottleEvery: 3}, config.Connector{})
		in := message("msg-lost-beat", "part one", "part two", "part three")
		_, beat, err := r.send(t, in, nil)
		if ae := appError(t, err); ae.Type() != activities.ErrTypeSubmitRetry || !strings.Contains(ae.Message(), "part 3 of 3") {
			t.Fatalf("first attempt: %v (type %s)", err, ae.Type())
		}
		if len(beat.UpstreamIDs) != 2 {
			t.Fatalf("heartbeat after the first attempt: %+v", beat)
		}
		lagging := sendProgress{UpstreamIDs: beat.UpstreamIDs[:1]}
		res, _, err := r.send(t, in, &lagging)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.UpstreamIDs[:2], beat.UpstreamIDs) || len(res.UpstreamIDs) != 3 || len(res.Resubmitted) != 0 {
			t.Errorf("result %+v, want the IDs %v and a third", res, beat.UpstreamIDs)
		}
		accepted := map[string]int{}
		for _, s := range r.smsc.Submits() {
			if s.Status == 0 {
				accepted[string(s.ShortMessage)]++
			}
		}
		if accepted["part one"] != 1 || accepted["part two"] != 1 || accepted["part three"] != 1 {
			t.Errorf("accepted submit_sm per part %v, want one each", accepted)
		}
	})

	// An attempt that recorded a part's intent and then ended with no
	// answer recorded (the process died after the submit_sm, or before the
	// correlation was written) leaves the part in doubt: the retry applies
	// the connector's in-doubt policy instead of sending it as new.
	t.Run("a part in doubt after an earlier attempt follows the in-doubt policy", func(t *testing.T) {
		for _, policy := range []string{config.InDoubtFail, config.InDoubtResubmit} {
			r := newRig(t, store, smpptest.Config{}, config.Connector{InDoubt: policy})
			id := "msg-doubt-after-crash-" + policy
			if first, err := store.RecordSubmitIntent(ctxT(t), r.sender.Connector.ID, id, 1); err != nil || !first {
				t.Fatalf("intent of the crashed attempt: %v, %v", first, err)
			}
			res, _, err := r.send(t, message(id, "hi"), nil)
			if policy == config.InDoubtFail {
				if ae := appError(t, err); ae.Type() != activities.ErrTypeInDoubt || !ae.NonRetryable() || !strings.Contains(ae.Message(), "inDoubt policy fail") {
					t.Errorf("inDoubt fail: %v", err)
				}
				if n := len(r.smsc.Submits()); n != 0 {
					t.Errorf("inDoubt fail: %d submit_sm, want none", n)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.UpstreamIDs) != 1 || !slices.Equal(res.Resubmitted, []int{1}) || len(r.smsc.Submits()) != 1 {
				t.Errorf("inDoubt resubmit: result %+v after %d submit_sm", res, len(r.smsc.Submits()))
			}
			if got := testutil.ToFloat64(r.sender.Resubmits.WithLabelValues(r.sender.Connector.ID)); got != 1 {
				t.Errorf("resubmits counted %v, want 1", got)
			}
		}
	})

	// Every resubmission of a part is recorded, those of attempts that
	// failed in doubt again included: the result lists the part once per
	// submission after the first (found by the soak: a carrier silent for
	// longer than one attempt).
	t.Run("each resubmission of a part in doubt is recorded", func(t *testing.T) {
		r := newRig(t, store, smpptest.Config{}, config.Connector{InDoubt: config.InDoubtResubmit})
		in := message("msg-doubt-twice", "hi")
		r.smsc.SetFaults(smpptest.Faults{Silent: true})
		_, _, err := r.send(t, in, nil) // sent, no answer
		if ae := appError(t, err); ae.Type() != activities.ErrTypeSubmitRetry {
			t.Fatalf("first attempt: %v", err)
		}
		_, _, err = r.send(t, in, nil) // sent again, no answer again
		if ae := appError(t, err); ae.Type() != activities.ErrTypeSubmitRetry {
			t.Fatalf("second attempt: %v", err)
		}
		r.smsc.SetFaults(smpptest.Faults{})
		res, _, err := r.send(t, in, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(r.smsc.Submits()); n != 3 || !slices.Equal(res.Resubmitted, []int{1, 1}) {
			t.Errorf("%d submit_sm, result %+v: want 3 submissions and the part listed as resubmitted twice", n, res)
		}
	})

	// A part refused for certain (throttled) or never written (not bound)
	// did not reach upstream: its retry is no resubmission.
	t.Run("a part refused is sent again as new", func(t *testing.T) {
		r := newRig(t, store, smpptest.Config{SubmitStatus: func(_ string, n int) uint32 {
			if n == 1 {
				return 0x58 // ESME_RTHROTTLED
			}
			return 0
		}}, config.Connector{})
		in := message("msg-refused-then-new", "hi")
		if _, _, err := r.send(t, in, nil); appError(t, err).Type() != activities.ErrTypeSubmitRetry {
			t.Fatalf("first attempt: %v", err)
		}
		res, _, err := r.send(t, in, nil)
		if err != nil || len(res.Resubmitted) != 0 || len(res.UpstreamIDs) != 1 {
			t.Errorf("retry: %+v, %v", res, err)
		}
	})

	t.Run("not bound", func(t *testing.T) {
		r := newRig(t, store, smpptest.Config{}, config.Connector{})
		r.smsc.Stop()
		deadline := time.Now().Add(wait)
		for r.client.Bound() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		_, _, err := r.send(t, message("msg-unbound", "hi"), nil)
		if ae := appError(t, err); ae.Type() != activities.ErrTypeNotBound || ae.NonRetryable() {
			t.Errorf("unbound: %v (type %s)", err, ae.Type())
		}
	})

	t.Run("duplicate receipts are signalled once", func(t *testing.T) {
		r := newRig(t, store, smpptest.Config{DuplicateReceipts: true}, config.Connector{})
		if _, _, err := r.send(t, message("msg-dup", "hi"), nil); err != nil {
			t.Fatal(err)
		}
		if err := r.smsc.WaitReceiptAttempts(ctxT(t), 2); err != nil {
			t.Fatal(err)
		}
		for _, a := range r.smsc.ReceiptAttempts() {
			if a.Status != 0 || a.Err != nil {
				t.Errorf("receipt attempt %+v: both deliveries are acknowledged", a)
			}
		}
		if n := r.signals.count(); n != 1 {
			t.Errorf("%d signals for one receipt delivered twice", n)
		}
		if got := counterValue(t, r.reg, "smsgw_receipts_total", "duplicate"); got != 1 {
			t.Errorf("receipts{duplicate} = %v", got)
		}
	})

	t.Run("receipt on another bind", func(t *testing.T) {
		r := newRig(t, store, smpptest.Config{ReceiptOtherBind: true}, config.Connector{Binds: 2})
		deadline := time.Now().Add(wait)
		for r.client.BoundSessions() < 2 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		res, _, err := r.send(t, message("msg-otherbind", "hi"), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids, got := r.signals.waitN(t, 1)
		if ids[0] != "msg-otherbind" || got[0].Receipt.UpstreamID != res.UpstreamIDs[0] {
			t.Errorf("signal %s %+v", ids[0], got[0])
		}
		if err := r.smsc.WaitReceiptAttempts(ctxT(t), 1); err != nil {
			t.Fatal(err)
		}
		if sub, att := r.smsc.Submits()[0], r.smsc.ReceiptAttempts()[0]; sub.Bind == att.Bind {
			t.Errorf("receipt came on the submitting bind %d", sub.Bind)
		}
	})

	t.Run("receipt before the submit response", func(t *testing.T) {
		r := newRig(t, store, smpptest.Config{ReceiptBeforeResp: true, IDFormat: smsgw.UpstreamIDHex}, config.Connector{ReceiptIDFormat: smsgw.UpstreamIDHex})
		res, _, err := r.send(t, message("msg-early", "hi"), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids, got := r.signals.waitN(t, 1)
		if ids[0] != "msg-early" || got[0].Receipt.UpstreamID != res.UpstreamIDs[0] {
			t.Errorf("signal %s %+v", ids[0], got[0])
		}
	})
}

// Expired correlations go when the server cannot expire them itself.
func TestExpireCorrelations(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a MongoDB-wire server (testenv starts FerretDB)")
	}
	store := openStore(t, mongostore.WithCorrelationTTL(time.Hour))
	if store.ServerTTL() {
		t.Skip("this server expires correlations itself (TTL index)")
	}
	ctx := ctxT(t)
	old := smsgw.Correlation{ConnectorID: "c", UpstreamID: "old", MessageID: "m1", Segment: 1, CreatedAt: time.Now().Add(-2 * time.Hour)}
	fresh := smsgw.Correlation{ConnectorID: "c", UpstreamID: "fresh", MessageID: "m2", Segment: 1, CreatedAt: time.Now()}
	for _, c := range []smsgw.Correlation{old, fresh} {
		if err := store.PutCorrelation(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	m := NewMatcher(store, newSignals(), testLogger(t), prometheus.NewRegistry())
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { m.Rematch(rctx, time.Hour, 0); close(done) }() // the first pass expires
	deadline := time.Now().Add(wait)
	for {
		_, ok, err := store.LookupCorrelation(ctx, "c", "old")
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the expired correlation is still there")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-done
	if _, ok, err := store.LookupCorrelation(ctx, "c", "fresh"); err != nil || !ok {
		t.Errorf("the fresh correlation went too: %v, %v", ok, err)
	}
	if n, err := m.ExpireCorrelations(ctx); err != nil || n != 0 {
		t.Errorf("ExpireCorrelations again = %d, %v", n, err)
	}
}

// serverTTL is a store whose server expires correlations itself.
type serverTTL struct {
	Correlations
	called bool
}

func (s *serverTTL) ServerTTL() bool { return true }
func (s *serverTTL) ExpireCorrelations(context.Context, time.Time) (int64, error) {
	s.called = true
	return 0, nil
}

func TestExpireLeavesServerTTLAlone(t *testing.T) {
	s := &serverTTL{}
	m := NewMatcher(s, newSignals(), testLogger(t), prometheus.NewRegistry())
	if _, err := m.ExpireCorrelations(context.Background()); err != nil || s.called {
		t.Errorf("ExpireCorrelations called the store of a server with TTL indexes (%v)", err)
	}
}

func TestRecentSetForgetsTheOldest(t *testing.T) {
	var s recentSet
	for i := range recentReceipts + 10 {
		s.add(fmt.Sprint(i))
	}
	if s.has("0") || s.has("9") || !s.has("10") || !s.has(fmt.Sprint(recentReceipts+9)) || s.len() != recentReceipts {
		t.Errorf("after %d adds: %d keys", recentReceipts+10, s.len())
	}
}

// counterValue returns the value of a counter whose result label is result.
func counterValue(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestRaceSignalsOnce runs the send side and the receipt side of the race at
// the same time, many times over: every receipt reaches its message exactly
// once, whichever side comes second.
func TestRaceSignalsOnce(t *testing.T) {
	store := openStore(t)
	sig := &signals{ch: make(chan struct{}, 1000)}
	m := NewMatcher(store, sig, testLogger(t), prometheus.NewRegistry())
	const rounds = 40
	for i := range rounds {
		id := fmt.Sprintf("u%d", i)
		c := smsgw.Correlation{ConnectorID: "race", UpstreamID: id, MessageID: "m" + id, Segment: 1, CreatedAt: time.Now()}
		r := smsgw.Receipt{ConnectorID: "race", UpstreamID: id, Stat: "DELIVRD", ReceivedAt: time.Now()}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = m.Correlate(ctxT(t), c) }()
		go func() { defer wg.Done(); _ = m.HandleReceipt(ctxT(t), r) }()
		wg.Wait()
	}
	// Whichever side came second delivered the receipt, without the
	// rematcher; a pass of the rematcher then delivers nothing again.
	m.Settle()
	check := func(when string) {
		t.Helper()
		per := map[string]int{}
		sig.mu.Lock()
		for _, id := range sig.ids {
			per[id]++
		}
		sig.mu.Unlock()
		for i := range rounds {
			if n := per[fmt.Sprintf("mu%d", i)]; n != 1 {
				t.Errorf("%s: message mu%d got %d signals, want 1", when, i, n)
			}
		}
	}
	check("after the race")
	if err := m.RematchOnce(ctxT(t), 0); err != nil {
		t.Fatal(err)
	}
	check("after a rematch pass")
}

// Receipts that stay parked (their upstream IDs were never given to a
// message, and they wait for an operator) do not keep the rematcher from
// the others: each pass goes on from where the last one stopped, so a
// receipt whose correlation was written without the send's look for it
// (the sender died in between) is delivered however many sort before it.
func TestRematcherReachesEveryParkedReceipt(t *testing.T) {
	store := openStore(t)
	ctx := ctxT(t)
	sig := newSignals()
	m := NewMatcher(store, sig, testLogger(t), prometheus.NewRegistry())
	m.rematchPage = 2
	for i := range 5 {
		if err := m.HandleReceipt(ctx, smsgw.Receipt{ConnectorID: "up", UpstreamID: fmt.Sprintf("a-stray-%d", i), Stat: "DELIVRD", ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.HandleReceipt(ctx, smsgw.Receipt{ConnectorID: "up", UpstreamID: "z-early", Stat: "DELIVRD", ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := store.PutCorrelation(ctx, smsgw.Correlation{ConnectorID: "up", UpstreamID: "z-early", MessageID: "m1", Segment: 1, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for pass := 1; pass <= 3; pass++ { // six parked, two a pass
		if err := m.RematchOnce(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	if ids, _ := sig.waitN(t, 1); ids[0] != "m1" {
		t.Fatalf("signalled %v, want m1", ids)
	}
	if n, err := store.CountParked(ctx); err != nil || n != 5 {
		t.Errorf("%d parked (%v), want the 5 strays", n, err)
	}
}

// A receipt that comes after its message ended (an SMSC's duplicate that
// reaches another replica, or a receipt later than the validity) finds no
// correlation: the store moved it to the archive once the final status was
// recorded. It is parked, not signalled, and dropped as late once it has
// waited LateAfter; a receipt for an upstream ID never correlated stays
// parked.
func TestLateReceiptIsDroppedNotParkedForever(t *testing.T) {
	store := openStore(t)
	ctx := ctxT(t)
	sig := newSignals()
	reg := prometheus.NewRegistry()
	m := NewMatcher(store, sig, testLogger(t), reg)
	c := smsgw.Correlation{ConnectorID: "up", UpstreamID: "u1", MessageID: "m1", Segment: 1, CreatedAt: time.Now()}
	if err := m.Correlate(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Its look for early receipts ends first: on a loaded machine it could
	// otherwise come after the duplicate below is parked, and take it.
	m.Settle()
	r := smsgw.Receipt{ConnectorID: "up", UpstreamID: "u1", Stat: "DELIVRD", ReceivedAt: time.Now()}
	if err := m.HandleReceipt(ctx, r); err != nil {
		t.Fatal(err)
	}
	sig.waitN(t, 1)
	if err := store.AppendEvents(ctx, smsgw.NewEvent("m1", "c1", 5, smsgw.EventFinal, "final", time.Now(), nil)); err != nil {
		t.Fatal(err)
	}
	// Its correlation moves to the archive (the store does it within a
	// second on its own).
	if err := store.RetireEnded(ctx); err != nil {
		t.Fatal(err)
	}

	// The SMSC sends it again to another replica, an hour after the first.
	otherReg := prometheus.NewRegistry()
	other := NewMatcher(store, sig, testLogger(t), otherReg)
	other.lateAfter = time.Hour
	dup := r
	dup.ReceivedAt = time.Now()
	stray := smsgw.Receipt{ConnectorID: "up", UpstreamID: "never-sent", Stat: "DELIVRD", ReceivedAt: time.Now()}
	for _, x := range []smsgw.Receipt{dup, stray} {
		if err := other.HandleReceipt(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.RematchOnce(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if n, err := store.CountParked(ctx); err != nil || n != 2 {
		t.Fatalf("%d parked (%v), want both while they are recent", n, err)
	}
	// Past LateAfter, the late one goes; the stray stays for an operator.
	other.lateAfter = 0
	other.now = func() time.Time { return time.Now().Add(time.Second) }
	if err := other.RematchOnce(ctx, 0); err != nil {
		t.Fatal(err)
	}
	left, err := store.ListParked(ctx, time.Now().Add(time.Minute), "", 10)
	if err != nil || len(left) != 1 || left[0].UpstreamID != "never-sent" {
		t.Fatalf("parked after the pass: %+v %v, want only the stray", left, err)
	}
	if n := sig.count(); n != 1 {
		t.Errorf("%d signals, want the first receipt's only", n)
	}
	if got := counterValue(t, reg, "smsgw_receipts_total", "matched"); got != 1 {
		t.Errorf("matched %v, want 1", got)
	}
	if got := counterValue(t, otherReg, "smsgw_receipts_total", "late"); got != 1 {
		t.Errorf("late %v, want 1", got)
	}
}

// lookups counts the store's correlation lookups.
type lookups struct {
	Correlations
	mu sync.Mutex
	n  int
}

func (l *lookups) LookupCorrelation(ctx context.Context, connectorID, upstreamID string) (smsgw.Correlation, bool, error) {
	l.mu.Lock()
	l.n++
	l.mu.Unlock()
	return l.Correlations.LookupCorrelation(ctx, connectorID, upstreamID)
}

// A receipt that comes back to the process that sent its message is
// matched from memory, without a lookup. Once that message has ended, a
// receipt for the same upstream ID (which the SMSC gave again to a message
// another replica sent) takes the store's path and reaches the new message.
func TestReceiptForOwnSendIsMatchedFromMemory(t *testing.T) {
	store := openStore(t)
	ctx := ctxT(t)
	counted := &lookups{Correlations: store}
	sig := newSignals()
	m := NewMatcher(counted, sig, testLogger(t), prometheus.NewRegistry())
	if err := m.Correlate(ctx, smsgw.Correlation{ConnectorID: "up", UpstreamID: "u1", MessageID: "m1", Segment: 2, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := m.HandleReceipt(ctx, smsgw.Receipt{ConnectorID: "up", UpstreamID: "u1", Stat: "DELIVRD", ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ids, got := sig.waitN(t, 1)
	if ids[0] != "m1" || got[0].Segment != 2 || counted.n != 0 {
		t.Fatalf("signalled %v segment %d after %d lookups, want m1, segment 2, no lookup", ids, got[0].Segment, counted.n)
	}

	sig.mu.Lock()
	sig.ended = map[string]bool{"m1": true}
	sig.mu.Unlock()
	other := NewMatcher(store, sig, testLogger(t), prometheus.NewRegistry())
	if err := other.Correlate(ctx, smsgw.Correlation{ConnectorID: "up", UpstreamID: "u1", MessageID: "m2", Segment: 1, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := m.HandleReceipt(ctx, smsgw.Receipt{ConnectorID: "up", UpstreamID: "u1", Stat: "UNDELIV", ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ids, _ = sig.waitN(t, 2)
	if ids[1] != "m2" || counted.n != 1 {
		t.Errorf("the second receipt went to %s after %d lookups, want m2 after 1", ids[1], counted.n)
	}
}

// A receipt whose correlation in the store names a message that has ended
// (not yet moved to the archive, or left there by a crash) is not taken as
// that message's: it is parked, and reaches the newer message the SMSC gave
// the same upstream ID once that one's correlation is written.
func TestReceiptForAnEndedMessagesCorrelationWaitsForTheNewerMessage(t *testing.T) {
	store := openStore(t, mongostore.WithRetireEvery(time.Hour))
	ctx := ctxT(t)
	sig := newSignals()
	sig.ended = map[string]bool{"old": true}
	m := NewMatcher(store, sig, testLogger(t), prometheus.NewRegistry())
	if err := store.PutCorrelation(ctx, smsgw.Correlation{ConnectorID: "up", UpstreamID: "u1", MessageID: "old", Segment: 1}); err != nil {
		t.Fatal(err)
	}
	if err := m.HandleReceipt(ctx, smsgw.Receipt{ConnectorID: "up", UpstreamID: "u1", Stat: "DELIVRD", ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if n, err := store.CountParked(ctx); err != nil || n != 1 || sig.count() != 0 {
		t.Fatalf("%d parked (%v), %d signals; want the receipt parked and nothing signalled", n, err, sig.count())
	}
	other := NewMatcher(store, sig, testLogger(t), prometheus.NewRegistry())
	if err := other.Correlate(ctx, smsgw.Correlation{ConnectorID: "up", UpstreamID: "u1", MessageID: "new", Segment: 1, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if ids, _ := sig.waitN(t, 1); ids[0] != "new" {
		t.Fatalf("signalled %v, want the newer message", ids)
	}
	if n, err := store.CountParked(ctx); err != nil || n != 0 {
		t.Errorf("%d parked (%v) after the newer message took it", n, err)
	}
}
