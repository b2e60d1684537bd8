package smppserver_test

import (
	"context"
	"slices"
	"strings"
	"sync"
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

// writes records what the channel writes to the outbox.
type writes struct {
	*mongostore.Outbox
	mu  sync.Mutex
	ids []string
}

func (w *writes) Put(ctx context.Context, items ...smsgw.OutboxItem) error {
	w.mu.Lock()
	for _, it := range items {
		w.ids = append(w.ids, it.ID)
	}
	w.mu.Unlock()
	return w.Outbox.Put(ctx, items...)
}

func (w *writes) written() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.ids)
}

// directFixture is a server and a channel in one process, as role all has them.
func directFixture(t *testing.T, cfg smppserver.Config) (*fixture, *smppserver.Channel, *writes, *mongostore.Store) {
	t.Helper()
	ob, store, _ := outboxStore(t, testenv.MongoURI(t))
	live := testConfig(t)
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	f := start(t, cfg, smppserver.Deps{Config: live, Outbox: ob})
	w := &writes{Outbox: ob}
	ch := &smppserver.Channel{Outbox: w, Config: live, Wake: f.srv.Wake, Direct: f.srv}
	return f, ch, w, store
}

func countReceipts(c *esme.Client, id string) int {
	n := 0
	for _, fr := range c.Received() {
		if receiptID(fr) == id {
			n++
		}
	}
	return n
}

// A receipt for a customer bound here reaches the bind before Deliver
// returns, and nothing is written to the outbox.
func TestDirectReceiptSkipsTheOutbox(t *testing.T) {
	t.Parallel()
	f, ch, w, _ := directFixture(t, smppserver.Config{})
	rx := f.bound(t, smppwire.BindReceiver, "acme", "secret")
	ctx := ctxFor(t)
	if err := ch.Deliver(ctx, receipt("direct", 1)); err != nil {
		t.Fatal(err)
	}
	if n := countReceipts(rx, "direct"); n != 1 {
		t.Fatalf("the receiver has the receipt %d times when Deliver returns, want once", n)
	}
	if got := w.written(); len(got) != 0 {
		t.Fatalf("outbox writes %v, want none", got)
	}
	if _, ok, err := w.Get(ctx, "receipt:direct:1:DELIVERED-DELIVRD"); ok || err != nil {
		t.Fatalf("item in the outbox (%v)", err)
	}
	if got := f.metric(t, "smsgw_smpp_direct_deliveries_total", "acme", "receipt", "ok"); got != 1 {
		t.Errorf("direct ok %v, want 1", got)
	}
	if got := f.metric(t, "smsgw_smpp_deliveries_total", "acme", "receipt", "ok"); got != 1 {
		t.Errorf("deliveries ok %v, want 1", got)
	}
	// Delivered again by a retried activity: still sent once.
	if err := ch.Deliver(ctx, receipt("direct", 1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := countReceipts(rx, "direct"); n != 1 {
		t.Fatalf("receipt delivered %d times, want once", n)
	}
	if got := w.written(); len(got) != 0 {
		t.Fatalf("outbox writes %v, want none", got)
	}
}

// Without a receiver bind here the receipt goes to the outbox, and reaches
// the customer when it binds.
func TestDirectWithoutBindUsesTheOutbox(t *testing.T) {
	t.Parallel()
	f, ch, w, _ := directFixture(t, smppserver.Config{})
	f.bound(t, smppwire.BindTransmitter, "acme", "secret") // cannot receive
	ctx := ctxFor(t)
	if err := ch.Deliver(ctx, receipt("waits", 1)); err != nil {
		t.Fatal(err)
	}
	if got := w.written(); !slices.Equal(got, []string{"receipt:waits:1:DELIVERED-DELIVRD"}) {
		t.Fatalf("outbox writes %v", got)
	}
	if got := f.metric(t, "smsgw_smpp_direct_deliveries_total", "acme", "receipt", "no_receiver"); got != 1 {
		t.Errorf("direct no_receiver %v, want 1", got)
	}
	rx := f.bound(t, smppwire.BindReceiver, "acme", "secret")
	if _, err := rx.WaitFor(ctx, func(fr smppwire.Frame) bool { return receiptID(fr) == "waits" }); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return f.metric(t, "smsgw_smpp_deliveries_total", "acme", "receipt", "ok") == 1 })
}

