package interop_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/connectors/smppclient"
	"github.com/smsgw/smsgw/connectors/upstream"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/mongostore"
	"github.com/smsgw/smsgw/worker"
	"github.com/smsgw/smsgw/workflows"
)

// signals records the receipts the matcher hands to message workflows.
type signals struct {
	mu  sync.Mutex
	got map[string][]workflows.ReceiptSignal // by message ID
	ch  chan struct{}
}

func (s *signals) SignalReceipt(_ context.Context, messageID string, r workflows.ReceiptSignal) error {
	s.mu.Lock()
	s.got[messageID] = append(s.got[messageID], r)
	s.mu.Unlock()
	s.ch <- struct{}{}
	return nil
}

// moSink takes the matcher's receipts and accepts MO.
type moSink struct{ *upstream.Matcher }

func (moSink) HandleMO(context.Context, smsgw.MO) error { return nil }

// The connector's whole path against node-smpp: its configuration parsed
// from YAML, bound as two transmitter+receiver pairs with a system_type,
// parts sent by the send activity with its addressing and data_coding
// options, receipts correlated through the event store, a refusal that is
// one of the connector's re-route errors, and an unbind of every session.
func TestConnectorAgainstNodeSMSC(t *testing.T) {
	requireNode(t)
	if testing.Short() {
		t.Skip("needs a MongoDB-wire server (testenv starts FerretDB)")
	}
	node := startNode(t, "smsc.js")
	port := node.waitEvent(t, "listening", nil)["port"]

	cfg, err := config.Parse(fmt.Appendf(nil, `
connectors:
  - id: node
    address: "127.0.0.1:%v"
    systemId: smsgw
    password: ${NODE_PW}
    systemType: VMA
    bindMode: transmitter+receiver
    binds: 2
    windowSize: 5
    tps: 100
    enquireLink: 200ms
    responseTimeout: 2s
    rebindMin: 100ms
    rebindMax: 1s
    sourceTon: 0
    sourceNpi: 0
    dataCoding: {GSM7: 1}
    receiptIdFormat: hex
    inDoubt: fail
    rerouteErrors: [ESME_RINVDSTADR]
`, port), func(k string) (string, bool) { return "secret", k == "NODE_PW" })
	if err != nil {
		t.Fatal(err)
	}
	co := cfg.Connectors[0]
	cc, err := worker.ClientConfig(co)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	store, err := mongostore.Open(ctx, testenv.MongoURI(t), testenv.MongoDatabase(t), mongostore.WithLogger(logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close(context.Background())
	sig := &signals{got: map[string][]workflows.ReceiptSignal{}, ch: make(chan struct{}, 10)}
	matcher := upstream.NewMatcher(store, sig, logger(t), prometheus.NewRegistry())
	client, err := smppclient.New(cc, moSink{matcher}, logger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- client.Run(runCtx) }()
	defer func() { stopRun(); <-runDone }()
	for i := range 4 {
		node.waitEvent(t, "bound", func(ev map[string]any) bool { return ev["session"] == float64(i+1) })
	}
	if err := client.WaitBound(ctx); err != nil {
		t.Fatal(err)
	}
	modes := map[any]int{}
	for _, ev := range node.eventsSoFar() {
		if ev["event"] == "bound" {
			modes[ev["mode"]]++
			if ev["system_type"] != "VMA" {
				t.Errorf("bound with system_type %v", ev["system_type"])
			}
		}
	}
	if modes["transmitter"] != 2 || modes["receiver"] != 2 {
		t.Errorf("binds by mode %v, want two transmitters and two receivers", modes)
	}

	sender := &upstream.Sender{Connector: co, Bind: client, Matcher: matcher, Intents: store, Logger: logger(t), Now: time.Now}
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(tlog.NewStructuredLogger(logger(t)))
	send := func(in activities.SendInput) (activities.SendResult, error) {
		env := ts.NewTestActivityEnvironment()
		activities.RegisterSend(env, sender.Send)
		val, err := env.ExecuteActivity(activities.SendName, in)
		if err != nil {
			return activities.SendResult{}, err
		}
		var res activities.SendResult
		return res, val.Get(&res)
	}

	res, err := send(activities.SendInput{
		MessageID: "node-msg", ConnectorID: "node", From: "ACME", To: "+61412345678", Validity: time.Hour,
		Parts: []smsgw.Part{
			{Seq: 1, DataCoding: 0x00, ShortMessage: []byte("Hello from")},
			{Seq: 2, DataCoding: 0x08, ShortMessage: []byte{0x00, 'G', 0x00, 'r', 0x00, 0xFC, 0x00, 0xDF, 0x00, 'e'}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.UpstreamIDs) != 2 {
		t.Fatalf("result %+v", res)
	}
	first := node.waitEvent(t, "submit_sm", func(ev map[string]any) bool { return ev["text"] == "Hello from" })
	second := node.waitEvent(t, "submit_sm", func(ev map[string]any) bool { return ev["data_coding"] == 8.0 })
	for _, ev := range []map[string]any{first, second} {
		if ev["mode"] != "transmitter" || ev["source_addr"] != "ACME" || ev["source_addr_ton"] != 0.0 || ev["source_addr_npi"] != 0.0 ||
			ev["destination_addr"] != "61412345678" || ev["dest_addr_ton"] != 1.0 || ev["dest_addr_npi"] != 1.0 || ev["registered_delivery"] != 1.0 {
			t.Errorf("node-smpp received %v", ev)
		}
	}
	if first["data_coding"] != 1.0 {
		t.Errorf("GSM 7-bit part sent with data_coding %v, want the connector's 1", first["data_coding"])
	}
	if second["text"] != "Grüße" {
		t.Errorf("UCS-2 part read as %q", second["text"])
	}

	deadline := time.After(wait)
	for {
		sig.mu.Lock()
		got := append([]workflows.ReceiptSignal(nil), sig.got["node-msg"]...)
		sig.mu.Unlock()
		if len(got) == 2 {
			for _, s := range got {
				if s.Segment < 1 || s.Segment > 2 || s.Receipt.UpstreamID != res.UpstreamIDs[s.Segment-1] || s.Receipt.Stat != "DELIVRD" {
					t.Errorf("receipt signal %+v for IDs %v", s, res.UpstreamIDs)
				}
			}
			break
		}
		select {
		case <-sig.ch:
		case <-deadline:
			t.Fatalf("receipts signalled: %+v", got)
		}
	}
	// deliver_sm_resp goes out once the receipt is signalled, so node-smpp
	// may log it a moment after the signal: wait for it.
	node.waitEvent(t, "deliver_sm_resp", func(ev map[string]any) bool {
		return ev["kind"] == "receipt" && ev["command_status"] == 0.0
	})

	_, err = send(activities.SendInput{MessageID: "node-refused", ConnectorID: "node", From: "ACME", To: "+61400000000",
		Parts: []smsgw.Part{{Seq: 1, ShortMessage: []byte("nobody")}}})
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != activities.ErrTypeReroute || !ae.NonRetryable() {
		t.Errorf("refused with a re-route error: %v", err)
	}

	node.waitEvent(t, "enquire_link", nil)
	stopRun()
	if err := <-runDone; err != nil {
		t.Errorf("Run: %v", err)
	}
	runDone <- nil // for the deferred stop
	for i := range 4 {
		node.waitEvent(t, "unbind", func(ev map[string]any) bool { return ev["session"] == float64(i+1) })
	}
}
