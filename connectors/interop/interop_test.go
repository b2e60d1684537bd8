package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppclient"
	"github.com/smsgw/smsgw/connectors/smpptest"
)

const wait = 15 * time.Second

var installOnce sync.Once
var installErr error

// requireNode skips the test when Node.js is absent, and installs the npm
// packages from package-lock.json when node_modules is missing.
func requireNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the node-smpp interoperability tests need Node.js")
	}
	installOnce.Do(func() {
		if _, err := os.Stat(filepath.Join("node_modules", "smpp", "package.json")); err == nil {
			return
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		out, err := cmd.CombinedOutput()
		if err != nil {
			installErr = fmt.Errorf("npm ci: %w\n%s", err, out)
		}
	})
	if installErr != nil {
		t.Fatal(installErr)
	}
}

// nodeProc is a node script whose stdout is a stream of JSON events.
type nodeProc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer

	mu      sync.Mutex
	events  []map[string]any
	changed chan struct{}
	exited  chan struct{}
	exitErr error
}

func startNode(t *testing.T, script string, args ...string) *nodeProc {
	t.Helper()
	p := &nodeProc{changed: make(chan struct{}), exited: make(chan struct{})}
	p.cmd = exec.Command("node", append([]string{script}, args...)...)
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = map[string]any{"event": "unparsable", "line": sc.Text()}
			}
			if testing.Verbose() {
				t.Logf("%s: %s", script, sc.Bytes())
			}
			p.mu.Lock()
			p.events = append(p.events, ev)
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
		err := p.cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("%s stderr:\n%s", script, p.stderr.String())
		}
	})
	return p
}

// waitEvent returns the first event named name for which match (if given) is true.
func (p *nodeProc) waitEvent(t *testing.T, name string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(wait)
	for {
		ev, changed := p.find(name, match)
		if ev != nil {
			return ev
		}
		select {
		case <-changed:
		case <-p.exited:
			// exited closes after the last event is in, so this look is final.
			if ev, _ := p.find(name, match); ev != nil {
				return ev
			}
			t.Fatalf("node exited (%v) without %q; events: %v", p.exitErr, name, p.eventsSoFar())
		case <-deadline:
			t.Fatalf("no %q from node; events so far: %v", name, p.eventsSoFar())
		}
	}
}

func (p *nodeProc) find(name string, match func(map[string]any) bool) (map[string]any, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ev := range p.events {
		if ev["event"] == name && (match == nil || match(ev)) {
			return ev, nil
		}
	}
	return nil, p.changed
}

func (p *nodeProc) eventsSoFar() []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]map[string]any(nil), p.events...)
}

// recorder holds receipts and MO, refusing the first receipt so the peer has to send it again.
type recorder struct {
	mu       sync.Mutex
	refused  bool
	receipts chan smsgw.Receipt
	mos      chan smsgw.MO
}

func (r *recorder) HandleReceipt(_ context.Context, rc smsgw.Receipt) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.refused {
		r.refused = true
		return errors.New("not yet")
	}
	r.receipts <- rc
	return nil
}

func (r *recorder) HandleMO(_ context.Context, mo smsgw.MO) error {
	r.mos <- mo
	return nil
}

