package workflows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/routing"
)

// twoChannels makes h's message an SMPP submission that asked for a
// receipt, of a customer with a webhook, so that its final status goes out
// on both, and records the names of the local activities and activities
// that record or notify.
func twoChannels(h *harness, webhook, smpp activities.Channel) (local, regular *[]string) {
	h.msg.EntryPoint, h.msg.ReceiptRequested = smsgw.EntrySMPP, true
	h.channels[smsgw.ChannelWebhook] = webhook
	h.channels[smsgw.ChannelSMPP] = smpp
	local, regular = &[]string{}, &[]string{}
	h.env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		if name := info.ActivityType.Name; strings.Contains(name, "Notify") || strings.HasPrefix(name, "Record") {
			*local = append(*local, name)
		}
	})
	h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		*regular = append(*regular, info.ActivityType.Name)
	})
	return local, regular
}

// deliverOnTwoChannels runs to DELIVERED a message whose final status goes
// to webhook and to an SMPP channel, which it returns with the names of
// the local activities and activities that recorded or notified.
func deliverOnTwoChannels(t *testing.T, webhook activities.Channel) (h *harness, smpp *memNotifier, local, regular []string) {
	t.Helper()
	h = newHarness(t, sentOK("abc"))
	smpp = &memNotifier{}
	l, r := twoChannels(h, webhook, smpp)
	h.signalAt(time.Second, "DELIVRD", "abc")
	if res := h.run(t); res.Status != smsgw.StatusDelivered {
		t.Fatalf("status %s", res.Status)
	}
	return h, smpp, *l, *r
}

// A final status that goes out on two channels is recorded and tried on
// both in one local activity: one history event, not three.
func TestFinalStatusOnTwoChannelsGoesWithItsRecordInOneLocalActivity(t *testing.T) {
	webhook := &memNotifier{}
	h, smpp, local, regular := deliverOnTwoChannels(t, webhook)
	if !slices.Equal(local, []string{"RecordAndNotifyAll"}) || !slices.Equal(regular, []string{activities.SendName}) {
		t.Fatalf("local activities %v, activities %v; want RecordAndNotifyAll alone", local, regular)
	}
	for name, ch := range map[string]*memNotifier{"webhook": webhook, "smpp": smpp} {
		if len(ch.sent) != 1 || ch.sent[0].Status != smsgw.StatusDelivered || ch.sequels[0] {
			t.Errorf("%s got %+v (sequels %v), want DELIVERED once, as a first delivery", name, ch.sent, ch.sequels)
		}
		if _, ok := h.events.events["m1:notified-"+name+"-DELIVERED-DELIVRD"]; !ok {
			t.Errorf("the delivery on %s was not recorded", name)
		}
	}
	if _, ok := h.events.events["m1:final"]; !ok {
		t.Error("the final status was not recorded")
	}
}

// A channel whose attempt with the record failed retries in an activity on
// its own; the other is not tried again.
func TestFinalStatusOnTwoChannelsRetriesTheOneThatFailed(t *testing.T) {
	flaky := &recordingChannel{fail: func(attempt int) error {
		if attempt <= 2 {
			return errors.New("webhook answered 503")
		}
		return nil
	}}
	_, smpp, local, regular := deliverOnTwoChannels(t, flaky)
	if !slices.Equal(local, []string{"RecordAndNotifyAll"}) || !slices.Equal(regular, []string{activities.SendName, "Notify", "Notify"}) {
		t.Fatalf("local activities %v, activities %v; want the first attempts together and the webhook's retries an activity", local, regular)
	}
	if flaky.attempts != 3 || len(flaky.got) != 1 || flaky.got[0].Sequel || len(smpp.sent) != 1 {
		t.Fatalf("webhook: %d attempts, delivered %+v; smpp delivered %d; want each once, as first deliveries", flaky.attempts, flaky.got, len(smpp.sent))
	}
}

// A channel that refuses the final status for good has it kept for
// redelivery; the other still gets it.
func TestFinalStatusOnTwoChannelsRefusedOnOne(t *testing.T) {
	refusing := &recordingChannel{fail: func(int) error { return fmt.Errorf("HTTP 410: %w", smsgw.ErrRefused) }}
	h, smpp, local, regular := deliverOnTwoChannels(t, refusing)
	if !slices.Equal(local, []string{"RecordAndNotifyAll", "NotifyFailed"}) || !slices.Equal(regular, []string{activities.SendName}) {
		t.Fatalf("local activities %v, activities %v; want no retry of a refusal, and the refusal recorded", local, regular)
	}
	if refusing.attempts != 1 || len(smpp.sent) != 1 {
		t.Fatalf("webhook tried %d times, smpp delivered %d; want once each", refusing.attempts, len(smpp.sent))
	}
	if reasons := failedReasons(h); len(reasons) != 1 || reasons[0] != "refused by the receiver" {
		t.Errorf("failed notifications' reasons %q, want one: the channel's own words", reasons)
	}
}

// failedReasons is the reason of each notify-failed event h's message has.
func failedReasons(h *harness) []string {
	var reasons []string
	for _, ev := range h.events.events {
		if ev.Type == smsgw.EventNotifyFailed {
			reasons = append(reasons, fmt.Sprint(ev.Data["reason"]))
		}
	}
	return reasons
}

