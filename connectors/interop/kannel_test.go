package interop_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/smsgw/smsgw"
)

// kannelWait bounds Kannel's start, its bind and the DLR round trip.
const kannelWait = 30 * time.Second

// requireKannel skips the test when Kannel is not installed
// (apt-get install -y --no-install-recommends kannel).
func requireKannel(t *testing.T) (bearerbox, smsbox string) {
	t.Helper()
	bearerbox, err := exec.LookPath("bearerbox")
	if err != nil {
		bearerbox = "/usr/sbin/bearerbox"
	}
	smsbox, err = exec.LookPath("smsbox")
	if err != nil {
		smsbox = "/usr/sbin/smsbox"
	}
	for _, p := range []string{bearerbox, smsbox} {
		if _, err := os.Stat(p); err != nil {
			t.Skip("Kannel is not installed: the Kannel interoperability test needs bearerbox and smsbox")
		}
	}
	return bearerbox, smsbox
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startBox runs a Kannel box until the test ends.
func startBox(t *testing.T, bin, conf string) {
	t.Helper()
	cmd := exec.Command(bin, conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), out.String())
		}
	})
}

// Kannel as a customer's ESME: sendsms → smsbox → bearerbox → submit_sm to
// the gateway's SMSC; the receipt comes back as deliver_sm and Kannel calls
// its dlr-url with the message ID the gateway gave.
func TestKannelAgainstGatewaySMSC(t *testing.T) {
	bearerbox, smsbox := requireKannel(t)
	s := startSMSC(t, `  - id: kannelco
    smpp: {systemId: kannel, password: "plain:kannelpw"}
`)

	// The customer's DLR endpoint.
	dlrs := make(chan url.Values, 10)
	hookLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hook := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dlrs <- r.URL.Query()
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = hook.Serve(hookLn) }()
	t.Cleanup(func() { hook.Close() })

	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "store"), 0o755); err != nil {
		t.Fatal(err)
	}
	vars := struct {
		Dir                                          string
		AdminPort, SMSBoxPort, SendSMSPort, SMPPPort int
		SystemID, Password                           string
	}{dir, freePort(t), freePort(t), freePort(t), s.port, "kannel", "kannelpw"}
	tmpl, err := template.ParseFiles("kannel.conf.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "kannel.conf")
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, vars); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	startBox(t, bearerbox, conf)
	waitPort(t, vars.SMSBoxPort)
	startBox(t, smsbox, conf)
	waitPort(t, vars.SendSMSPort)

	// sendsms, once bearerbox has bound to the gateway.
	dlrURL := fmt.Sprintf("http://%s/dlr?type=%%d&id=%%F&reply=%%A", hookLn.Addr())
	q := url.Values{
		"username": {"tester"}, "password": {"testpw"},
		"from": {"KANNEL"}, "to": {"61412345678"}, "text": {"Hello from Kannel"},
		"dlr-mask": {"3"}, "dlr-url": {dlrURL},
	}
	sendURL := fmt.Sprintf("http://127.0.0.1:%d/cgi-bin/sendsms?%s", vars.SendSMSPort, q.Encode())
	resp, err := http.Get(sendURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("sendsms: HTTP %d %s", resp.StatusCode, body)
	}

	var m smsgw.Message
	select {
	case m = <-s.sub.seen:
	case <-time.After(kannelWait):
		t.Fatalf("Kannel's submit_sm never reached the gateway (sendsms said %q)", body)
	}
	if m.CustomerID != "kannelco" || m.From != "KANNEL" || m.To != "+61412345678" || m.Text != "Hello from Kannel" || !m.ReceiptRequested {
		t.Fatalf("the gateway got %+v", m)
	}

	s.deliverReceipt(t, "kannelco", m)
	select {
	case dlr := <-dlrs:
		if dlr.Get("type") != "1" || dlr.Get("id") != m.ID || !strings.Contains(dlr.Get("reply"), "stat:DELIVRD") {
			t.Fatalf("Kannel's DLR callback %v, want type 1 (delivered) for %s", dlr, m.ID)
		}
	case <-time.After(kannelWait):
		t.Fatal("Kannel never called its dlr-url: the receipt did not match its message")
	}
}

func waitPort(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(kannelWait)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on port %d: %v", port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
