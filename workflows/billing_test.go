package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
)

// memLedger is an in-memory smsgw.Ledger with the store's rule (one
// movement per message and step); failAfter makes the next closes fail
// after they were applied, as a store whose commit answer is lost does.
type memLedger struct {
	mu        sync.Mutex
	steps     map[string]smsgw.Movement // key/step
	closes    int                       // CloseMessage calls
	failAfter int
}

func newMemLedger() *memLedger { return &memLedger{steps: map[string]smsgw.Movement{}} }

func (l *memLedger) Reserve(_ context.Context, customerID, currency, messageID string, amount int64, segments int, at time.Time) (smsgw.Movement, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := messageID + "/" + smsgw.StepReserve
	if m, ok := l.steps[k]; ok {
		return m, nil
	}
	m := smsgw.Movement{CustomerID: customerID, Currency: currency, Key: messageID, Step: smsgw.StepReserve, Kind: smsgw.MoveReserve, Reserved: amount, Segments: segments, At: at, New: true}
	l.steps[k] = m
	return m, nil
}

func (l *memLedger) CloseMessage(_ context.Context, customerID, currency, messageID, kind string, charge int64, segments int, at time.Time) (smsgw.Movement, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closes++
	k := messageID + "/" + smsgw.StepClose
	if m, ok := l.steps[k]; ok {
		return m, nil
	}
	m := smsgw.Movement{CustomerID: customerID, Currency: currency, Key: messageID, Step: smsgw.StepClose, Kind: kind,
		Reserved: -l.steps[messageID+"/"+smsgw.StepReserve].Reserved, Segments: segments, At: at, New: true}
	if kind == smsgw.MoveSettle {
		m.Amount = -charge
	}
	l.steps[k] = m
	if l.failAfter > 0 {
		l.failAfter--
		return smsgw.Movement{}, errors.New("connection lost before the commit was answered")
	}
	return m, nil
}

func (l *memLedger) TopUp(context.Context, string, string, string, int64, time.Time) (smsgw.Movement, error) {
	return smsgw.Movement{}, errors.New("not used")
}

func (l *memLedger) Balance(context.Context, string, string) (smsgw.Balance, error) {
	return smsgw.Balance{}, errors.New("not used")
}

// closeOf is the message's close movement, and whether there is one.
func (l *memLedger) closeOf(id string) (smsgw.Movement, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m, ok := l.steps[id+"/"+smsgw.StepClose]
	return m, ok
}

// prepaid reserves for the harness's message, as the Submitter does, at
// 0.05 a segment for segments.
func (h *harness) prepaid(t *testing.T, segments int, chargeExpired bool) {
	t.Helper()
	h.charge = &smsgw.Charge{Currency: "EUR", UnitMicros: 50_000, Segments: segments, Prepaid: true, ChargeExpired: chargeExpired, PriceList: "retail", Prefix: "+61"}
	if _, err := h.ledger.Reserve(context.Background(), "acme", "EUR", h.msg.ID, h.charge.Amount(segments), segments, h.msg.AcceptedAt); err != nil {
		t.Fatal(err)
	}
}

// assertBilled checks the message's close movement, its billed event and
// its row's cost.
func (h *harness) assertBilled(t *testing.T, kind string, charge int64) {
	t.Helper()
	m, ok := h.ledger.closeOf(h.msg.ID)
	if !ok {
		t.Fatal("the message was neither settled nor released")
	}
	if m.Kind != kind || -m.Amount != charge || m.Reserved != -h.charge.Amount(h.charge.Segments) {
		t.Errorf("close %+v, want %s charging %d and lifting %d", m, kind, charge, h.charge.Amount(h.charge.Segments))
	}
	ev, ok := h.events.events[h.msg.ID+":billed"]
	if !ok {
		t.Fatal("no billed event")
	}
	if ev.Data["kind"] != kind || ev.Data["costMicros"] != charge || ev.Data["currency"] != "EUR" {
		t.Errorf("billed event %v, want %s costing %d EUR", ev.Data, kind, charge)
	}
	if row := h.reports.rows[h.msg.ID]; row.CostMicros != charge || row.Currency != "EUR" {
		t.Errorf("row cost %d %s, want %d EUR", row.CostMicros, row.Currency, charge)
	}
}

// twoParts encodes for connector b in two parts, for a one in one.
type twoParts struct{}

func (twoParts) Encode(text, _, connectorID, _ string) (string, []smsgw.Part, error) {
	if connectorID == "b" {
		return "GSM7", []smsgw.Part{{Seq: 1, ShortMessage: []byte(text)}, {Seq: 2, ShortMessage: []byte(text)}}, nil
	}
	return "GSM7", []smsgw.Part{{Seq: 1, ShortMessage: []byte(text)}}, nil
}

func TestDeliveredMessageIsSettled(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	h.prepaid(t, 1, false)
	h.signalAt(time.Minute, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	h.assertBilled(t, smsgw.MoveSettle, 50_000)
}

// The segments charged are those of the connector that finally sends the
// message: reserved for one part on a, it fails over to b, which sends two.
func TestSettlementChargesTheSendingConnectorsSegments(t *testing.T) {
	h := newHarnessEncoding(t, twoConnectors, twoParts{}, func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
		if in.ConnectorID == "a" {
			return activities.SendResult{}, temporal.NewNonRetryableApplicationError("ESME_RINVDSTADR", activities.ErrTypeReroute, nil)
		}
		return activities.SendResult{UpstreamIDs: []string{"b1", "b2"}, SentAt: time.Now()}, nil
	})
	h.prepaid(t, 1, false)
	for _, id := range []string{"b1", "b2"} {
		h.env.RegisterDelayedCallback(func() {
			h.env.SignalWorkflow(SignalReceipt, ReceiptSignal{Receipt: smsgw.Receipt{ConnectorID: "b", UpstreamID: id, Stat: "DELIVRD"}})
		}, time.Minute)
	}
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	h.assertBilled(t, smsgw.MoveSettle, 100_000)
}