func logger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil)).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// Our upstream client against a node-smpp SMSC.
func TestClientAgainstNodeSMSC(t *testing.T) {
	requireNode(t)
	node := startNode(t, "smsc.js")
	port := node.waitEvent(t, "listening", nil)["port"]
	addr := fmt.Sprintf("127.0.0.1:%v", port)

	// A wrong password is refused.
	bad, err := smppclient.New(smppclient.Config{ID: "node", Addr: addr, SystemID: "smsgw", Password: "wrong"}, &recorder{}, logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	badCtx, cancelBad := context.WithCancel(context.Background())
	badDone := make(chan error, 1)
	go func() { badDone <- bad.Run(badCtx) }()
	node.waitEvent(t, "bind_refused", nil)
	cancelBad()
	<-badDone
	if bad.Bound() {
		t.Error("bound with a wrong password")
	}

	h := &recorder{receipts: make(chan smsgw.Receipt, 10), mos: make(chan smsgw.MO, 10)}
	c, err := smppclient.New(smppclient.Config{
		ID: "node", Addr: addr, SystemID: "smsgw", Password: "secret",
		ReceiptIDFormat: smsgw.UpstreamIDHex, RebindMin: 100 * time.Millisecond, RebindMax: time.Second,
	}, h, logger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	stopped := make(chan struct{})
	go func() { runErr = c.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	wctx, wcancel := context.WithTimeout(context.Background(), wait)
	defer wcancel()
	if err := c.WaitBound(wctx); err != nil {
		t.Fatal(err)
	}

	select {
	case mo := <-h.mos:
		if mo.From != "61400000009" || mo.To != "12345" || string(mo.ShortMessage) != "MO from node-smpp" {
			t.Errorf("MO %+v", mo)
		}
	case <-time.After(wait):
		t.Fatal("no MO from node-smpp")
	}
	node.waitEvent(t, "deliver_sm_resp", func(ev map[string]any) bool { return ev["kind"] == "mo" && ev["command_status"] == 0.0 })

	id, err := c.Submit(wctx, smppclient.Part{
		SourceAddr: "SMSGW", SourceTON: 5, DestAddr: "61412345678", DestTON: 1, DestNPI: 1,
		DataCoding: 0x08, ShortMessage: []byte{0x00, 'G', 0x00, 'r', 0x00, 0xFC, 0x00, 0xDF, 0x00, 'e'}, RegisteredDelivery: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	sub := node.waitEvent(t, "submit_sm", nil)
	if sub["destination_addr"] != "61412345678" || sub["source_addr"] != "SMSGW" || sub["data_coding"] != 8.0 || sub["text"] != "Grüße" {
		t.Errorf("node-smpp received %v", sub)
	}
	if want := smsgw.NormalizeUpstreamID(sub["message_id"].(string), smsgw.UpstreamIDHex); id != want {
		t.Errorf("Submit returned %q for message_id %v", id, sub["message_id"])
	}

	select {
	case rc := <-h.receipts:
		if rc.UpstreamID != id || rc.Stat != "DELIVRD" || rc.Err != "000" || rc.ConnectorID != "node" {
			t.Errorf("receipt %+v for %q", rc, id)
		}
	case <-time.After(wait):
		t.Fatal("no receipt from node-smpp")
	}
	node.waitEvent(t, "deliver_sm_resp", func(ev map[string]any) bool {
		return ev["kind"] == "receipt" && ev["attempt"] == 1.0 && ev["command_status"] == 100.0 // ESME_RX_T_APPN
	})
	node.waitEvent(t, "deliver_sm_resp", func(ev map[string]any) bool {
		return ev["kind"] == "receipt" && ev["attempt"] == 2.0 && ev["command_status"] == 0.0
	})

	cancel()
	<-stopped
	if runErr != nil {
		t.Errorf("Run: %v", runErr)
	}
	node.waitEvent(t, "unbind", nil)
}

// A node-smpp ESME against our SMSC simulator.
func TestNodeESMEAgainstSimulator(t *testing.T) {
	requireNode(t)
	smsc := smpptest.New(smpptest.Config{SystemID: "node", Password: "pw", ReceiptDelay: 20 * time.Millisecond, Logger: logger(t)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- smsc.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	node := startNode(t, "esme.js", fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
	node.waitEvent(t, "bound", nil)
	wctx, wcancel := context.WithTimeout(context.Background(), wait)
	defer wcancel()
	if err := smsc.InjectMO(wctx, "61400000009", "NODE", 0, 0, []byte("MO from the simulator")); err != nil {
		t.Fatalf("InjectMO: %v", err)
	}

	resp := node.waitEvent(t, "submit_sm_resp", nil)
	receipt := node.waitEvent(t, "receipt", nil)
	mo := node.waitEvent(t, "mo", nil)
	node.waitEvent(t, "unbound", nil)
	<-node.exited
	if node.exitErr != nil {
		t.Errorf("esme.js: %v", node.exitErr)
	}

	subs := smsc.Submits()
	if len(subs) != 1 || subs[0].DestAddr != "61412345678" || subs[0].SourceAddr != "NODE" || string(subs[0].ShortMessage) != "Hello from node-smpp" {
		t.Fatalf("the simulator received %+v", subs)
	}
	if resp["command_status"] != 0.0 || resp["message_id"] != subs[0].UpstreamID {
		t.Errorf("submit_sm_resp %v, want message_id %q", resp, subs[0].UpstreamID)
	}
	if receipt["receipted_message_id"] != subs[0].ReceiptID || receipt["message_state"] != 2.0 || receipt["source_addr"] != "61412345678" {
		t.Errorf("receipt %v, want id %q", receipt, subs[0].ReceiptID)
	}
	rt, err := smsgw.ParseReceiptText(fmt.Sprint(receipt["text"]))
	if err != nil || rt.ID != subs[0].ReceiptID || rt.Stat != "DELIVRD" {
		t.Errorf("receipt text %q: %+v, %v", receipt["text"], rt, err)
	}
	if mo["text"] != "MO from the simulator" || mo["source_addr"] != "61400000009" {
		t.Errorf("MO %v", mo)
	}
	if err := smsc.WaitReceiptAttempts(wctx, 1); err != nil {
		t.Fatal(err)
	}
	if a := smsc.ReceiptAttempts()[0]; a.Status != 0 || a.Err != nil {
		t.Errorf("receipt attempt %+v", a)
	}
}
