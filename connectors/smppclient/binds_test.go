package smppclient_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smppclient"
	"github.com/smsgw/smsgw/connectors/smpptest"
	"github.com/smsgw/smsgw/internal/testenv"
)

// submitAll sends n parts at once and returns each Submit's outcome, in order.
func submitAll(ctx context.Context, c *smppclient.Client, n int) ([]string, []error) {
	ids, errs := make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = c.Submit(ctx, part("61412345678"))
		}()
	}
	wg.Wait()
	return ids, errs
}

func TestBindsSpreadSubmits(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{RespDelay: 50 * time.Millisecond})
	c, reg := startClient(t, smppclient.Config{Addr: addr, Binds: 3, WindowSize: 2}, newRecorder())
	if err := smsc.WaitBinds(ctxT(t), 3); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "three sessions", func() bool { return c.BoundSessions() == 3 })
	if got := metricValue(t, reg, "smsgw_connector_bound_sessions", "", ""); got != 3 {
		t.Errorf("bound sessions = %v, want 3", got)
	}
	_, errs := submitAll(ctxT(t), c, 12)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	perBind := map[int]int{}
	for _, s := range smsc.Submits() {
		perBind[s.Bind]++
	}
	if len(perBind) != 3 {
		t.Errorf("submits per bind %v, want all three binds used", perBind)
	}
	for bind, n := range perBind {
		if n < 2 {
			t.Errorf("bind %d took %d of 12 submits: %v", bind, n, perBind)
		}
	}
}

func TestTransmitterReceiverPair(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{})
	h := newRecorder()
	c, reg := startClient(t, smppclient.Config{Addr: addr, BindMode: smppclient.TransmitterReceiver}, h)
	if err := smsc.WaitBinds(ctxT(t), 2); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "both sessions", func() bool { return c.BoundSessions() == 2 })
	id, err := c.Submit(ctxT(t), part("61412345678"))
	if err != nil {
		t.Fatal(err)
	}
	rc := h.nextReceipt(t)
	if rc.UpstreamID != id {
		t.Errorf("receipt %+v for %q", rc, id)
	}
	if err := smsc.WaitReceiptAttempts(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	sub, att := smsc.Submits()[0], smsc.ReceiptAttempts()[0]
	if sub.Bind == att.Bind {
		t.Errorf("submit and receipt on the same bind %d: the pair should split them", sub.Bind)
	}
	if got := metricValue(t, reg, "smsgw_connector_bound_sessions", "", ""); got != 2 {
		t.Errorf("bound sessions = %v, want 2", got)
	}
}

func TestReceiptOnAnotherBind(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{ReceiptOtherBind: true})
	h := newRecorder()
	c, _ := startClient(t, smppclient.Config{Addr: addr, Binds: 2}, h)
	waitUntil(t, "two sessions", func() bool { return c.BoundSessions() == 2 })
	id, err := c.Submit(ctxT(t), part("61412345678"))
	if err != nil {
		t.Fatal(err)
	}
	if rc := h.nextReceipt(t); rc.UpstreamID != id {
		t.Errorf("receipt for %q, want %q", rc.UpstreamID, id)
	}
	if err := smsc.WaitReceiptAttempts(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	sub, att := smsc.Submits()[0], smsc.ReceiptAttempts()[0]
	if sub.Bind == att.Bind || att.Status != 0 {
		t.Errorf("submit on bind %d, receipt on bind %d with status %d", sub.Bind, att.Bind, att.Status)
	}
}

// The SMSC drops the connection with part of the window unanswered: those
// parts are in doubt, the answered ones have their IDs, and nothing is sent
// again by the client itself.
func TestDropMidWindow(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{DropAfter: 4, RespDelay: 200 * time.Millisecond})
	c, reg := startClient(t, smppclient.Config{Addr: addr, WindowSize: 10}, newRecorder())
	ctx := ctxT(t)

	// Two answered first, then four at once: the fourth submit_sm ends the
	// connection while the third, fifth and sixth wait for their responses.
	ids, errs := submitAll(ctx, c, 2)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	moreIDs, moreErrs := submitAll(ctx, c, 4)
	ids, errs = append(ids, moreIDs...), append(errs, moreErrs...)

	inDoubt := 0
	for i, err := range errs {
		switch {
		case err == nil && ids[i] != "":
		case errors.Is(err, smppclient.ErrInDoubt):
			inDoubt++
		case errors.Is(err, smppclient.ErrNotBound):
		default:
			t.Errorf("submit %d: %q, %v", i, ids[i], err)
		}
	}
	answered := map[string]bool{}
	unanswered := 0
	for _, s := range smsc.Submits() {
		if s.Answered {
			answered[s.UpstreamID] = true
		} else {
			unanswered++
		}
	}
	if unanswered == 0 || inDoubt < unanswered {
		t.Errorf("%d unanswered submit_sm at the SMSC, %d in doubt at the client", unanswered, inDoubt)
	}
	for i, id := range ids {
		if id != "" && !answered[id] { // no ID format: IDs come back as the SMSC wrote them
			t.Errorf("submit %d returned %q, which the SMSC never answered", i, id)
		}
	}
	if got := metricValue(t, reg, "smsgw_upstream_submits_total", "status", "in_doubt"); int(got) != inDoubt {
		t.Errorf("submits{in_doubt} = %v, want %d", got, inDoubt)
	}
	received := len(smsc.Submits())
	// WaitBound may still see the dropped session as bound until the client
	// notices the drop; a submit then fails as not bound, sending nothing.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := c.WaitBound(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := c.Submit(ctx, part("61412345678"))
		if err == nil {
			break
		}
		if !errors.Is(err, smppclient.ErrNotBound) || time.Now().After(deadline) {
			t.Fatalf("after the rebind: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(smsc.Submits()); n != received+1 {
		t.Errorf("the SMSC received %d submit_sm after the rebind, want 1: the client resent parts", n-received)
	}
}