// A customer that answers the direct deliver_sm with an error gets it again
// from the outbox.
func TestDirectRefusedFallsBackToTheOutbox(t *testing.T) {
	t.Parallel()
	f, ch, w, _ := directFixture(t, smppserver.Config{})
	rx := f.bound(t, smppwire.BindTransceiver, "acme", "secret")
	answerNth(rx, 1, smppstatus.ESME_RX_T_APPN)
	ctx := ctxFor(t)
	if err := ch.Deliver(ctx, receipt("again", 1)); err != nil {
		t.Fatal(err)
	}
	if got := w.written(); len(got) != 1 {
		t.Fatalf("outbox writes %v, want the receipt", got)
	}
	if got := f.metric(t, "smsgw_smpp_direct_deliveries_total", "acme", "receipt", "refused"); got != 1 {
		t.Errorf("direct refused %v, want 1", got)
	}
	eventually(t, func() bool { return countReceipts(rx, "again") == 2 })
	eventually(t, func() bool {
		pending, err := w.Pending(ctx)
		return err == nil && pending["acme"] == 0
	})
	if got := f.metric(t, "smsgw_smpp_deliveries_total", "acme", "receipt", "ok"); got != 1 {
		t.Errorf("deliveries ok %v, want 1", got)
	}
}

// A direct deliver_sm refused for good goes to the outbox too, which
// offers it once more and records it as a failed notification.
func TestDirectRefusedForGoodIsRecordedAsFailed(t *testing.T) {
	t.Parallel()
	f, ch, _, store := directFixture(t, smppserver.Config{})
	rx := f.bound(t, smppwire.BindReceiver, "acme", "secret")
	rx.SetAnswer(func(smppwire.Frame) uint32 { return smppstatus.ESME_RX_P_APPN })
	ctx := ctxFor(t)
	if err := ch.Deliver(ctx, receipt("unwanted", 1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		failed, _, err := store.ListFailedNotifications(ctx, "acme", "", 10)
		return err == nil && len(failed) == 1 && strings.Contains(failed[0].Reason, "refused") && failed[0].Subject == "unwanted"
	})
	if n := countReceipts(rx, "unwanted"); n != 2 {
		t.Fatalf("offered %d times, want twice (directly, then from the outbox)", n)
	}
}

// A deliver_sm not answered in time goes to the outbox.
func TestDirectUnansweredFallsBackToTheOutbox(t *testing.T) {
	t.Parallel()
	f, ch, w, _ := directFixture(t, smppserver.Config{ResponseTimeout: 300 * time.Millisecond})
	rx := f.bound(t, smppwire.BindReceiver, "acme", "secret")
	var mu sync.Mutex
	answers := 0
	rx.SetAnswer(func(smppwire.Frame) uint32 {
		mu.Lock()
		answers++
		first := answers == 1
		mu.Unlock()
		if first {
			time.Sleep(time.Second)
		}
		return 0
	})
	ctx := ctxFor(t)
	if err := ch.Deliver(ctx, receipt("slow", 1)); err != nil {
		t.Fatal(err)
	}
	if got := w.written(); len(got) != 1 {
		t.Fatalf("outbox writes %v, want the receipt", got)
	}
	if got := f.metric(t, "smsgw_smpp_direct_deliveries_total", "acme", "receipt", "failed"); got != 1 {
		t.Errorf("direct failed %v, want 1", got)
	}
	eventually(t, func() bool { return countReceipts(rx, "slow") == 2 })
	eventually(t, func() bool { return f.metric(t, "smsgw_smpp_deliveries_total", "acme", "receipt", "ok") == 1 })
}

