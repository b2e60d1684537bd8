package interop_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/connectors/smppserver"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/mongostore"
)

// acceptor stands in for the gateway's Submitter: it validates each
// message as the real one does and keeps it.
type acceptor struct {
	mu   sync.Mutex
	got  []smsgw.Message
	seen chan smsgw.Message
}

func newAcceptor() *acceptor { return &acceptor{seen: make(chan smsgw.Message, 10)} }

func (a *acceptor) Submit(_ context.Context, m smsgw.Message) (smsgw.Accepted, error) {
	if err := m.Validate(); err != nil {
		return smsgw.Accepted{}, err
	}
	a.mu.Lock()
	m.ID = fmt.Sprintf("%032x", len(a.got)+0xabc0)
	a.got = append(a.got, m)
	a.mu.Unlock()
	a.seen <- m
	return smsgw.Accepted{ID: m.ID, Status: smsgw.StatusAccepted}, nil
}

func (a *acceptor) next(t *testing.T) smsgw.Message {
	t.Helper()
	select {
	case m := <-a.seen:
		return m
	case <-time.After(wait):
		t.Fatal("no submission reached the gateway")
		return smsgw.Message{}
	}
}

// smsc is the gateway's SMSC on a loopback port, with an outbox on a real
// MongoDB-wire server, and the notification channel that fills it.
type smsc struct {
	addr    string
	port    int
	channel *smppserver.Channel
	sub     *acceptor
}

func startSMSC(t *testing.T, customers string) *smsc {
	t.Helper()
	cfg, err := config.Parse([]byte("customers:\n"+customers), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	live := config.Static(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	store, err := mongostore.Open(ctx, testenv.MongoURI(t), testenv.MongoDatabase(t), mongostore.WithLogger(logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := store.Outbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := &smsc{sub: newAcceptor()}
	srv, err := smppserver.New(smppserver.Config{PollInterval: 100 * time.Millisecond},
		smppserver.Deps{Config: live, Submitter: s.sub, Outbox: outbox, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	s.channel = &smppserver.Channel{Outbox: outbox, Config: live, Wake: srv.Wake}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr, s.port = ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		_ = store.Close(context.Background())
	})
	return s
}

// deliverReceipt does what the message workflow does when upstream says DELIVRD.
func (s *smsc) deliverReceipt(t *testing.T, customer string, m smsgw.Message) {
	t.Helper()
	err := s.channel.Deliver(context.Background(), smsgw.Delivery{
		Channel: smsgw.ChannelSMPP, CustomerID: customer,
		Notification: &smsgw.Notification{
			MessageID: m.ID, Status: smsgw.StatusDelivered, Stat: "DELIVRD", Seq: 5, Parts: 1,
			From: m.From, To: m.To, SubmittedAt: time.Now().Add(-time.Second).UTC(), OccurredAt: time.Now().UTC(),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A node-smpp ESME against the gateway's own SMSC: bind, submit, receipt, MO.
func TestNodeESMEAgainstGatewaySMSC(t *testing.T) {
	requireNode(t)
	s := startSMSC(t, `  - id: nodeco
    smpp: {systemId: nodeco, password: "plain:nodepw"}
`)
	node := startNode(t, "customer.js", fmt.Sprint(s.port), "nodeco", "nodepw")
	node.waitEvent(t, "bound", nil)
	m := s.sub.next(t)
	resp := node.waitEvent(t, "submit_sm_resp", nil)
	if resp["command_status"] != 0.0 || resp["message_id"] != m.ID {
		t.Fatalf("submit_sm_resp %v, want message_id %s", resp, m.ID)
	}
	if m.CustomerID != "nodeco" || m.EntryPoint != smsgw.EntrySMPP || m.From != "NODE" || m.To != "+61412345678" ||
		m.Text != "Grüße from node-smpp" || !m.ReceiptRequested {
		t.Fatalf("the gateway got %+v", m)
	}

	s.deliverReceipt(t, "nodeco", m)
	receipt := node.waitEvent(t, "receipt", nil)
	if receipt["receipted_message_id"] != m.ID || receipt["message_state"] != 2.0 || receipt["destination_addr"] != "NODE" ||
		receipt["source_addr"] != "61412345678" {
		t.Errorf("receipt %v", receipt)
	}
	rt, err := smsgw.ParseReceiptText(fmt.Sprint(receipt["text"]))
	if err != nil || rt.ID != m.ID || rt.Stat != "DELIVRD" || rt.Err != "000" || rt.Dlvrd != "001" {
		t.Errorf("receipt text %q: %+v %v", receipt["text"], rt, err)
	}

	err = s.channel.Deliver(context.Background(), smsgw.Delivery{
		Channel: smsgw.ChannelSMPP, CustomerID: "nodeco",
		Inbound: &smsgw.InboundMessage{ID: "in-1", From: "+61400000009", To: "+61412345678", Text: "Réponse", ReceivedAt: time.Now()},
	})
	if err != nil {
		t.Fatal(err)
	}
	mo := node.waitEvent(t, "mo", nil)
	if mo["source_addr"] != "61400000009" || mo["source_addr_ton"] != 1.0 || mo["destination_addr"] != "61412345678" || mo["text"] != "Réponse" {
		t.Errorf("MO %v", mo)
	}
	node.waitEvent(t, "unbound", nil)
	<-node.exited
	if node.exitErr != nil {
		t.Errorf("customer.js: %v", node.exitErr)
	}
	if strings.Contains(node.stderr.String(), "Error") {
		t.Errorf("customer.js stderr: %s", node.stderr.String())
	}
}