func TestSlowResponses(t *testing.T) {
	t.Run("within the response timeout", func(t *testing.T) {
		_, addr := startSMSC(t, smpptest.Config{RespDelay: 300 * time.Millisecond})
		c, _ := startClient(t, smppclient.Config{Addr: addr, ResponseTimeout: time.Second}, newRecorder())
		if id, err := c.Submit(ctxT(t), part("61412345678")); err != nil || id == "" {
			t.Fatalf("Submit = %q, %v", id, err)
		}
	})
	t.Run("beyond it", func(t *testing.T) {
		smsc, addr := startSMSC(t, smpptest.Config{RespDelay: 400 * time.Millisecond})
		c, _ := startClient(t, smppclient.Config{Addr: addr, ResponseTimeout: 150 * time.Millisecond, EnquireLink: time.Hour}, newRecorder())
		_, err := c.Submit(ctxT(t), part("61412345678"))
		if !errors.Is(err, smppclient.ErrResponseTimeout) || !errors.Is(err, smppclient.ErrInDoubt) {
			t.Fatalf("Submit: %v, want in doubt after the response timeout", err)
		}
		// The late response is ignored, and the session carries on.
		waitUntil(t, "the late response", func() bool { return smsc.Submits()[0].Answered })
		if !c.Bound() {
			t.Fatal("a late response ended the bind")
		}
	})
}

