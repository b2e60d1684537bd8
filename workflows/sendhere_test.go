package workflows

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/routing"
)

// fakeHere plays the connectors bound in the workflow's process: send nil
// means none is (activities.HereSender answers "not here").
type fakeHere struct {
	mu    sync.Mutex
	send  func(context.Context, activities.SendInput) (activities.SendResult, error)
	calls []activities.SendInput
}

func (f *fakeHere) SendHere(ctx context.Context, in activities.SendInput) (activities.SendResult, bool, error) {
	f.mu.Lock()
	f.calls = append(f.calls, in)
	send := f.send
	f.mu.Unlock()
	if send == nil {
		return activities.SendResult{}, false, nil
	}
	res, err := send(ctx, in)
	return res, true, err
}

// queueSends counts the sends that went through the connector's task queue.
type queueSends struct {
	mu    sync.Mutex
	calls []activities.SendInput
	send  func(context.Context, activities.SendInput) (activities.SendResult, error)
}

func (q *queueSends) Send(ctx context.Context, in activities.SendInput) (activities.SendResult, error) {
	q.mu.Lock()
	q.calls = append(q.calls, in)
	q.mu.Unlock()
	return q.send(ctx, in)
}

// wantSends fails the test unless here sends were made from the
// workflow's process and queued through the connector's task queue.
func wantSends(t *testing.T, h *harness, queue *queueSends, here, queued int) {
	t.Helper()
	if len(h.here.calls) != here || len(queue.calls) != queued {
		t.Fatalf("%d sends here, %d through the queue; want %d and %d", len(h.here.calls), len(queue.calls), here, queued)
	}
}

// A message whose Submitter asked for it is sent from the workflow's
// process when the connector is bound there: no send activity, the receipt
// by signal, everything recorded as for a send through the queue.
func TestSentHere(t *testing.T) {
	queue := &queueSends{send: sentOK("queued")}
	h := newHarness(t, queue.Send)
	h.sendHere = true
	h.here.send = sentOK("abc")
	h.signalAt(time.Second, "DELIVRD", "abc")
	res := h.run(t)
	h.assertFinal(t, res, smsgw.StatusDelivered)
	wantSends(t, h, queue, 1, 0)
	if in := h.here.calls[0]; in.MessageID != "m1" || in.ConnectorID != "sim" || in.To != "+61412345678" || len(in.Parts) != 1 {
		t.Errorf("sent here: %+v", in)
	}
	for _, step := range []string{"accepted", "routed", "sent-sim", "receipt-1-DELIVRD", "final"} {
		if _, ok := h.events.events["m1:"+step]; !ok {
			t.Errorf("event %q missing", step)
		}
	}
	if row := h.reports.rows["m1"]; row.ConnectorID != "sim" || row.SentAt == nil {
		t.Errorf("row %+v", row)
	}
}

// Not bound here, or failed in a way another attempt may mend: the
// connector's task queue takes the send, with the same input.
func TestSendHereLeavesTheRestToTheQueue(t *testing.T) {
	for name, here := range map[string]func(context.Context, activities.SendInput) (activities.SendResult, error){
		"not bound here": nil,
		"throttled": func(context.Context, activities.SendInput) (activities.SendResult, error) {
			return activities.SendResult{}, temporal.NewApplicationError("throttled", activities.ErrTypeSubmitRetry,
				activities.SendFailure{CommandStatus: 0x58, StatusName: "ESME_RTHROTTLED"})
		},
		"bind lost": func(context.Context, activities.SendInput) (activities.SendResult, error) {
			return activities.SendResult{}, temporal.NewApplicationError("not bound", activities.ErrTypeNotBound)
		},
	} {
		t.Run(name, func(t *testing.T) {
			queue := &queueSends{send: sentOK("abc")}
			h := newHarness(t, queue.Send)
			h.sendHere = true
			h.here.send = here
			h.signalAt(time.Second, "DELIVRD", "abc")
			h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
			wantSends(t, h, queue, 1, 1)
			if h.here.calls[0].MessageID != queue.calls[0].MessageID || len(queue.calls[0].Parts) != 1 {
				t.Errorf("queue's input %+v, here's %+v", queue.calls[0], h.here.calls[0])
			}
		})
	}
}

