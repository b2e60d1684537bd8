package smppclient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppclient"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smpptest"
)

// wait bounds every wait in these tests.
const wait = 10 * time.Second

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// startSMSC runs the simulator on a loopback port for the length of the test.
func startSMSC(t *testing.T, cfg smpptest.Config) (*smpptest.SMSC, string) {
	t.Helper()
	if cfg.ReceiptDelay == 0 {
		cfg.ReceiptDelay = 10 * time.Millisecond
	}
	if cfg.ReceiptRetryInterval == 0 {
		cfg.ReceiptRetryInterval = 50 * time.Millisecond
	}
	cfg.Logger = testLogger(t).With("side", "smsc")
	smsc := smpptest.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- smsc.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return smsc, ln.Addr().String()
}

// recorder is a Handler that keeps what it is given, and can refuse the
// first few receipts or MO.
type recorder struct {
	receipts     chan smsgw.Receipt
	mos          chan smsgw.MO
	failReceipts atomic.Int32
	failMO       atomic.Int32
	calls        atomic.Int32
	// accept, when set, refuses receipts it returns false for.
	accept func(smsgw.Receipt) bool
}

func newRecorder() *recorder {
	return &recorder{receipts: make(chan smsgw.Receipt, 100), mos: make(chan smsgw.MO, 100)}
}

func (r *recorder) HandleReceipt(ctx context.Context, rc smsgw.Receipt) error {
	r.calls.Add(1)
	if r.failReceipts.Add(-1) >= 0 {
		return errors.New("store unavailable")
	}
	if r.accept != nil && !r.accept(rc) {
		return errors.New("no correlation yet")
	}
	r.receipts <- rc
	return nil
}

func (r *recorder) HandleMO(ctx context.Context, mo smsgw.MO) error {
	if r.failMO.Add(-1) >= 0 {
		return errors.New("store unavailable")
	}
	r.mos <- mo
	return nil
}

func (r *recorder) nextReceipt(t *testing.T) smsgw.Receipt {
	t.Helper()
	select {
	case rc := <-r.receipts:
		return rc
	case <-time.After(wait):
		t.Fatal("no receipt reached the handler")
		return smsgw.Receipt{}
	}
}

// startClient runs a client for the length of the test and waits for its bind.
func startClient(t *testing.T, cfg smppclient.Config, h smppclient.Handler) (*smppclient.Client, *prometheus.Registry) {
	t.Helper()
	c, reg := runClient(t, cfg, h)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.WaitBound(ctx); err != nil {
		t.Fatal(err)
	}
	return c, reg
}

func runClient(t *testing.T, cfg smppclient.Config, h smppclient.Handler) (*smppclient.Client, *prometheus.Registry) {
	t.Helper()
	if cfg.ID == "" {
		cfg.ID = "sim"
	}
	if cfg.SystemID == "" {
		cfg.SystemID = "smsgw"
	}
	if cfg.RebindMin == 0 {
		cfg.RebindMin, cfg.RebindMax = 50*time.Millisecond, 200*time.Millisecond
	}
	if cfg.ResponseTimeout == 0 {
		cfg.ResponseTimeout = 2 * time.Second
	}
	reg := prometheus.NewRegistry()
	c, err := smppclient.New(cfg, h, testLogger(t).With("side", "client"), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(wait):
			t.Error("Run did not return after its context ended")
		}
	})
	return c, reg
}