func TestRejectedBeforeSendingIsReleased(t *testing.T) {
	h := newHarness(t, func(context.Context, activities.SendInput) (activities.SendResult, error) {
		return activities.SendResult{}, temporal.NewNonRetryableApplicationError("invalid destination", activities.ErrTypeSubmitRejected, nil,
			activities.SendFailure{CommandStatus: 0x0B, StatusName: "ESME_RINVDSTADR"})
	})
	h.prepaid(t, 1, false)
	h.assertFinal(t, h.run(t), smsgw.StatusRejected)
	h.assertBilled(t, smsgw.MoveRelease, 0)
}

func TestCancelledScheduledMessageIsReleased(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	h.msg.Validity = 3 * time.Hour
	h.msg.ScheduleAt = h.msg.AcceptedAt.Add(time.Hour)
	h.prepaid(t, 1, false)
	h.env.RegisterDelayedCallback(func() { h.env.UpdateWorkflow(UpdateCancel, "c1", &updateResult{}) }, 10*time.Minute)
	h.assertFinal(t, h.run(t), smsgw.StatusCancelled)
	h.assertBilled(t, smsgw.MoveRelease, 0)
}

// A message no connector takes before its validity ends expires unsent:
// released.
func TestExpiredUnsentIsReleased(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	h.prepaid(t, 1, true) // even for a customer charged for expired messages
	h.env.OnActivity(activities.SendName, mock.Anything, mock.Anything).
		Return(activities.SendResult{}, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE, nil))
	res := h.run(t)
	if res.Status != smsgw.StatusExpired || res.ErrorCode != "VALIDITY_ENDED_BEFORE_SEND" {
		t.Fatalf("result %+v, want EXPIRED before send", res)
	}
	h.assertBilled(t, smsgw.MoveRelease, 0)
}

// A message sent but without a final receipt by the end of its validity is
// released, unless its customer is charged for those.
func TestExpiredAfterSendingIsChargedOnlyWhenConfigured(t *testing.T) {
	for _, charged := range []bool{false, true} {
		h := newHarness(t, sentOK("abc"))
		h.prepaid(t, 1, charged)
		h.assertFinal(t, h.run(t), smsgw.StatusExpired)
		if charged {
			h.assertBilled(t, smsgw.MoveSettle, 50_000)
		} else {
			h.assertBilled(t, smsgw.MoveRelease, 0)
		}
	}
}

// A settlement whose answer is lost is retried and finds the movement it
// made: the message is charged once.
func TestSettlementRetriedIsChargedOnce(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	h.prepaid(t, 1, false)
	h.ledger.failAfter = 1
	h.signalAt(time.Minute, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	h.assertBilled(t, smsgw.MoveSettle, 50_000)
	if h.ledger.closes < 2 {
		t.Errorf("%d close calls, want the failure retried", h.ledger.closes)
	}
}

// A message of a customer that is not billed touches no ledger.
func TestUnbilledMessageTouchesNoLedger(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	h.signalAt(time.Minute, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	if h.ledger.closes != 0 {
		t.Errorf("%d close calls for an unbilled message", h.ledger.closes)
	}
	if _, ok := h.events.events["m1:billed"]; ok {
		t.Error("billed event for an unbilled message")
	}
}

// A postpaid message reserves nothing: when delivered it is settled at its
// price (the charge goes on the customer's balance, nothing held is
// lifted), its billed event says postpaid and has no reservation; one
// rejected before sending is released at no cost.
func TestPostpaidMessageIsSettledWithoutReservation(t *testing.T) {
	postpaid := func(h *harness) {
		h.charge = &smsgw.Charge{Currency: "EUR", UnitMicros: 50_000, Segments: 1, PriceList: "retail", Prefix: "+61"}
	}
	h := newHarness(t, sentOK("abc"))
	postpaid(h)
	h.signalAt(time.Minute, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	m, ok := h.ledger.closeOf(h.msg.ID)
	if !ok || m.Kind != smsgw.MoveSettle || m.Amount != -50_000 || m.Reserved != 0 {
		t.Fatalf("close %+v (found %v), want a settlement of 0.05 lifting nothing", m, ok)
	}
	ev := h.events.events[h.msg.ID+":billed"]
	if _, reserved := ev.Data["reservedMicros"]; ev.Data["kind"] != smsgw.MoveSettle || ev.Data["costMicros"] != int64(50_000) || ev.Data["prepaid"] != false || reserved {
		t.Errorf("billed event %v, want a postpaid settlement of 50000 without a reservation", ev.Data)
	}
	if row := h.reports.rows[h.msg.ID]; row.CostMicros != 50_000 || row.Currency != "EUR" {
		t.Errorf("row cost %d %s, want 50000 EUR", row.CostMicros, row.Currency)
	}

	h = newHarness(t, func(context.Context, activities.SendInput) (activities.SendResult, error) {
		return activities.SendResult{}, temporal.NewNonRetryableApplicationError("invalid destination", activities.ErrTypeSubmitRejected, nil,
			activities.SendFailure{CommandStatus: 0x0B, StatusName: "ESME_RINVDSTADR"})
	})
	postpaid(h)
	h.assertFinal(t, h.run(t), smsgw.StatusRejected)
	if m, ok := h.ledger.closeOf(h.msg.ID); !ok || m.Kind != smsgw.MoveRelease || m.Amount != 0 || m.Reserved != 0 {
		t.Errorf("close %+v (found %v), want a release at no cost", m, ok)
	}
}