// A failure that ends a send ends it from here too: the queue does not
// send the message again.
func TestSendHereRejected(t *testing.T) {
	queue := &queueSends{send: sentOK("abc")}
	h := newHarness(t, queue.Send)
	h.sendHere = true
	h.here.send = func(context.Context, activities.SendInput) (activities.SendResult, error) {
		return activities.SendResult{}, temporal.NewNonRetryableApplicationError("invalid destination", activities.ErrTypeSubmitRejected, nil,
			activities.SendFailure{CommandStatus: 0x0B, StatusName: "ESME_RINVDSTADR"})
	}
	res := h.run(t)
	h.assertFinal(t, res, smsgw.StatusRejected)
	if res.ErrorCode != "ESME_RINVDSTADR" || len(queue.calls) != 0 {
		t.Fatalf("error code %q after %d sends through the queue, want ESME_RINVDSTADR after none", res.ErrorCode, len(queue.calls))
	}
}

// A workflow started without SendHere (every one started before it
// existed) never sends from here.
func TestNoSendHereWithoutTheSubmittersAsking(t *testing.T) {
	queue := &queueSends{send: sentOK("abc")}
	h := newHarness(t, queue.Send)
	h.here.send = sentOK("here")
	h.signalAt(time.Second, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	wantSends(t, h, queue, 0, 1)
}

// A connector with a tps keeps its sends on its task queue, whose rate
// limit holds every replica to it: the plan says so, and the workflow does
// not try from here.
func TestSendHereNotThroughAConnectorWithATPS(t *testing.T) {
	queue := &queueSends{send: sentOK("abc")}
	h := newHarnessWith(t, strings.Replace(testConfig, `address: "127.0.0.1:2776"`, `address: "127.0.0.1:2776", tps: 50`, 1), queue.Send)
	plan, err := activities.Planner{Config: h.live, Routes: routing.NewCache(h.live), Encoder: oneGSMPart{}}.Plan(h.msg)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Targets[0].QueueOnly {
		t.Fatalf("plan's target %+v: want QueueOnly for a connector with a tps", plan.Targets[0])
	}
	h.plan = &plan
	h.sendHere = true
	h.here.send = sentOK("here")
	h.signalAt(time.Second, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	wantSends(t, h, queue, 0, 1)
}

// A send from here that got part of a message upstream and then failed in
// a way a retry may mend leaves the rest to the queue; when no bound
// connector takes that in time, the message is kept on its connector, as
// one whose queue attempt had reached the part: the next connector does
// not send it again.
func TestSendHerePartlyUpstreamThenNoConnectorTakesIt(t *testing.T) {
	calls := map[string]int{}
	h := newHarnessWith(t, twoConnectors, func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
		calls[in.ConnectorID]++
		if in.ConnectorID == "a" && calls["a"] == 1 {
			return activities.SendResult{}, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, nil)
		}
		return activities.SendResult{UpstreamIDs: []string{in.ConnectorID + "1"}, SentAt: time.Now()}, nil
	})
	h.sendHere = true
	h.here.send = func(context.Context, activities.SendInput) (activities.SendResult, error) {
		return activities.SendResult{}, temporal.NewApplicationError("not bound", activities.ErrTypeNotBound,
			activities.SendFailure{StatusName: "not_bound", PartInDoubt: true})
	}
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalReceipt, ReceiptSignal{Receipt: smsgw.Receipt{ConnectorID: "a", UpstreamID: "a1", Stat: "DELIVRD"}})
	}, time.Minute)
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	if calls["b"] != 0 || calls["a"] != 2 {
		t.Fatalf("queue sends %v, want two on a and none on b", calls)
	}
	kept := false
	for _, e := range h.events.events {
		kept = kept || (e.Type == smsgw.EventSendError && e.Data["kept"] == true && e.Data["connector"] == "a" && e.Data["partsReached"] == 1)
	}
	if !kept {
		t.Errorf("no event says the message was kept on a with 1 part reached: %v", h.events.events)
	}
	if _, ok := h.events.events["m1:rerouted-a"]; ok {
		t.Error("rerouted although a part may be upstream through a")
	}
}