func part(dest string) smppclient.Part {
	return smppclient.Part{
		SourceAddr: "SMSGW", SourceTON: 5, SourceNPI: 0,
		DestAddr: dest, DestTON: 1, DestNPI: 1,
		ShortMessage:       []byte("Hello from smsgw"),
		RegisteredDelivery: 1,
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func TestSubmitAndReceipt(t *testing.T) {
	for _, format := range []string{"", smsgw.UpstreamIDHex, smsgw.UpstreamIDDecimal} {
		t.Run("ids "+format, func(t *testing.T) {
			smsc, addr := startSMSC(t, smpptest.Config{IDFormat: format})
			h := newRecorder()
			c, reg := startClient(t, smppclient.Config{Addr: addr, ReceiptIDFormat: format}, h)

			p := part("61412345678")
			p.DataCoding, p.ESMClass = 0x08, 0x40
			p.ShortMessage = []byte{0x05, 0x00, 0x03, 0x2A, 0x02, 0x01, 0x00, 'H', 0x00, 'i'}
			p.Validity = 48*time.Hour + 90*time.Second
			p.SAR = &smsgw.SAR{Ref: 0x1234, Total: 2, Seq: 1}
			id, err := c.Submit(ctxT(t), p)
			if err != nil {
				t.Fatal(err)
			}
			if id == "" {
				t.Fatal("Submit returned no upstream ID")
			}

			subs := smsc.Submits()
			if len(subs) != 1 {
				t.Fatalf("the SMSC saw %d submit_sm", len(subs))
			}
			s := subs[0]
			if s.DestAddr != "61412345678" || s.DestTON != 1 || s.DestNPI != 1 || s.SourceAddr != "SMSGW" || s.SourceTON != 5 ||
				s.DataCoding != 0x08 || s.ESMClass != 0x40 || s.RegisteredDelivery != 1 || !bytes.Equal(s.ShortMessage, p.ShortMessage) ||
				s.ValidityPeriod != "000002000130000R" || s.SAR == nil || *s.SAR != (smpptest.SAR{Ref: 0x1234, Total: 2, Seq: 1}) {
				t.Errorf("the SMSC received %+v", s)
			}
			if want := smsgw.NormalizeUpstreamID(s.UpstreamID, smsgw.UpstreamIDHex); format != "" && id != want {
				t.Errorf("Submit returned %q for submit_sm_resp ID %q, want %q", id, s.UpstreamID, want)
			}
			if format == "" && id != s.UpstreamID {
				t.Errorf("Submit returned %q for submit_sm_resp ID %q", id, s.UpstreamID)
			}
			if format != "" && s.ReceiptID == s.UpstreamID {
				t.Errorf("the simulator wrote the receipt ID %q as in submit_sm_resp; the test needs them to differ", s.ReceiptID)
			}

			rc := h.nextReceipt(t)
			if rc.UpstreamID != id || rc.Stat != "DELIVRD" || rc.Err != "000" || rc.ConnectorID != "sim" || rc.DoneAt.IsZero() || rc.ReceivedAt.IsZero() {
				t.Errorf("receipt %+v does not match upstream ID %q", rc, id)
			}
			if st, final := rc.Status(); st != smsgw.StatusDelivered || !final {
				t.Errorf("receipt status %s, final %v", st, final)
			}
			if got := metricValue(t, reg, "smsgw_upstream_submits_total", "status", "ESME_ROK"); got != 1 {
				t.Errorf("submits{ESME_ROK} = %v", got)
			}
			if got := metricValue(t, reg, "smsgw_connector_bound_sessions", "", ""); got != 1 {
				t.Errorf("bound sessions = %v", got)
			}
		})
	}
}

func TestReceiptOutcomes(t *testing.T) {
	_, addr := startSMSC(t, smpptest.Config{Outcome: func(dest string) (string, string) {
		if dest == "61400000001" {
			return "UNDELIV", "001"
		}
		return "EXPIRED", "000"
	}})
	h := newRecorder()
	c, _ := startClient(t, smppclient.Config{Addr: addr}, h)
	for dest, want := range map[string]smsgw.Status{"61400000001": smsgw.StatusUndeliverable, "61400000002": smsgw.StatusExpired} {
		id, err := c.Submit(ctxT(t), part(dest))
		if err != nil {
			t.Fatal(err)
		}
		rc := h.nextReceipt(t)
		if st, _ := rc.Status(); rc.UpstreamID != id || st != want {
			t.Errorf("%s: receipt %+v, want status %s for %q", dest, rc, want, id)
		}
	}
}

// The receipt overtakes the submit_sm_resp; the handler refuses it until the
// ID is known, as the correlation store would, and the SMSC delivers it again.
func TestReceiptBeforeResp(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{ReceiptBeforeResp: true})
	var mu sync.Mutex
	known := map[string]bool{}
	h := newRecorder()
	h.accept = func(rc smsgw.Receipt) bool {
		mu.Lock()
		defer mu.Unlock()
		return known[rc.UpstreamID]
	}
	c, _ := startClient(t, smppclient.Config{Addr: addr}, h)
	id, err := c.Submit(ctxT(t), part("61412345678"))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	known[id] = true
	mu.Unlock()
	rc := h.nextReceipt(t)
	if rc.UpstreamID != id {
		t.Errorf("receipt for %q, want %q", rc.UpstreamID, id)
	}
	if err := smsc.WaitReceiptAttempts(ctxT(t), int(h.calls.Load())); err != nil {
		t.Fatal(err)
	}
	attempts := smsc.ReceiptAttempts()
	if last := attempts[len(attempts)-1]; last.Status != 0 || last.Err != nil {
		t.Errorf("last receipt attempt %+v", last)
	}
}

func TestSubmitRefused(t *testing.T) {
	_, addr := startSMSC(t, smpptest.Config{SubmitStatus: func(dest string, n int) uint32 {
		switch {
		case dest == "61400000000":
			return smppstatus.ESME_RINVDSTADR
		case n == 1:
			return smppstatus.ESME_RTHROTTLED
		}
		return smppstatus.ESME_ROK
	}})
	c, reg := startClient(t, smppclient.Config{Addr: addr}, newRecorder())

	_, err := c.Submit(ctxT(t), part("61412345678"))
	var se *smppclient.SubmitError
	if !errors.As(err, &se) || se.Status != smppstatus.ESME_RTHROTTLED || !se.Retryable {
		t.Fatalf("throttled submit: %v, want a retryable SubmitError", err)
	}
	if _, err := c.Submit(ctxT(t), part("61412345678")); err != nil {
		t.Fatalf("submit after the throttle: %v", err)
	}
	_, err = c.Submit(ctxT(t), part("61400000000"))
	if !errors.As(err, &se) || se.Status != smppstatus.ESME_RINVDSTADR || se.Retryable {
		t.Fatalf("submit to an invalid destination: %v, want a permanent SubmitError", err)
	}
	if errors.Is(err, smppclient.ErrInDoubt) {
		t.Error("a refusal is not in doubt")
	}
	if got := metricValue(t, reg, "smsgw_upstream_submits_total", "status", "ESME_RTHROTTLED"); got != 1 {
		t.Errorf("submits{ESME_RTHROTTLED} = %v", got)
	}
}

func TestRebindAfterConnectionLoss(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{})
	c, _ := startClient(t, smppclient.Config{Addr: addr, RebindMin: 300 * time.Millisecond, RebindMax: time.Second}, newRecorder())
	if _, err := c.Submit(ctxT(t), part("61412345678")); err != nil {
		t.Fatal(err)
	}

	smsc.CloseSessions()
	deadline := time.Now().Add(wait)
	for c.Bound() {
		if time.Now().After(deadline) {
			t.Fatal("the client did not notice the lost connection")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := c.Submit(ctxT(t), part("61412345678")); !errors.Is(err, smppclient.ErrNotBound) {
		t.Errorf("submit while unbound: %v, want ErrNotBound", err)
	}

	if err := smsc.WaitBinds(ctxT(t), 2); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitBound(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(ctxT(t), part("61412345678")); err != nil {
		t.Fatalf("submit after the rebind: %v", err)
	}
}

func TestHandlerErrorMakesSMSCRedeliver(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{})
	h := newRecorder()
	h.failReceipts.Store(2)
	c, reg := startClient(t, smppclient.Config{Addr: addr}, h)
	id, err := c.Submit(ctxT(t), part("61412345678"))
	if err != nil {
		t.Fatal(err)
	}
	if rc := h.nextReceipt(t); rc.UpstreamID != id {
		t.Errorf("receipt for %q, want %q", rc.UpstreamID, id)
	}
	if err := smsc.WaitReceiptAttempts(ctxT(t), 3); err != nil {
		t.Fatal(err)
	}
	var got []uint32
	for _, a := range smsc.ReceiptAttempts() {
		got = append(got, a.Status)
	}
	want := []uint32{smppstatus.ESME_RX_T_APPN, smppstatus.ESME_RX_T_APPN, smppstatus.ESME_ROK}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("deliver_sm_resp statuses %v, want %v", got, want)
	}
	if got := metricValue(t, reg, "smsgw_upstream_receipts_total", "result", "handler_error"); got != 2 {
		t.Errorf("receipts{handler_error} = %v", got)
	}
}

func TestMO(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{})
	h := newRecorder()
	startClient(t, smppclient.Config{Addr: addr}, h)

	sm := []byte{0x05, 0x00, 0x03, 0x07, 0x02, 0x02, 'p', 'a', 'r', 't'}
	if err := smsc.InjectMO(ctxT(t), "61412345678", "12345", 0x00, 0x40, sm); err != nil {
		t.Fatal(err)
	}
	select {
	case mo := <-h.mos:
		if mo.From != "61412345678" || mo.To != "12345" || mo.ESMClass != 0x40 || mo.DataCoding != 0 ||
			!bytes.Equal(mo.ShortMessage, sm) || mo.ConnectorID != "sim" || mo.ReceivedAt.IsZero() {
			t.Errorf("MO %+v", mo)
		}
	case <-time.After(wait):
		t.Fatal("no MO reached the handler")
	}

	// A data_coding gosmpp has no codec for still arrives as sent.
	if err := smsc.InjectMO(ctxT(t), "61412345678", "12345", 0xF5, 0, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if mo := <-h.mos; mo.DataCoding != 0xF5 || !bytes.Equal(mo.ShortMessage, []byte{1, 2, 3}) {
		t.Errorf("binary MO %+v", mo)
	}

	h.failMO.Store(1)
	err := smsc.InjectMO(ctxT(t), "61412345678", "12345", 0, 0, []byte("hi"))
	var se *smpptest.StatusError
	if !errors.As(err, &se) || se.Status != smppstatus.ESME_RX_T_APPN {
		t.Errorf("MO the handler refused: %v, want ESME_RX_T_APPN", err)
	}
}

// A transmitter submits, a receiver of the same system_id gets the receipts.
func TestTransmitterAndReceiver(t *testing.T) {
	_, addr := startSMSC(t, smpptest.Config{SystemID: "smsgw", Password: "secret"})
	rx := newRecorder()
	startClient(t, smppclient.Config{ID: "rx", Addr: addr, Password: "secret", BindMode: smppclient.Receiver}, rx)
	tx, _ := startClient(t, smppclient.Config{ID: "tx", Addr: addr, Password: "secret", BindMode: smppclient.Transmitter}, nil)
	id, err := tx.Submit(ctxT(t), part("61412345678"))
	if err != nil {
		t.Fatal(err)
	}
	if rc := rx.nextReceipt(t); rc.UpstreamID != id || rc.ConnectorID != "rx" {
		t.Errorf("receipt %+v, want upstream ID %q", rc, id)
	}
}

func TestBindRefused(t *testing.T) {
	_, addr := startSMSC(t, smpptest.Config{SystemID: "smsgw", Password: "secret"})
	c, reg := runClient(t, smppclient.Config{Addr: addr, Password: "wrong"}, newRecorder())
	deadline := time.Now().Add(wait)
	for metricValue(t, reg, "smsgw_upstream_bind_attempts_total", "result", "refused") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no refused bind counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c.Bound() {
		t.Error("bound with a wrong password")
	}
	if _, err := c.Submit(ctxT(t), part("61412345678")); !errors.Is(err, smppclient.ErrNotBound) {
		t.Errorf("Submit: %v, want ErrNotBound", err)
	}
}

func TestLongMessageGoesInPayload(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{})
	c, _ := startClient(t, smppclient.Config{Addr: addr}, newRecorder())
	p := part("61412345678")
	p.ShortMessage = bytes.Repeat([]byte("x"), 300)
	if _, err := c.Submit(ctxT(t), p); err != nil {
		t.Fatal(err)
	}
	if got := smsc.Submits()[0].ShortMessage; !bytes.Equal(got, p.ShortMessage) {
		t.Errorf("the SMSC received %d octets", len(got))
	}
}

