package smppserver_test

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smppserver"
	"github.com/smsgw/smsgw/connectors/smppserver/esme"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// The SMPP port faces the internet: these tests attack it as a stranger
// would, with idle connections, floods and guessed passwords.

// countingListener counts the connections accepted.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// raiseFileLimit lifts the soft limit on open files to n, or skips the
// test when the hard limit is lower.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("open file limit unknown: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("needs %d open files; the hard limit is %d", n, lim.Max)
	}
	old := lim
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("raising the open file limit to %d: %v", n, err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// heapAlloc is the live heap after a collection.
func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// dialFrom opens a TCP connection to addr from the loopback address src
// (any of 127.0.0.0/8), closed when the test ends.
func dialFrom(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// closedBy reports whether the server closed conn within wait.
func closedBy(conn net.Conn, wait time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	_, err := conn.Read(make([]byte, 64))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// bindFrom binds as systemID from the loopback address src and returns the
// bind's answer and how long it took.
func bindFrom(t testing.TB, f *fixture, src, systemID, password string) (smppwire.Frame, time.Duration, *esme.Client) {
	t.Helper()
	c := esme.New(dialFrom(t, src, f.addr))
	t.Cleanup(func() { c.Close() })
	began := time.Now()
	resp, err := c.Bind(ctxFor(t), smppwire.BindTransceiver, systemID, password)
	if err != nil {
		t.Fatalf("bind as %s from %s: %v", systemID, src, err)
	}
	return resp, time.Since(began), c
}

// A flood of idle connections from one address leaves the server's memory
// and goroutines bounded, a customer binding from that same address is
// served while the flood is open, and the flood is gone within seconds.
func TestIdleFloodFromOneAddress(t *testing.T) {
	// Not parallel: it measures the whole process.
	const flood = 5000
	raiseFileLimit(t, 2*flood+1024)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingListener{Listener: ln}
	f := startOn(t, counted, smppserver.Config{}, smppserver.Deps{})
	baseGoroutines, baseHeap := runtime.NumGoroutine(), heapAlloc()

	conns := make([]net.Conn, 0, flood)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	d := net.Dialer{Timeout: 10 * time.Second}
	for range flood {
		c, err := d.Dial("tcp", f.addr)
		if err != nil {
			t.Fatalf("connection %d of the flood: %v", len(conns)+1, err)
		}
		conns = append(conns, c)
	}
	eventually(t, func() bool { return counted.accepted.Load() == flood })

	// Each connection the server holds costs goroutines and buffers; what
	// it holds for the flood must not grow with it.
	const maxGoroutines = 500
	deadline := time.Now().Add(20 * time.Second)
	for runtime.NumGoroutine()-baseGoroutines > maxGoroutines {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle connections hold %d goroutines of the server, want at most %d",
				flood, runtime.NumGoroutine()-baseGoroutines, maxGoroutines)
		}
		time.Sleep(50 * time.Millisecond)
	}
	grown := int64(heapAlloc()) - int64(baseHeap)
	t.Logf("%d idle connections: %d goroutines and %d KiB of heap more than before; %v unbound on the server",
		flood, runtime.NumGoroutine()-baseGoroutines, grown>>10, f.metric(t, "smsgw_smpp_unbound_connections"))
	const maxHeap = 32 << 20
	if grown > maxHeap {
		t.Fatalf("%d idle connections grew the heap by %d MiB, want at most %d", flood, grown>>20, maxHeap>>20)
	}

	// A customer at the flooding address binds and submits, flood or not.
	c := f.bound(t, smppwire.BindTransceiver, "acme", "secret")
	if status, id, err := c.Submit(ctxFor(t), text("through the flood")); err != nil || status != 0 || id == "" {
		t.Fatalf("submit during the flood: status %s, id %q, %v", smppstatus.Name(status), id, err)
	}
	// Those that did not time out first made room for newer ones.
	shed := f.metric(t, "smsgw_smpp_connections_shed_total", "evicted_per_source") + f.metric(t, "smsgw_smpp_connections_shed_total", "first_pdu_timeout")
	if shed < flood-64 {
		t.Errorf("%v idle connections closed for newer ones or for their silence, want nearly %d", shed, flood)
	}

	// The rest of the flood sent nothing and is closed within seconds.
	deadline = time.Now().Add(20 * time.Second)
	for f.metric(t, "smsgw_smpp_unbound_connections") > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%v idle connections still open 20s after the flood", f.metric(t, "smsgw_smpp_unbound_connections"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if f.metric(t, "smsgw_smpp_connections_shed_total", "first_pdu_timeout") == 0 {
		t.Error("no idle connection counted as closed for sending no PDU")
	}
}