// A refusal is recorded with the same reason whether the first attempt was
// made with the other channel's or alone.
func TestFinalStatusRefusedGivesTheSameReasonEitherWay(t *testing.T) {
	var got [2][]string
	for i, together := range []bool{true, false} {
		h := newHarness(t, sentOK("abc"))
		twoChannels(h, &recordingChannel{fail: func(int) error { return fmt.Errorf("HTTP 410: %w", smsgw.ErrRefused) }}, &memNotifier{})
		plan, err := activities.Planner{Config: h.live, Routes: routing.NewCache(h.live), Encoder: oneGSMPart{}}.Plan(h.msg)
		if err != nil {
			t.Fatal(err)
		}
		plan.Notify.FinalTogether = together
		h.plan = &plan
		h.signalAt(time.Second, "DELIVRD", "abc")
		h.run(t)
		got[i] = failedReasons(h)
	}
	if len(got[0]) != 1 || !slices.Equal(got[0], got[1]) {
		t.Errorf("reasons %q together, %q apart; want the same one", got[0], got[1])
	}
}

// A customer told of every status hears SENT on both channels first; the
// final status then goes to both, with its record, as a sequel on each
// (a channel that keeps order through a queue must not let it overtake).
func TestFinalStatusOnTwoChannelsAfterSent(t *testing.T) {
	h := newHarnessWith(t, strings.Replace(testConfig, "secret: s}}", "secret: s}, notify: {statuses: all}}", 1), sentOK("abc"))
	webhook, smpp := &memNotifier{}, &memNotifier{}
	local, _ := twoChannels(h, webhook, smpp)
	h.signalAt(time.Minute, "DELIVRD", "abc")
	if res := h.run(t); res.Status != smsgw.StatusDelivered {
		t.Fatalf("status %s", res.Status)
	}
	if n := len(*local); n == 0 || (*local)[n-1] != "RecordAndNotifyAll" {
		t.Fatalf("local activities %v, want RecordAndNotifyAll last", *local)
	}
	for name, ch := range map[string]*memNotifier{"webhook": webhook, "smpp": smpp} {
		if len(ch.sent) != 2 || ch.sent[0].Status != smsgw.StatusSent || ch.sent[1].Status != smsgw.StatusDelivered ||
			!slices.Equal(ch.sequels, []bool{false, true}) {
			t.Errorf("%s got %+v (sequels %v), want SENT then DELIVERED as its sequel", name, ch.sent, ch.sequels)
		}
	}
}

// A record that fails in the shared local activity is written apart, with
// the store retries, before either channel is tried.
func TestFinalStatusOnTwoChannelsWithTheStoreDown(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	webhook, smpp := &memNotifier{}, &memNotifier{}
	local, _ := twoChannels(h, webhook, smpp)
	h.env.RegisterDelayedCallback(func() { // the final record's first tries fail
		h.reports.mu.Lock()
		h.reports.failures = 3
		h.reports.mu.Unlock()
	}, 500*time.Millisecond)
	h.signalAt(time.Second, "DELIVRD", "abc")
	if res := h.run(t); res.Status != smsgw.StatusDelivered {
		t.Fatalf("status %s", res.Status)
	}
	if len(*local) < 4 || (*local)[0] != "RecordAndNotifyAll" || (*local)[1] != "Record" {
		t.Fatalf("local activities %v, want RecordAndNotifyAll, then Record (retried), then Notify on each channel", *local)
	}
	if n := len(*local); (*local)[n-1] != "Notify" || (*local)[n-2] != "Notify" {
		t.Fatalf("local activities %v, want a Notify on each channel last", *local)
	}
	if len(webhook.sent) != 1 || len(smpp.sent) != 1 {
		t.Fatalf("webhook %d, smpp %d deliveries; want one each", len(webhook.sent), len(smpp.sent))
	}
}

// A workflow whose plan was made before FinalTogether existed runs as it
// did: the record, then a local activity per channel, so its history
// replays.
func TestFinalStatusOnTwoChannelsOfAnOlderPlan(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	webhook, smpp := &memNotifier{}, &memNotifier{}
	local, _ := twoChannels(h, webhook, smpp)
	plan, err := activities.Planner{Config: h.live, Routes: routing.NewCache(h.live), Encoder: oneGSMPart{}}.Plan(h.msg)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Notify.FinalTogether || len(plan.Notify.Channels) != 2 {
		t.Fatalf("plan %+v, want two channels, together", plan.Notify)
	}
	plan.Notify.FinalTogether = false
	h.plan = &plan
	h.signalAt(time.Second, "DELIVRD", "abc")
	if res := h.run(t); res.Status != smsgw.StatusDelivered {
		t.Fatalf("status %s", res.Status)
	}
	if !slices.Equal(*local, []string{"Record", "Notify", "Notify"}) {
		t.Fatalf("local activities %v, want Record, Notify, Notify", *local)
	}
	if len(webhook.sent) != 1 || len(smpp.sent) != 1 {
		t.Fatalf("webhook %d, smpp %d deliveries; want one each", len(webhook.sent), len(smpp.sent))
	}
}

// A channel that panics on its attempt with the record fails that attempt
// alone, which is retried; the worker goes on.
func TestFinalStatusOnTwoChannelsWithAChannelThatPanics(t *testing.T) {
	once := &recordingChannel{fail: func(attempt int) error {
		if attempt == 1 {
			panic("a bug in the channel")
		}
		return nil
	}}
	_, smpp, local, regular := deliverOnTwoChannels(t, once)
	if !slices.Equal(local, []string{"RecordAndNotifyAll"}) || !slices.Equal(regular, []string{activities.SendName, "Notify"}) {
		t.Fatalf("local activities %v, activities %v; want the panicking channel retried in an activity", local, regular)
	}
	if len(once.got) != 1 || len(smpp.sent) != 1 {
		t.Fatalf("webhook delivered %d, smpp %d; want one each", len(once.got), len(smpp.sent))
	}
}
