package smppserver_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppserver"
	"github.com/smsgw/smsgw/connectors/smppserver/esme"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/segment"
	"github.com/smsgw/smsgw/store/mongostore"
)

// fixed date: ReceiptPDU and MOPDUs read no clock, and the outbox tests use base.
var t0 = time.Date(2026, 11, 26, 14, 3, 58, 0, time.UTC)

// base is when the outbox tests' statuses happened: now, since the outbox
// counts an item's lifetime on the real clock.
var base = time.Now().UTC().Truncate(time.Second)

// TestReceiptPDU pins the receipt's bytes, field by field.
func TestReceiptPDU(t *testing.T) {
	n := smsgw.Notification{
		MessageID: "0190abcdef", Status: smsgw.StatusDelivered, Seq: 4,
		OccurredAt: t0, SubmittedAt: t0.Add(-2 * time.Minute), Stat: "DELIVRD", ErrorCode: "0",
		From: "ACME", To: "+61412345678",
	}
	text := "id:0190abcdef sub:001 dlvrd:001 submit date:2611261401 done date:2611261403 stat:DELIVRD err:000 text:"
	body := bytes.Join([][]byte{
		{0},                               // service_type
		{1, 1}, []byte("61412345678\x00"), // source: the handset
		{5, 0}, []byte("ACME\x00"), // destination: the sender, alphanumeric
		{0x04, 0, 0}, // esm_class receipt, protocol_id, priority_flag
		{0}, {0},     // schedule_delivery_time, validity_period
		{0, 0, 0, 0}, // registered_delivery, replace_if_present, data_coding, sm_default_msg_id
		{byte(len(text))}, []byte(text),
		{0x00, 0x1E, 0x00, 0x0B}, []byte("0190abcdef\x00"), // receipted_message_id
		{0x04, 0x27, 0x00, 0x01, 0x02}, // message_state DELIVERED
	}, nil)
	want := append([]byte{0, 0, 0, byte(16 + len(body)), 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0}, body...)
	got := smppserver.ReceiptPDU(n)
	if !bytes.Equal(got, want) {
		t.Fatalf("receipt PDU\n got %s\nwant %s", hex.EncodeToString(got), hex.EncodeToString(want))
	}
	// The gateway's own receipt parser reads it back.
	m, err := smppwire.DecodeMessage(smppwire.DeliverSM, got[smppwire.HeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	rt, err := smsgw.ParseReceiptText(string(m.ShortMessage))
	if err != nil || rt.ID != n.MessageID || rt.Stat != "DELIVRD" || !rt.DoneDate.Equal(t0.Truncate(time.Minute)) {
		t.Fatalf("receipt text reads as %+v %v", rt, err)
	}

	for _, c := range []struct {
		status smsgw.Status
		stat   string
		code   string
		want   string
	}{
		{smsgw.StatusUndeliverable, "UNDELIV", "1", "stat:UNDELIV err:001"},
		{smsgw.StatusUndeliverable, "DELETED", "", "stat:DELETED err:000"},
		{smsgw.StatusExpired, "ENROUTE", "", "dlvrd:000 submit date:2611261401 done date:2611261403 stat:EXPIRED err:000"},
		{smsgw.StatusRejected, "", "NoRoute", "stat:REJECTD err:000"},
		{smsgw.StatusFailed, "", "", "stat:UNDELIV"},
		{smsgw.StatusSent, "ACCEPTD", "", "stat:ACCEPTD"},
		{smsgw.StatusSent, "", "", "stat:ENROUTE"},
	} {
		n := n
		n.Status, n.Stat, n.ErrorCode = c.status, c.stat, c.code
		m, _ := smppwire.DecodeMessage(smppwire.DeliverSM, smppserver.ReceiptPDU(n)[smppwire.HeaderLen:])
		if !strings.Contains(string(m.ShortMessage), c.want) {
			t.Errorf("%s/%s: %q lacks %q", c.status, c.stat, m.ShortMessage, c.want)
		}
	}
}

func TestMOPDUs(t *testing.T) {
	short, err := smppserver.MOPDUs(smsgw.InboundMessage{ID: "in-1", From: "+61400000009", To: "12345", Text: "Hi €"})
	if err != nil || len(short) != 1 {
		t.Fatalf("MOPDUs: %d %v", len(short), err)
	}
	m, _ := smppwire.DecodeMessage(smppwire.DeliverSM, short[0][smppwire.HeaderLen:])
	if m.Source != "61400000009" || m.SourceTON != 1 || m.Dest != "12345" || m.DestTON != 0 || m.ESMClass != 0 || m.DataCoding != 0 ||
		!bytes.Equal(m.ShortMessage, []byte{'H', 'i', ' ', 0x1B, 0x65}) {
		t.Fatalf("short MO %+v", m)
	}
	long := strings.Repeat("Привет ", 20) // UCS-2, 140 characters: three parts
	parts, err := smppserver.MOPDUs(smsgw.InboundMessage{ID: "in-2", From: "+61400000009", To: "+61412345678", Text: long})
	if err != nil || len(parts) != 3 {
		t.Fatalf("long MO: %d parts, %v", len(parts), err)
	}
	var asm segment.Assembly
	for _, p := range parts {
		m, _ := smppwire.DecodeMessage(smppwire.DeliverSM, p[smppwire.HeaderLen:])
		text, udh, err := segment.DecodePayload(m.DataCoding, m.ESMClass, m.ShortMessage)
		if err != nil || udh == nil || udh.Concat == nil || m.DataCoding != 0x08 {
			t.Fatalf("part %+v: %v", m, err)
		}
		if _, err := asm.Add(segment.IncomingPart{Ref: udh.Concat.Ref, Total: udh.Concat.Total, Seq: udh.Concat.Seq, Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	if got, partial := asm.Text(); partial || got != long {
		t.Fatalf("reassembled %q", got)
	}
	again, _ := smppserver.MOPDUs(smsgw.InboundMessage{ID: "in-2", From: "+61400000009", To: "+61412345678", Text: long})
	if !bytes.Equal(again[0], parts[0]) {
		t.Fatal("building the same MO twice gave other bytes")
	}
}

// outbox opens the outbox on a database of its own.
func outbox(t testing.TB, uri string) (*mongostore.Outbox, string) {
	t.Helper()
	ob, _, db := outboxStore(t, uri)
	return ob, db
}

// outboxStore opens the outbox on a database of its own, with the event
// store it records failures in.
func outboxStore(t testing.TB, uri string) (*mongostore.Outbox, *mongostore.Store, string) {
	t.Helper()
	db := testenv.MongoDatabase(t)
	ctx := ctxFor(t)
	store, err := mongostore.Open(ctx, uri, db, mongostore.WithLogger(logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	if err := store.CreateInboundIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	ob, err := store.Outbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ob, store, db
}

func receipt(id string, seq int) smsgw.Delivery {
	return smsgw.Delivery{Channel: smsgw.ChannelSMPP, CustomerID: "acme", Notification: &smsgw.Notification{
		MessageID: id, Status: smsgw.StatusDelivered, Seq: seq, Stat: "DELIVRD",
		OccurredAt: base.Add(time.Duration(seq) * time.Second), SubmittedAt: base, From: "ACME", To: "+61412345678",
	}}
}

func receiptID(f smppwire.Frame) string {
	m, err := esme.DecodeDeliver(f)
	if err != nil {
		return ""
	}
	return smppwire.TLVString(m.TLVs[smppwire.TagReceiptedMessageID])
}

// outboxFixture is an SMPP server polling its outbox, and the channel
// that writes to it, on a fresh event store.
func outboxFixture(t *testing.T) (*mongostore.Outbox, *fixture, *smppserver.Channel) {
	t.Helper()
	ob, _ := outbox(t, testenv.MongoURI(t))
	cfg := testConfig(t)
	f := start(t, smppserver.Config{PollInterval: 50 * time.Millisecond}, smppserver.Deps{Config: cfg, Outbox: ob})
	return ob, f, &smppserver.Channel{Outbox: ob, Config: cfg, Wake: f.srv.Wake}
}

func TestReceiptsReachTheReceiverOnce(t *testing.T) {
	t.Parallel()
	ob, f, ch := outboxFixture(t)
	ctx := ctxFor(t)

	// A receipt written while the customer is not bound waits for its bind.
	if err := ch.Deliver(ctx, receipt("early", 1)); err != nil {
		t.Fatal(err)
	}
	// A transmitter gets nothing; a receiver gets it.
	tx := f.bound(t, smppwire.BindTransmitter, "acme", "secret")
	rx := f.bound(t, smppwire.BindReceiver, "acme", "secret")
	fr, err := rx.WaitFor(ctx, func(fr smppwire.Frame) bool { return receiptID(fr) == "early" })
	if err != nil {
		t.Fatal(err)
	}
	m, _ := esme.DecodeDeliver(fr)
	if m.ESMClass != smppwire.ESMClassSMSCReceipt || m.Dest != "ACME" || m.Source != "61412345678" || m.TLVs[smppwire.TagMessageState][0] != 2 {
		t.Fatalf("receipt %+v", m)
	}
	// Written again by a retried activity: still delivered once.
	if err := ch.Deliver(ctx, receipt("early", 1)); err != nil {
		t.Fatal(err)
	}
	if err := ch.Deliver(ctx, receipt("later", 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := rx.WaitFor(ctx, func(fr smppwire.Frame) bool { return receiptID(fr) == "later" }); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		pending, err := ob.Pending(ctx)
		return err == nil && pending["acme"] == 0
	})
	time.Sleep(200 * time.Millisecond)
	var early int
	for _, fr := range rx.Received() {
		if receiptID(fr) == "early" {
			early++
		}
	}
	if early != 1 || len(tx.Received()) != 0 {
		t.Fatalf("receiver got the receipt %d times, transmitter got %d PDUs", early, len(tx.Received()))
	}

	// A customer with no SMPP access is refused for good.
	err = ch.Deliver(ctx, smsgw.Delivery{CustomerID: "nobody", Notification: receipt("x", 1).Notification})
	if err == nil || !strings.Contains(err.Error(), smsgw.ErrRefused.Error()) {
		t.Fatalf("delivery to a customer without SMPP: %v", err)
	}
}

func TestRefusedReceiptIsOfferedAgain(t *testing.T) {
	t.Parallel()
	ob, _ := outbox(t, testenv.MongoURI(t))
	cfg := testConfig(t)
	f := start(t, smppserver.Config{PollInterval: 50 * time.Millisecond}, smppserver.Deps{Config: cfg, Outbox: ob})
	ch := &smppserver.Channel{Outbox: ob, Config: cfg, Wake: f.srv.Wake}
	rx := f.bound(t, smppwire.BindTransceiver, "acme", "secret")
	answerNth(rx, 1, smppstatus.ESME_RX_T_APPN)
	ctx := ctxFor(t)
	if err := ch.Deliver(ctx, receipt("m1", 1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		pending, err := ob.Pending(ctx)
		return err == nil && pending["acme"] == 0
	})
	if got := f.metric(t, "smsgw_smpp_deliveries_total", "acme", "receipt", "refused"); got != 1 {
		t.Errorf("refused deliveries %v, want 1", got)
	}
	if got := f.metric(t, "smsgw_smpp_deliveries_total", "acme", "receipt", "ok"); got != 1 {
		t.Errorf("ok deliveries %v, want 1", got)
	}
}

// Two replicas share one outbox; the customer is bound to both. Every
// receipt reaches it exactly once.
func TestTwoReplicasDeliverEachReceiptOnce(t *testing.T) {
	t.Parallel()
	uri := testenv.MongoURI(t)
	ob, db := outbox(t, uri)
	store2, err := mongostore.Open(ctxFor(t), uri, db, mongostore.WithLogger(logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store2.Close(context.Background()) })
	ob2, err := store2.Outbox(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	a := start(t, smppserver.Config{ReplicaID: "a", PollInterval: 20 * time.Millisecond, DeliverWindow: 3}, smppserver.Deps{Config: cfg, Outbox: ob})
	b := start(t, smppserver.Config{ReplicaID: "b", PollInterval: 20 * time.Millisecond, DeliverWindow: 3}, smppserver.Deps{Config: cfg, Outbox: ob2})
	clients := []*esme.Client{
		a.bound(t, smppwire.BindReceiver, "acme", "secret"),
		b.bound(t, smppwire.BindReceiver, "acme", "secret"),
		b.bound(t, smppwire.BindTransceiver, "acme", "secret"),
	}
	// Each bind takes 20 ms per deliver_sm, so no replica can drain the
	// outbox alone before the other's next poll: both must take a share.
	for _, c := range clients {
		c.SetAnswer(func(smppwire.Frame) uint32 { time.Sleep(20 * time.Millisecond); return 0 })
	}
	ch := &smppserver.Channel{Outbox: ob, Config: cfg}
	const n = 30
	ctx := ctxFor(t)
	for i := range n {
		if err := ch.Deliver(ctx, receipt(fmt.Sprintf("m%02d", i), i+1)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, func() bool {
		pending, err := ob.Pending(ctx)
		return err == nil && pending["acme"] == 0
	})
	time.Sleep(300 * time.Millisecond)
	seen := map[string]int{}
	perClient := make([]int, len(clients))
	for i, c := range clients {
		for _, fr := range c.Received() {
			if id := receiptID(fr); id != "" {
				seen[id]++
				perClient[i]++
			}
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct receipts delivered, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("receipt %s delivered %d times", id, k)
		}
	}
	if perClient[0] == 0 || perClient[1]+perClient[2] == 0 {
		t.Errorf("receipts per client: %v; want both replicas to deliver a share", perClient)
	}
}

// A receipt whose status is older than the outbox's TTL (a late receipt, a
// workflow that waited out a store outage) still reaches the bind: its
// lifetime counts from when it is written.
func TestOldReceiptIsNotBornExpired(t *testing.T) {
	t.Parallel()
	ob, _ := outbox(t, testenv.MongoURI(t))
	cfg := testConfig(t)
	f := start(t, smppserver.Config{PollInterval: 50 * time.Millisecond}, smppserver.Deps{Config: cfg, Outbox: ob})
	ch := &smppserver.Channel{Outbox: ob, Config: cfg, TTL: time.Minute, Wake: f.srv.Wake}
	ctx := ctxFor(t)
	d := receipt("stale", 1)
	d.Notification.OccurredAt = time.Now().Add(-10 * time.Minute)
	d.Notification.SubmittedAt = d.Notification.OccurredAt.Add(-time.Minute)
	if err := ch.Deliver(ctx, d); err != nil {
		t.Fatal(err)
	}
	it, ok, err := ob.Get(ctx, "receipt:stale:1:DELIVERED-DELIVRD")
	if err != nil || !ok {
		t.Fatalf("item not stored: %v", err)
	}
	if until := time.Until(it.ExpiresAt); until < 50*time.Second || until > time.Minute {
		t.Fatalf("the item expires in %v, want about a minute from now", until)
	}
	rx := f.bound(t, smppwire.BindReceiver, "acme", "secret")
	if _, err := rx.WaitFor(ctx, func(fr smppwire.Frame) bool { return receiptID(fr) == "stale" }); err != nil {
		t.Fatal(err)
	}
}

// An item no receiver bind takes in time is recorded as a failed
// notification, listed with the reason; redelivered, it reaches the bind
// once the customer binds, and the failure is then listed as delivered.
func TestExpiredItemIsRecordedAsFailedAndRedelivered(t *testing.T) {
	t.Parallel()
	ob, store, _ := outboxStore(t, testenv.MongoURI(t))
	cfg := testConfig(t)
	f := start(t, smppserver.Config{PollInterval: 50 * time.Millisecond}, smppserver.Deps{Config: cfg, Outbox: ob})
	ch := &smppserver.Channel{Outbox: ob, Config: cfg, TTL: 300 * time.Millisecond, Wake: f.srv.Wake}
	ctx := ctxFor(t)
	if err := ch.Deliver(ctx, receipt("old", 1)); err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { f.srv.Maintain(mctx, 20*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	eventually(t, func() bool { return f.metric(t, "smsgw_smpp_outbox_expired_total", "acme") == 1 })
	if _, ok, _ := ob.Get(ctx, "receipt:old:1:DELIVERED-DELIVRD"); ok {
		t.Fatal("expired item still in the outbox")
	}
	failed, _, err := store.ListFailedNotifications(ctx, "acme", "", 10)
	if err != nil || len(failed) != 1 {
		t.Fatalf("failed notifications %+v, %v; want one", failed, err)
	}
	fn := failed[0]
	if fn.Channel != smsgw.ChannelSMPP || fn.Subject != "old" || fn.What != "DELIVERED-DELIVRD" || fn.DeliveredAt != nil ||
		!strings.Contains(fn.Reason, "no receiver bind") || fn.Delivery.Notification == nil || fn.Delivery.Notification.MessageID != "old" {
		t.Fatalf("failed notification %+v", fn)
	}

	// Redelivered (as the API's redelivery workflow does) with a longer
	// lifetime, long after the status: it waits for the bind and reaches it.
	redelivery := fn.Delivery
	redelivery.Redelivers = fn.EventID
	ch.TTL = time.Minute
	if err := ch.Deliver(ctx, redelivery); err != nil {
		t.Fatal(err)
	}
	rx := f.bound(t, smppwire.BindReceiver, "acme", "secret")
	if _, err := rx.WaitFor(ctx, func(fr smppwire.Frame) bool { return receiptID(fr) == "old" }); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		failed, _, err := store.ListFailedNotifications(ctx, "acme", "", 10)
		return err == nil && len(failed) == 1 && failed[0].DeliveredAt != nil
	})
	if got := f.metric(t, "smsgw_smpp_outbox_expired_total", "acme"); got != 1 {
		t.Errorf("%v items expired, want 1", got)
	}
}

// The parts of a long MO that expire are one failed notification, which
// redelivers the whole message.
func TestExpiredMOPartsAreOneFailure(t *testing.T) {
	t.Parallel()
	ob, store, _ := outboxStore(t, testenv.MongoURI(t))
	cfg := testConfig(t)
	f := start(t, smppserver.Config{}, smppserver.Deps{Config: cfg, Outbox: ob})
	ch := &smppserver.Channel{Outbox: ob, Config: cfg, TTL: 200 * time.Millisecond}
	ctx := ctxFor(t)
	in := &smsgw.InboundMessage{ID: "in-long", From: "+61400000009", To: "12345", Text: strings.Repeat("long message ", 30), ReceivedAt: base}
	if err := ch.Deliver(ctx, smsgw.Delivery{Channel: smsgw.ChannelSMPP, CustomerID: "acme", Inbound: in}); err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { f.srv.Maintain(mctx, 20*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	eventually(t, func() bool { return f.metric(t, "smsgw_smpp_outbox_expired_total", "acme") == 3 })
	failed, _, err := store.ListFailedNotifications(ctx, "acme", "", 10)
	if err != nil || len(failed) != 1 || failed[0].What != "inbound" || failed[0].Delivery.Inbound == nil || failed[0].Delivery.Inbound.Text != in.Text {
		t.Fatalf("failed notifications %+v, %v; want the one MO", failed, err)
	}
}

// A receipt the customer's bind refuses for good is not offered again; it
// is recorded as a failed notification, to be redelivered on request.
func TestReceiptRefusedForGoodIsRecordedAsFailed(t *testing.T) {
	t.Parallel()
	ob, store, _ := outboxStore(t, testenv.MongoURI(t))
	cfg := testConfig(t)
	f := start(t, smppserver.Config{PollInterval: 50 * time.Millisecond}, smppserver.Deps{Config: cfg, Outbox: ob})
	ch := &smppserver.Channel{Outbox: ob, Config: cfg, Wake: f.srv.Wake}
	rx := f.bound(t, smppwire.BindReceiver, "acme", "secret")
	rx.SetAnswer(func(smppwire.Frame) uint32 { return smppstatus.ESME_RX_P_APPN })
	ctx := ctxFor(t)
	if err := ch.Deliver(ctx, receipt("unwanted", 1)); err != nil {
		t.Fatal(err)
	}
	var failed []smsgw.FailedNotification
	eventually(t, func() bool {
		var err error
		failed, _, err = store.ListFailedNotifications(ctx, "acme", "", 10)
		return err == nil && len(failed) == 1
	})
	if fn := failed[0]; fn.Channel != smsgw.ChannelSMPP || fn.Subject != "unwanted" || fn.DeliveredAt != nil ||
		!strings.Contains(fn.Reason, "refused") || fn.Delivery.Notification == nil {
		t.Fatalf("failed notification %+v", fn)
	}
	// The failure is recorded before the item leaves the outbox (a crash
	// between the two offers it again), so the outbox empties a moment
	// after the failure shows.
	eventually(t, func() bool {
		pending, err := ob.Pending(ctx)
		return err == nil && pending["acme"] == 0
	})
	time.Sleep(300 * time.Millisecond)
	if n := len(rx.Received()); n != 1 {
		t.Fatalf("the refused receipt was offered %d times, want once", n)
	}
}

// A low-balance notice goes to the customer's receiver bind as a plain
// deliver_sm from BILLING (or the customer's billing.lowBalanceFrom) with
// the alert's text; written while the customer is not bound it waits in
// the outbox, and written again it is delivered once.
func TestBalanceNoticeReachesTheReceiverOnce(t *testing.T) {
	t.Parallel()
	ob, f, ch := outboxFixture(t)
	ctx := ctxFor(t)
	alert := func(customer string) smsgw.Delivery {
		return smsgw.Delivery{Channel: smsgw.ChannelSMPP, CustomerID: customer, Balance: &smsgw.BalanceAlert{
			ID: "lowbalance-" + customer + "-EUR-10000000-m1-reserve", CustomerID: customer, Currency: "EUR",
			Threshold: "10.00", Available: "9.95", ThresholdMicros: 10_000_000, AvailableMicros: 9_950_000, OccurredAt: base,
		}}
	}
	const text = "Low balance: 9.95 EUR available, below your threshold of 10.00 EUR. Top up to keep sending."
	for _, customer := range []string{"acme", "other"} {
		if err := ch.Deliver(ctx, alert(customer)); err != nil {
			t.Fatal(err)
		}
		if err := ch.Deliver(ctx, alert(customer)); err != nil { // a retried activity
			t.Fatal(err)
		}
	}
	for customer, source := range map[string]string{"acme": "BILLING", "other": "FUNDS"} {
		rx := f.bound(t, smppwire.BindReceiver, customer, map[string]string{"acme": "secret", "other": "pw"}[customer])
		fr, err := rx.WaitFor(ctx, func(fr smppwire.Frame) bool {
			m, err := esme.DecodeDeliver(fr)
			return err == nil && m.Source == source
		})
		if err != nil {
			t.Fatalf("%s: %v", customer, err)
		}
		m, _ := esme.DecodeDeliver(fr)
		if m.SourceTON != 5 || m.ESMClass != 0 || m.DataCoding != 0 || string(m.ShortMessage) != text {
			t.Errorf("%s: notice %+v, text %q", customer, m, m.ShortMessage)
		}
		eventually(t, func() bool {
			pending, err := ob.Pending(ctx)
			return err == nil && pending[customer] == 0
		})
		time.Sleep(200 * time.Millisecond)
		if n := len(rx.Received()); n != 1 {
			t.Errorf("%s: the receiver got %d PDUs, want the notice once", customer, n)
		}
	}
}