// Cancelling Run mid-window: every submit_sm already written gets its
// response, then the client unbinds.
func TestShutdownDrainsTheWindow(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{RespDelay: 300 * time.Millisecond})
	c, err := smppclient.New(smppclient.Config{ID: "sim", Addr: addr, SystemID: "smsgw", WindowSize: 5, Binds: 2}, newRecorder(), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	if err := c.WaitBound(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "both sessions", func() bool { return c.BoundSessions() == 2 })

	results := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := c.Submit(ctxT(t), part("61412345678"))
			results <- err
		}()
	}
	if err := smsc.WaitSubmits(ctxT(t), 8); err != nil {
		t.Fatal(err)
	}
	for _, s := range smsc.Submits() {
		if s.Answered {
			t.Fatal("a response came before the cancel; the test needs them all outstanding")
		}
	}
	cancel()
	waitUntil(t, "the drain to begin", func() bool { return !c.Bound() })
	if _, err := c.Submit(ctxT(t), part("61412345678")); !errors.Is(err, smppclient.ErrNotBound) {
		t.Errorf("Submit while draining: %v, want ErrNotBound", err)
	}
	for range 8 {
		if err := <-results; err != nil {
			t.Errorf("a submit in the window failed on shutdown: %v", err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Run did not return")
	}
	if n := smsc.Unbinds(); n != 2 {
		t.Errorf("the SMSC saw %d unbinds, want one per session", n)
	}
	for _, s := range smsc.Submits() {
		if !s.Answered {
			t.Errorf("unbound before the response to %+v", s)
		}
	}
	if c.Bound() || c.BoundSessions() != 0 {
		t.Error("still bound after Run returned")
	}
}

func TestSMSCDownAndBack(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{})
	c, _ := startClient(t, smppclient.Config{Addr: addr, RebindMin: 50 * time.Millisecond, RebindMax: 100 * time.Millisecond}, newRecorder())
	smsc.Stop()
	waitUntil(t, "the client to notice", func() bool { return !c.Bound() })
	if _, err := c.Submit(ctxT(t), part("61412345678")); !errors.Is(err, smppclient.ErrNotBound) {
		t.Errorf("Submit while the SMSC is down: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // a few refused connections
	if err := smsc.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitBound(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(ctxT(t), part("61412345678")); err != nil {
		t.Errorf("Submit after the SMSC came back: %v", err)
	}
}

func TestTPSLimit(t *testing.T) {
	_, addr := startSMSC(t, smpptest.Config{})
	c, reg := startClient(t, smppclient.Config{Addr: addr, TPS: 20}, newRecorder())
	if got := metricValue(t, reg, "smsgw_connector_tps_limit", "", ""); got != 20 {
		t.Errorf("tps limit gauge = %v", got)
	}
	start := time.Now()
	_, errs := submitAll(ctxT(t), c, 10)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A burst of 2, then 20 a second: 8 more take 400ms.
	if d := time.Since(start); d < 350*time.Millisecond {
		t.Errorf("10 submits at 20 TPS took %s", d)
	}
}

// selfSigned returns a certificate for 127.0.0.1 and smsc.test, and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	cert := testenv.SelfSignedCert(t, "smsc.test")
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return cert, pool
}

// startTLSSMSC runs the simulator behind a TLS listener.
func startTLSSMSC(t *testing.T, cert tls.Certificate) (*smpptest.SMSC, string) {
	t.Helper()
	smsc := smpptest.New(smpptest.Config{ReceiptDelay: 10 * time.Millisecond, Logger: testLogger(t)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- smsc.Serve(ctx, tln) }()
	t.Cleanup(func() { cancel(); <-done })
	return smsc, ln.Addr().String()
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	smsc, addr := startTLSSMSC(t, cert)

	t.Run("verified", func(t *testing.T) {
		h := newRecorder()
		c, _ := startClient(t, smppclient.Config{Addr: addr, TLS: &tls.Config{RootCAs: pool, ServerName: "smsc.test", MinVersion: tls.VersionTLS12}}, h)
		id, err := c.Submit(ctxT(t), part("61412345678"))
		if err != nil {
			t.Fatal(err)
		}
		if rc := h.nextReceipt(t); rc.UpstreamID != id {
			t.Errorf("receipt %+v for %q", rc, id)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		binds := smsc.Binds()
		c, reg := runClient(t, smppclient.Config{Addr: addr, TLS: &tls.Config{ServerName: "smsc.test", MinVersion: tls.VersionTLS12}}, newRecorder())
		waitUntil(t, "a failed bind", func() bool {
			return metricValue(t, reg, "smsgw_upstream_bind_attempts_total", "result", "error") >= 1
		})
		if c.Bound() || smsc.Binds() != binds {
			t.Error("bound to an SMSC whose certificate nobody trusts")
		}
	})
	t.Run("wrong name", func(t *testing.T) {
		c, reg := runClient(t, smppclient.Config{Addr: addr, TLS: &tls.Config{RootCAs: pool, ServerName: "other.test", MinVersion: tls.VersionTLS12}}, newRecorder())
		waitUntil(t, "a failed bind", func() bool {
			return metricValue(t, reg, "smsgw_upstream_bind_attempts_total", "result", "error") >= 1
		})
		if c.Bound() {
			t.Error("bound to an SMSC with another name")
		}
	})
	t.Run("plain TCP to a TLS port", func(t *testing.T) {
		c, reg := runClient(t, smppclient.Config{Addr: addr, ResponseTimeout: 300 * time.Millisecond}, newRecorder())
		waitUntil(t, "a failed bind", func() bool {
			return metricValue(t, reg, "smsgw_upstream_bind_attempts_total", "result", "error") >= 1
		})
		if c.Bound() {
			t.Error("bound without TLS to a TLS listener")
		}
	})
}

func TestConfigValidateBinds(t *testing.T) {
	good := smppclient.Config{ID: "sim", Addr: "127.0.0.1:2775", SystemID: "smsgw", BindMode: smppclient.TransmitterReceiver, Binds: 4, TPS: 100}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*smppclient.Config){
		"too many binds": func(c *smppclient.Config) { c.Binds = smppclient.MaxBinds + 1 },
		"negative binds": func(c *smppclient.Config) { c.Binds = -1 },
		"negative tps":   func(c *smppclient.Config) { c.TPS = -1 },
	} {
		c := good
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
}

func TestLostFollowsBound(t *testing.T) {
	smsc, addr := startSMSC(t, smpptest.Config{})
	c, _ := runClient(t, smppclient.Config{Addr: addr, RebindMin: 50 * time.Millisecond, RebindMax: 100 * time.Millisecond}, newRecorder())
	select {
	case <-c.Lost():
	default:
		t.Fatal("Lost is open before the first bind")
	}
	if err := c.WaitBound(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	lost := c.Lost()
	select {
	case <-lost:
		t.Fatal("Lost is closed while bound")
	default:
	}
	smsc.CloseSessions()
	select {
	case <-lost:
	case <-time.After(wait):
		t.Fatal("Lost stayed open after the connection dropped")
	}
	if err := c.WaitBound(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Lost():
		t.Fatal("Lost is closed after the rebind")
	default:
	}
}
