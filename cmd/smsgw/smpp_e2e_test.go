package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppserver"
	"github.com/smsgw/smsgw/connectors/smppserver/esme"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
	"github.com/smsgw/smsgw/store/mongostore"
)

// smppCustomer submits over SMPP and hears back over SMPP only.
var smppCustomer = gatewayExtras{customers: `  - id: smppco
    smpp: {systemId: smppco, password: "plain:smpp-pw"}
`}

func smppBind(t *testing.T, ctx context.Context, g *gateway, cmd uint32) *esme.Client {
	t.Helper()
	return smppBindAs(t, ctx, g, cmd, "smppco", "smpp-pw")
}

// smppBindAs binds to the gateway's SMSC with the given credentials.
func smppBindAs(t *testing.T, ctx context.Context, g *gateway, cmd uint32, systemID, password string) *esme.Client {
	t.Helper()
	c, err := esme.Dial(ctx, g.smpp, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	resp, err := c.Bind(ctx, cmd, systemID, password)
	if err != nil || resp.Status != 0 {
		t.Fatalf("bind as %s: %+v %v", systemID, resp.Header, err)
	}
	return c
}

func smppSubmit(t *testing.T, ctx context.Context, c *esme.Client, text string) string {
	t.Helper()
	status, id, err := c.Submit(ctx, smppwire.Message{
		SourceTON: 5, Source: "SMPPCO", DestTON: 1, DestNPI: 1, Dest: "61412345678",
		RegisteredDelivery: 1, ShortMessage: []byte(text),
	})
	if err != nil || status != 0 || len(id) != 32 {
		t.Fatalf("submit_sm: status 0x%08X id %q %v", status, id, err)
	}
	return id
}

// waitReceipt returns the receipt for id and checks it says DELIVRD.
func waitReceipt(t *testing.T, ctx context.Context, c *esme.Client, id string) {
	t.Helper()
	fr, err := c.WaitFor(ctx, func(f smppwire.Frame) bool {
		m, err := esme.DecodeDeliver(f)
		return err == nil && smppwire.TLVString(m.TLVs[smppwire.TagReceiptedMessageID]) == id
	})
	if err != nil {
		t.Fatalf("no receipt for %s: %v", id, err)
	}
	m, _ := esme.DecodeDeliver(fr)
	rt, err := smsgw.ParseReceiptText(string(m.ShortMessage))
	if err != nil || rt.ID != id || rt.Stat != "DELIVRD" || m.ESMClass != smppwire.ESMClassSMSCReceipt ||
		m.TLVs[smppwire.TagMessageState][0] != smppserver.StateDelivered || m.Dest != "SMPPCO" || m.Source != "61412345678" {
		t.Fatalf("receipt %q %+v: %+v %v", m.ShortMessage, m, rt, err)
	}
}

// smppSubmitLater submits a message scheduled an hour from now, valid for a
// day, and returns its ID.
func smppSubmitLater(t *testing.T, ctx context.Context, c *esme.Client, text string) string {
	t.Helper()
	status, id, err := c.Submit(ctx, smppwire.Message{
		SourceTON: 5, Source: "SMPPCO", DestTON: 1, DestNPI: 1, Dest: "61412345678",
		RegisteredDelivery: 1, ShortMessage: []byte(text),
		ScheduleDelivery: "000000010000000R", ValidityPeriod: "000001000000000R",
	})
	if err != nil || status != 0 {
		t.Fatalf("scheduled submit_sm: 0x%08X %v", status, err)
	}
	return id
}

// smppCallUntilOK sends a request until it is answered with status 0 (the
// workflow of a message just submitted may not have recorded it yet) or
// ctx ends, and returns the last answer.
func smppCallUntilOK(t *testing.T, ctx context.Context, c *esme.Client, pdu []byte) smppwire.Frame {
	t.Helper()
	for {
		resp, err := c.Call(ctx, pdu)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status == 0 || ctx.Err() != nil {
			return resp
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestEndToEndSMPPSubmitAndReceipt(t *testing.T) {
	g := startGatewayWith(t, "", smppCustomer)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := smppBind(t, ctx, g, smppwire.BindTransceiver)
	id := smppSubmit(t, ctx, c, "Hello over SMPP")
	waitReceipt(t, ctx, c, id)

	// query_sm agrees, and the SMSC got the text once.
	deadline := time.Now().Add(10 * time.Second)
	for {
		q := append(smppwire.HeaderOnly(smppwire.QuerySM, 0, 0), id...)
		q = append(q, 0, 5, 0)
		q = append(q, "SMPPCO\x00"...)
		q[3] = byte(len(q))
		r, err := c.Call(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		body := r.Body()
		if r.Status == 0 && len(body) >= 2 && body[len(body)-2] == smppserver.StateDelivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("query_sm answered %+v % x", r.Header, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var seen int
	for _, s := range g.sim.Submits() {
		if string(s.ShortMessage) == "Hello over SMPP" {
			seen++
		}
	}
	if seen != 1 {
		t.Fatalf("the upstream SMSC got the message %d times", seen)
	}
	if err := c.Unbind(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestEndToEndSMPPReceiptWaitsForABind(t *testing.T) {
	g := startGatewayWith(t, "", smppCustomer)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tx := smppBind(t, ctx, g, smppwire.BindTransmitter)
	id := smppSubmit(t, ctx, tx, "Receipt for later")
	if err := tx.Unbind(ctx); err != nil {
		t.Fatal(err)
	}

	// The receipt waits in the outbox while no receiver is bound.
	events, err := mongostore.Open(ctx, g.mongoURI, g.mongoDB)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close(context.Background())
	outbox, err := events.Outbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for {
		pending, err := outbox.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if pending["smppco"] == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the receipt never reached the outbox")
		}
		time.Sleep(100 * time.Millisecond)
	}

	rx := smppBind(t, ctx, g, smppwire.BindReceiver)
	waitReceipt(t, ctx, rx, id)
	for {
		pending, err := outbox.Pending(ctx)
		if err == nil && pending["smppco"] == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the delivered receipt stays in the outbox: %v %v", pending, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := strings.Count(receiptIDs(rx), id); got != 1 {
		t.Fatalf("receipt delivered %d times", got)
	}
}

// A receipt no receiver bind takes within the outbox's lifetime is listed
// as a failed notification; redelivered through the API long after its
// status, it reaches the customer's bind, and is then listed as delivered.
func TestEndToEndSMPPExpiredReceiptIsRedelivered(t *testing.T) {
	g := startGatewayWith(t, "", gatewayExtras{
		customers: `  - id: smppco
    apiKeys: ["plain:smppco-key"]
    smpp: {systemId: smppco, password: "plain:smpp-pw"}
`,
		flags: []string{"-smpp-outbox-ttl", "2s", "-smpp-outbox-sweep", "200ms"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	tx := smppBind(t, ctx, g, smppwire.BindTransmitter)
	id := smppSubmit(t, ctx, tx, "Receipt nobody takes in time")
	if err := tx.Unbind(ctx); err != nil {
		t.Fatal(err)
	}

	var failed map[string]any
	for failed == nil {
		if ctx.Err() != nil {
			t.Fatal("the expired receipt is not listed as a failed notification")
		}
		time.Sleep(200 * time.Millisecond)
		_, list := g.do(t, "GET", "/v1/notifications/failed", "smppco-key", "")
		for _, n := range asList(list["notifications"]) {
			if n["messageId"] == id {
				failed = n
			}
		}
	}
	if failed["channel"] != "smpp" || failed["subject"] != "DELIVERED-DELIVRD" || failed["deliveredAt"] != nil ||
		!strings.Contains(fmt.Sprint(failed["reason"]), "no receiver bind") {
		t.Fatalf("failed notification %v", failed)
	}
	// Older than the outbox's lifetime by now, the redelivery still goes out.
	time.Sleep(2 * time.Second)
	rx := smppBind(t, ctx, g, smppwire.BindReceiver)
	code, re := g.do(t, "POST", "/v1/notifications/"+fmt.Sprint(failed["id"])+":redeliver", "smppco-key", "{}")
	if code != 200 || re["workflowId"] == "" {
		t.Fatalf("redeliver: HTTP %d %v", code, re)
	}
	waitReceipt(t, ctx, rx, id)
	for {
		_, list := g.do(t, "GET", "/v1/notifications/failed", "smppco-key", "")
		if l := asList(list["notifications"]); len(l) == 1 && l[0]["deliveredAt"] != nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the redelivered notification is not listed as delivered: %v", list)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := strings.Count(receiptIDs(rx), id); got != 1 {
		t.Fatalf("receipt delivered %d times", got)
	}
}

func receiptIDs(c *esme.Client) string {
	var ids []string
	for _, f := range c.Received() {
		if m, err := esme.DecodeDeliver(f); err == nil {
			ids = append(ids, smppwire.TLVString(m.TLVs[smppwire.TagReceiptedMessageID]))
		}
	}
	return strings.Join(ids, ",")
}

// cancelSM is a cancel_sm for one of smppco's messages.
func cancelSM(id string) []byte {
	b := smppwire.HeaderOnly(smppwire.CancelSM, 0, 0)
	b = append(b, 0)               // service_type
	b = append(b, id...)           // message_id
	b = append(b, 0, 5, 0)         // source TON, NPI
	b = append(b, "SMPPCO\x00"...) // source_addr
	b = append(b, 1, 1)            // destination TON, NPI
	b = append(b, "61412345678\x00"...)
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

func TestEndToEndSMPPScheduledAndCancelled(t *testing.T) {
	g := startGatewayWith(t, "", smppCustomer)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := smppBind(t, ctx, g, smppwire.BindTransceiver)

	// Scheduled an hour from now, then withdrawn before it goes.
	id := smppSubmitLater(t, ctx, c, "later")
	resp := smppCallUntilOK(t, ctx, c, cancelSM(id))
	if resp.CommandID != smppwire.CancelSM|smppwire.ResponseBit || resp.Status != 0 {
		t.Fatalf("cancel_sm_resp %+v", resp.Header)
	}
	fr, err := c.WaitFor(ctx, func(f smppwire.Frame) bool {
		m, err := esme.DecodeDeliver(f)
		return err == nil && smppwire.TLVString(m.TLVs[smppwire.TagReceiptedMessageID]) == id
	})
	if err != nil {
		t.Fatalf("no receipt for the cancelled message: %v", err)
	}
	m, _ := esme.DecodeDeliver(fr)
	if rt, err := smsgw.ParseReceiptText(string(m.ShortMessage)); err != nil || rt.Stat != "DELETED" {
		t.Fatalf("receipt %q, want stat DELETED", m.ShortMessage)
	}
	for _, s := range g.sim.Submits() {
		if string(s.ShortMessage) == "later" {
			t.Fatal("a cancelled message reached the SMSC")
		}
	}

	// A message already sent cannot be taken back.
	sent := smppSubmit(t, ctx, c, "now")
	waitReceipt(t, ctx, c, sent)
	if resp, err := c.Call(ctx, cancelSM(sent)); err != nil || resp.Status != smppstatus.ESME_RCANCELFAIL {
		t.Fatalf("cancel of a delivered message: %+v %v", resp.Header, err)
	}
}

// TestEndToEndMOToSMPPBind sends a mobile-originated message from the
// upstream SMSC to a number an SMPP customer owns: it arrives as a
// deliver_sm (esm_class 0) on the customer's receiver bind.
func TestEndToEndMOToSMPPBind(t *testing.T) {
	g := startGatewayWith(t, "", gatewayExtras{customers: `  - id: smppco
    smpp: {systemId: smppco, password: "plain:smpp-pw"}
    numbers: [{number: "+61400000099"}]
    notify: {channels: [smpp]}
`})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rx := smppBind(t, ctx, g, smppwire.BindReceiver)
	if err := g.sim.WaitBinds(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := g.sim.InjectMO(ctx, "61412345678", "61400000099", 0, 0, []byte("Hello from a phone")); err != nil {
		t.Fatal(err)
	}
	fr, err := rx.WaitFor(ctx, func(f smppwire.Frame) bool {
		m, err := esme.DecodeDeliver(f)
		return err == nil && m.ESMClass&0x3C == 0 && string(m.ShortMessage) == "Hello from a phone"
	})
	if err != nil {
		t.Fatalf("no MO deliver_sm on the customer's bind: %v", err)
	}
	m, _ := esme.DecodeDeliver(fr)
	if m.Source != "61412345678" || m.Dest != "61400000099" {
		t.Fatalf("MO deliver_sm from %q to %q", m.Source, m.Dest)
	}
}

// replaceSM is a replace_sm giving one of smppco's messages a new text and schedule.
func replaceSM(id, schedule, text string) []byte {
	b := smppwire.HeaderOnly(smppwire.ReplaceSM, 0, 0)
	b = append(b, id...)
	b = append(b, 0, 5, 0)               // message_id end; source TON, NPI
	b = append(b, "SMPPCO\x00"...)       // source_addr
	b = append(b, schedule...)           // schedule_delivery_time
	b = append(b, 0, 0)                  // end of it; validity_period (unchanged)
	b = append(b, 1, 0, byte(len(text))) // registered_delivery, sm_default_msg_id, sm_length
	b = append(b, text...)
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

func TestEndToEndSMPPReplace(t *testing.T) {
	g := startGatewayWith(t, "", smppCustomer)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := smppBind(t, ctx, g, smppwire.BindTransceiver)
	id := smppSubmitLater(t, ctx, c, "first draft")
	// New text, and go in 2 seconds instead of an hour.
	resp := smppCallUntilOK(t, ctx, c, replaceSM(id, "000000000002000R", "final words"))
	if resp.CommandID != smppwire.ReplaceSM|smppwire.ResponseBit || resp.Status != 0 {
		t.Fatalf("replace_sm_resp %+v", resp.Header)
	}
	waitReceipt(t, ctx, c, id)
	var texts []string
	for _, s := range g.sim.Submits() {
		if s.SourceAddr == "SMPPCO" {
			texts = append(texts, string(s.ShortMessage))
		}
	}
	if len(texts) != 1 || texts[0] != "final words" {
		t.Fatalf("the SMSC got %q, want only the replaced text", texts)
	}
	if resp, err := c.Call(ctx, replaceSM(id, "", "too late")); err != nil || resp.Status != smppstatus.ESME_RREPLACEFAIL {
		t.Fatalf("replace of a delivered message: %+v %v", resp.Header, err)
	}
}