// A later status of a message goes through the outbox, where an earlier one
// may still wait; so does a redelivery.
func TestDirectSequelUsesTheOutbox(t *testing.T) {
	t.Parallel()
	f, ch, w, _ := directFixture(t, smppserver.Config{})
	rx := f.bound(t, smppwire.BindReceiver, "acme", "secret")
	ctx := ctxFor(t)
	if err := ch.Deliver(ctx, receipt("m", 1)); err != nil {
		t.Fatal(err)
	}
	d := receipt("m", 2)
	d.Sequel = true
	if err := ch.Deliver(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got := w.written(); !slices.Equal(got, []string{"receipt:m:2:DELIVERED-DELIVRD"}) {
		t.Fatalf("outbox writes %v, want the sequel", got)
	}
	if got := f.metric(t, "smsgw_smpp_direct_deliveries_total", "acme", "receipt", "ok"); got != 1 {
		t.Errorf("direct ok %v, want 1 (the first status only)", got)
	}
	eventually(t, func() bool { return countReceipts(rx, "m") == 2 })

	// So does a redelivery of a failed notification.
	re := receipt("r", 1)
	re.Redelivers = "r:notify-failed-smpp-DELIVERED-DELIVRD"
	if err := ch.Deliver(ctx, re); err != nil {
		t.Fatal(err)
	}
	if got := w.written(); len(got) != 2 || !strings.HasPrefix(got[1], "receipt:r:1:DELIVERED-DELIVRD:redelivery-") {
		t.Fatalf("outbox writes %v, want the sequel and the redelivery", got)
	}
	eventually(t, func() bool { return countReceipts(rx, "r") == 1 })
}

// moParts returns the concatenation sequence numbers of the MO parts a
// client received, in the order received.
func moParts(t *testing.T, c *esme.Client) []int {
	t.Helper()
	var seqs []int
	for _, fr := range c.Received() {
		m, err := esme.DecodeDeliver(fr)
		if err != nil || m.ESMClass&smppwire.ESMClassSMSCReceipt != 0 {
			continue
		}
		_, udh, err := segment.DecodePayload(m.DataCoding, m.ESMClass, m.ShortMessage)
		if err != nil || udh == nil || udh.Concat == nil {
			t.Fatalf("MO part %+v: %v", m, err)
		}
		seqs = append(seqs, int(udh.Concat.Seq))
	}
	return seqs
}

func longMO(id string) smsgw.Delivery {
	in := &smsgw.InboundMessage{ID: id, From: "+61400000009", To: "12345", Text: strings.Repeat("long message ", 30), ReceivedAt: base}
	return smsgw.Delivery{Channel: smsgw.ChannelSMPP, CustomerID: "acme", Inbound: in}
}

// The parts of a long MO go straight out in order.
func TestDirectMOPartsInOrder(t *testing.T) {
	t.Parallel()
	f, ch, w, _ := directFixture(t, smppserver.Config{})
	rx := f.bound(t, smppwire.BindReceiver, "acme", "secret")
	if err := ch.Deliver(ctxFor(t), longMO("in-direct")); err != nil {
		t.Fatal(err)
	}
	if got := moParts(t, rx); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("parts received %v, want 1 2 3", got)
	}
	if got := w.written(); len(got) != 0 {
		t.Fatalf("outbox writes %v, want none", got)
	}
	if got := f.metric(t, "smsgw_smpp_direct_deliveries_total", "acme", "mo", "ok"); got != 1 {
		t.Errorf("direct ok %v, want 1", got)
	}
}

// From the first part the customer does not take, the parts go to the
// outbox, and still reach it in order.
func TestDirectMORestGoesToTheOutbox(t *testing.T) {
	t.Parallel()
	f, ch, w, _ := directFixture(t, smppserver.Config{})
	rx := f.bound(t, smppwire.BindReceiver, "acme", "secret")
	answerNth(rx, 2, smppstatus.ESME_RMSGQFUL)
	ctx := ctxFor(t)
	if err := ch.Deliver(ctx, longMO("in-split")); err != nil {
		t.Fatal(err)
	}
	if got := w.written(); !slices.Equal(got, []string{"mo:in-split:2", "mo:in-split:3"}) {
		t.Fatalf("outbox writes %v, want parts 2 and 3", got)
	}
	if got := f.metric(t, "smsgw_smpp_direct_deliveries_total", "acme", "mo", "refused"); got != 1 {
		t.Errorf("direct refused %v, want 1", got)
	}
	eventually(t, func() bool { return len(moParts(t, rx)) == 4 })
	// One claim takes parts 2 and 3 and sends them side by side within the
	// window, so they may come in either order (each carries its place in
	// its header).
	got := moParts(t, rx)
	rest := slices.Sorted(slices.Values(got[2:]))
	if !slices.Equal(got[:2], []int{1, 2}) || !slices.Equal(rest, []int{2, 3}) {
		t.Fatalf("parts received %v, want 1, 2 (refused), then 2 and 3 from the outbox", got)
	}
}