// The caps on unbound connections: a newcomer over a cap takes the place
// of the oldest idle connection (of its source, or of all), never of one
// that is binding; when none is idle the newcomer is refused. Other
// sources, and bound sessions, are not counted against a source's cap.
func TestUnboundConnectionCaps(t *testing.T) {
	t.Parallel()
	f := start(t, smppserver.Config{MaxUnboundPerSource: 2, MaxUnbound: 3}, smppserver.Deps{})
	unbound := func(want float64) {
		t.Helper()
		eventually(t, func() bool { return f.metric(t, "smsgw_smpp_unbound_connections") == want })
	}
	a := dialFrom(t, "127.0.0.1", f.addr)
	unbound(1)
	b := dialFrom(t, "127.0.0.1", f.addr)
	unbound(2)
	c := dialFrom(t, "127.0.0.1", f.addr)
	if !closedBy(a, 5*time.Second) {
		t.Fatal("the oldest idle connection of the source was kept past the per-source cap")
	}
	unbound(2)
	if closedBy(b, 100*time.Millisecond) || closedBy(c, 100*time.Millisecond) {
		t.Fatal("a newer idle connection was closed instead of the oldest")
	}
	// Another source is not held to 127.0.0.1's cap, but to the total.
	d := dialFrom(t, "127.0.0.2", f.addr)
	unbound(3)
	dialFrom(t, "127.0.0.3", f.addr)
	if !closedBy(b, 5*time.Second) {
		t.Fatal("the oldest idle connection of all was kept past the total cap")
	}
	if closedBy(d, 100*time.Millisecond) {
		t.Fatal("the other source's connection was closed")
	}
	if got := f.metric(t, "smsgw_smpp_connections_shed_total", "evicted_per_source"); got != 1 {
		t.Errorf("evicted per source %v, want 1", got)
	}
	if got := f.metric(t, "smsgw_smpp_connections_shed_total", "evicted_total"); got != 1 {
		t.Errorf("evicted over the total %v, want 1", got)
	}

	// Connections that have sent a PDU are binding: they are not evicted,
	// and a newcomer of their source is refused instead.
	g := start(t, smppserver.Config{MaxUnboundPerSource: 2}, smppserver.Deps{})
	var talkers []net.Conn
	for range 2 {
		conn := dialFrom(t, "127.0.0.1", g.addr)
		if _, err := conn.Write(smppwire.HeaderOnly(smppwire.EnquireLink, 0, 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := smppwire.ReadFrame(conn); err != nil {
			t.Fatalf("enquire_link before the bind: %v", err)
		}
		talkers = append(talkers, conn)
	}
	newcomer := dialFrom(t, "127.0.0.1", g.addr)
	if !closedBy(newcomer, 5*time.Second) {
		t.Fatal("a newcomer over the cap was kept while every other connection was binding")
	}
	for _, conn := range talkers {
		if closedBy(conn, 100*time.Millisecond) {
			t.Fatal("a connection that had sent a PDU was closed for a newcomer")
		}
	}
	if got := g.metric(t, "smsgw_smpp_connections_shed_total", "refused_per_source"); got != 1 {
		t.Errorf("refused per source %v, want 1", got)
	}
	// Bound sessions do not count against the cap.
	for _, conn := range talkers {
		conn.Close()
	}
	eventually(t, func() bool { return g.metric(t, "smsgw_smpp_unbound_connections") == 0 })
	for range 3 {
		g.bound(t, smppwire.BindTransceiver, "acme", "secret")
	}
	later := []net.Conn{dialFrom(t, "127.0.0.1", g.addr), dialFrom(t, "127.0.0.1", g.addr)}
	for _, conn := range later {
		if closedBy(conn, 200*time.Millisecond) {
			t.Fatal("bound sessions were counted against the cap on unbound connections")
		}
	}
}

// A connection that sends no whole PDU in time is closed; one that has
// sent a PDU is given the bind timeout.
func TestFirstPDUDeadline(t *testing.T) {
	t.Parallel()
	f := start(t, smppserver.Config{FirstPDUTimeout: 300 * time.Millisecond}, smppserver.Deps{})
	silent := dialFrom(t, "127.0.0.1", f.addr)
	partial := dialFrom(t, "127.0.0.1", f.addr)
	if _, err := partial.Write(esme.BindPDU(smppwire.BindTransceiver, "acme", "secret")[:20]); err != nil {
		t.Fatal(err)
	}
	talker := dialFrom(t, "127.0.0.1", f.addr)
	if _, err := talker.Write(smppwire.HeaderOnly(smppwire.EnquireLink, 0, 1)); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for name, conn := range map[string]net.Conn{"a silent connection": silent, "a connection that sent part of a bind": partial} {
		if !closedBy(conn, 5*time.Second) {
			t.Fatalf("%s was kept open past the first-PDU deadline", name)
		}
	}
	if elapsed := time.Since(began); elapsed > 5*time.Second {
		t.Fatalf("closed after %v", elapsed)
	}
	if f, err := smppwire.ReadFrame(talker); err != nil || f.CommandID != smppwire.EnquireLinkResp {
		t.Fatalf("enquire_link answered %+v %v", f.Header, err)
	}
	if closedBy(talker, time.Second) {
		t.Fatal("a connection that sent a PDU was closed by the first-PDU deadline")
	}
	eventually(t, func() bool { return f.metric(t, "smsgw_smpp_connections_shed_total", "first_pdu_timeout") == 2 })
}

// A refused bind is answered, then the connection closes.
func TestFailedBindAnswersThenCloses(t *testing.T) {
	t.Parallel()
	f := start(t, smppserver.Config{}, smppserver.Deps{})
	for _, c := range []struct{ systemID, password string }{{"acme", "guess"}, {"nobody", "guess"}, {"fenced", "pw"}} {
		cl := f.dial(t)
		resp, err := cl.Bind(ctxFor(t), smppwire.BindTransmitter, c.systemID, c.password)
		if err != nil || resp.Status != smppstatus.ESME_RBINDFAIL {
			t.Fatalf("bind as %s: %+v %v, want ESME_RBINDFAIL", c.systemID, resp.Header, err)
		}
		select {
		case <-cl.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("the connection stayed open after the refused bind as %s", c.systemID)
		}
	}
	// Only the bind's own PDU is small before the bind: a long one closes.
	cl := f.dial(t)
	big := smppserver.EncodeMessage(smppwire.SubmitSM, 0, text(strings.Repeat("x", 250)))
	resp, err := cl.Call(ctxFor(t), big)
	if err != nil || resp.CommandID != smppwire.GenericNack || resp.Status != smppstatus.ESME_RINVCMDLEN {
		t.Fatalf("a %d-octet PDU before the bind: %+v %v, want generic_nack ESME_RINVCMDLEN", len(big), resp.Header, err)
	}
	<-cl.Done()
}

// Failed binds from a source are slowed down, then refused for a while;
// those naming a system_id are only ever slowed down, so a stranger
// guessing a customer's password cannot lock the customer out. Each
// refusal is logged, never with the password.
func TestRepeatedFailedBinds(t *testing.T) {
	t.Parallel()
	// The handler serialises its writes; the test reads the file.
	logFile, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	f := start(t, smppserver.Config{BindFailures: smppserver.BindFailures{
		SlowAfter: 2, Delay: 200 * time.Millisecond, MaxDelay: 400 * time.Millisecond,
		MaxSystemIDDelay: 300 * time.Millisecond, LockoutAfter: 5, Lockout: 2 * time.Second, Window: time.Minute,
	}}, smppserver.Deps{Logger: slog.New(slog.NewJSONHandler(logFile, nil))})
	guesses := []string{"guess-1", "guess-2", "guess-3", "guess-4", "guess-5"}
	for i, guess := range guesses {
		resp, took, _ := bindFrom(t, f, "127.0.0.1", "acme", guess)
		if resp.Status != smppstatus.ESME_RBINDFAIL {
			t.Fatalf("guess %d: %s", i+1, smppstatus.Name(resp.Status))
		}
		// After 2 failures, each bind waits 200ms, then 400ms at most.
		if want := []time.Duration{0, 0, 200, 400, 400}[i] * time.Millisecond; took < want {
			t.Fatalf("guess %d answered after %v, want at least %v", i+1, took, want)
		}
	}
	// The fifth failure locked 127.0.0.1 out: even the right password is
	// refused, at once, without being checked.
	if resp, _, _ := bindFrom(t, f, "127.0.0.1", "acme", "secret"); resp.Status != smppstatus.ESME_RBINDFAIL {
		t.Fatalf("the right password from a locked-out source: %s, want ESME_RBINDFAIL", smppstatus.Name(resp.Status))
	}
	// The customer, from its own address, still binds: its system_id is
	// slowed down (300ms at most), never locked.
	for i := range 8 { // more failures for acme, from sources that stay under the lockout
		src := []string{"127.0.0.2", "127.0.0.3"}[i%2]
		if resp, _, _ := bindFrom(t, f, src, "acme", "guess-more"); resp.Status != smppstatus.ESME_RBINDFAIL {
			t.Fatalf("guess from %s: %s", src, smppstatus.Name(resp.Status))
		}
	}
	resp, took, c := bindFrom(t, f, "127.0.0.9", "acme", "secret")
	if resp.Status != smppstatus.ESME_ROK || took < 300*time.Millisecond {
		t.Fatalf("the customer's bind from another address: %s after %v, want ESME_ROK after at least 300ms", smppstatus.Name(resp.Status), took)
	}
	if status, _, err := c.Submit(ctxFor(t), text("still served")); err != nil || status != 0 {
		t.Fatalf("submit: %s %v", smppstatus.Name(status), err)
	}
	// The lockout ends.
	eventually(t, func() bool {
		resp, _, _ := bindFrom(t, f, "127.0.0.1", "acme", "secret")
		return resp.Status == smppstatus.ESME_ROK
	})

	for _, m := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"smsgw_smpp_bind_attempts_total", []string{"locked_out"}, 1},
		{"smsgw_smpp_bind_lockouts_total", nil, 1},
	} {
		if got := f.metric(t, m.name, m.labels...); got < m.want {
			t.Errorf("%s%v = %v, want at least %v", m.name, m.labels, got, m.want)
		}
	}
	for _, by := range []string{"source", "system_id"} {
		if f.metric(t, "smsgw_smpp_bind_delayed_total", by) == 0 {
			t.Errorf("no bind counted as delayed by its %s", by)
		}
	}
	raw, err := os.ReadFile(logFile.Name())
	if err != nil {
		t.Fatal(err)
	}
	out := string(raw)
	if t.Failed() {
		t.Logf("server log:\n%s", out)
	}
	for _, want := range []string{`"msg":"bind refused"`, `"reason":"wrong password"`, `"system_id":"acme"`, `"msg":"locking out a source after repeated failed binds"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s", want)
		}
	}
	for _, secret := range append(guesses, "guess-more", "secret") {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds the password %q", secret)
		}
	}
}