func TestSubmitRejectsBadParts(t *testing.T) {
	_, addr := startSMSC(t, smpptest.Config{})
	c, _ := startClient(t, smppclient.Config{Addr: addr}, newRecorder())
	for name, mutate := range map[string]func(*smppclient.Part){
		"no destination":     func(p *smppclient.Part) { p.DestAddr = "" },
		"long address":       func(p *smppclient.Part) { p.SourceAddr = "123456789012345678901" },
		"negative validity":  func(p *smppclient.Part) { p.Validity = -time.Second },
		"SAR seq over total": func(p *smppclient.Part) { p.SAR = &smsgw.SAR{Ref: 1, Total: 2, Seq: 3} },
	} {
		p := part("61412345678")
		mutate(&p)
		if _, err := c.Submit(ctxT(t), p); smsgw.ErrorCode(err) != smsgw.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := smppclient.Config{ID: "sim", Addr: "127.0.0.1:2775", SystemID: "smsgw"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*smppclient.Config){
		"no id":            func(c *smppclient.Config) { c.ID = "" },
		"no addr":          func(c *smppclient.Config) { c.Addr = "" },
		"no system id":     func(c *smppclient.Config) { c.SystemID = "" },
		"long password":    func(c *smppclient.Config) { c.Password = "123456789" },
		"bad bind mode":    func(c *smppclient.Config) { c.BindMode = "both" },
		"bad id format":    func(c *smppclient.Config) { c.ReceiptIDFormat = "octal" },
		"rebind max < min": func(c *smppclient.Config) { c.RebindMin, c.RebindMax = time.Minute, time.Second },
		"negative window":  func(c *smppclient.Config) { c.WindowSize = -1 },
	} {
		c := good
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
	if _, err := smppclient.New(good, nil, nil, nil); err == nil {
		t.Error("New accepted a transceiver without a Handler")
	}
}

// Two clients in one process share the metric families of one registry.
func TestMetricsShareARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	for _, id := range []string{"a", "b"} {
		if _, err := smppclient.New(smppclient.Config{ID: id, Addr: "127.0.0.1:1", SystemID: "x"}, newRecorder(), nil, reg); err != nil {
			t.Fatalf("client %s: %v", id, err)
		}
	}
}

// metricValue returns the value of the counter or gauge name whose label
// has value (label "" for an unlabelled one apart from connector), or 0.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
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
			match := label == ""
			for _, l := range m.GetLabel() {
				match = match || l.GetName() == label && l.GetValue() == value
			}
			if !match {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}
