package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/routing"
)

// held returns a harness whose message a content rule held for review
// for an hour, planned by the Submitter, and a pointer set when it is sent.
func held(t *testing.T) (*harness, *bool) {
	t.Helper()
	sent := new(bool)
	h := newHarness(t, func(context.Context, activities.SendInput) (activities.SendResult, error) {
		*sent = true
		return activities.SendResult{UpstreamIDs: []string{"abc"}, SentAt: time.Now()}, nil
	})
	h.msg.Validity = 3 * time.Hour
	plan, err := activities.Planner{Config: h.live, Routes: routing.NewCache(h.live), Encoder: oneGSMPart{}}.Plan(h.msg)
	if err != nil {
		t.Fatal(err)
	}
	h.plan = &plan
	h.admitted = &smsgw.Admission{
		Hold: &smsgw.Hold{Reason: "content rule links", Timeout: time.Hour},
		Matches: []smsgw.RuleMatch{
			{Rule: "content:links", Action: smsgw.ActionHold},
			{Rule: "content:promo", Action: smsgw.ActionTag, Tag: "marketing"},
		},
	}
	return h, sent
}

func (h *harness) review(at time.Duration, r ReviewRequest) *updateResult {
	u := &updateResult{}
	h.env.RegisterDelayedCallback(func() { h.env.UpdateWorkflow(UpdateReview, "review-"+at.String(), u, r) }, at)
	return u
}

func TestHeldMessageReleasedIsSent(t *testing.T) {
	h, sent := held(t)
	var during smsgw.MessageRecord
	h.env.RegisterDelayedCallback(func() {
		h.reports.mu.Lock()
		during = h.reports.rows["m1"]
		h.reports.mu.Unlock()
		if *sent {
			t.Error("sent while held")
		}
	}, 20*time.Minute)
	released := h.review(30*time.Minute, ReviewRequest{Release: true, Reason: "checked"})
	again := h.review(31*time.Minute, ReviewRequest{Release: false})
	h.signalAt(40*time.Minute, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	if released.rejected != nil || released.completed != nil {
		t.Fatalf("release: %v %v", released.rejected, released.completed)
	}
	if again.rejected == nil {
		t.Error("a second review of a released message was accepted")
	}
	if !*sent {
		t.Fatal("released message not sent")
	}
	if during.Status != smsgw.StatusAccepted {
		t.Errorf("while held the row is %+v, want it recorded as ACCEPTED", during)
	}
	for _, step := range []string{"accepted", "routed", "rule-1", "rule-2", "held", "review-released", "sent-sim", "final"} {
		if _, ok := h.events.events["m1:"+step]; !ok {
			t.Errorf("event %q missing", step)
		}
	}
	if tag := h.events.events["m1:rule-2"]; tag.Type != smsgw.EventRuleMatched || tag.Data["tag"] != "marketing" {
		t.Errorf("tag event %+v", tag)
	}
	if held := h.events.events["m1:held"]; held.Type != smsgw.EventHeld || held.Data["reason"] != "content rule links" {
		t.Errorf("held event %+v", held)
	}
}

// A held message is on the operators' list, with the rule that held it
// and when its hold times out, until it is released; a scheduled one
// leaves the list at its release, not hours later when it is sent.
func TestHeldScheduledMessageLeavesTheListWhenReleased(t *testing.T) {
	h, sent := held(t)
	h.msg.ScheduleAt = h.env.Now().Add(2 * time.Hour)
	h.plan = nil // a scheduled message is planned by its workflow
	start := h.env.Now()
	var during, after smsgw.HeldMessage
	var listed, listedAfter bool
	h.env.RegisterDelayedCallback(func() { during, listed = h.reports.heldNow("m1") }, 20*time.Minute)
	h.review(30*time.Minute, ReviewRequest{Release: true, Reason: "checked"})
	h.env.RegisterDelayedCallback(func() {
		after, listedAfter = h.reports.heldNow("m1")
		if *sent {
			t.Error("sent before its schedule")
		}
	}, 31*time.Minute)
	h.signalAt(2*time.Hour+10*time.Minute, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	if !listed || during.Rule != "content:links" || during.Reason != "content rule links" || during.CustomerID != h.msg.CustomerID ||
		during.To != h.msg.To || during.HoldUntil.Sub(during.HeldAt) != time.Hour || during.HeldAt.Sub(start) > time.Minute {
		t.Errorf("while held: listed %v as %+v, want content:links until an hour after its hold", listed, during)
	}
	if listedAfter {
		t.Errorf("a minute after its release the message is still listed as held: %+v", after)
	}
}

func TestHeldMessageRejectedByTheOperator(t *testing.T) {
	h, sent := held(t)
	h.review(10*time.Minute, ReviewRequest{Release: false, Reason: "phishing"})
	res := h.run(t)
	h.assertFinal(t, res, smsgw.StatusRejected)
	if res.ErrorCode != CodeReviewRejected || res.ErrorText != "rejected in review: phishing" {
		t.Errorf("result %+v", res)
	}
	if *sent {
		t.Fatal("a rejected message was sent")
	}
	if ev := h.events.events["m1:review-rejected"]; ev.Type != smsgw.EventReviewRejected || ev.Data["reason"] != "phishing" {
		t.Errorf("review event %+v", ev)
	}
}

func TestHeldMessageTimesOutRejected(t *testing.T) {
	h, sent := held(t)
	start := h.env.Now()
	res := h.run(t)
	endedAt := h.events.events["m1:final"].At
	h.assertFinal(t, res, smsgw.StatusRejected)
	if res.ErrorCode != CodeReviewTimeout {
		t.Errorf("result %+v, want %s", res, CodeReviewTimeout)
	}
	if *sent {
		t.Fatal("a message whose review timed out was sent")
	}
	if waited := endedAt.Sub(start); waited < time.Hour || waited > time.Hour+time.Minute {
		t.Errorf("rejected after %s, want the hold's hour", waited)
	}
}

func TestHeldMessageCancelledByTheCustomer(t *testing.T) {
	h, sent := held(t)
	h.env.RegisterDelayedCallback(func() { h.env.UpdateWorkflow(UpdateCancel, "c1", &updateResult{}) }, 5*time.Minute)
	h.assertFinal(t, h.run(t), smsgw.StatusCancelled)
	if *sent {
		t.Fatal("a cancelled message was sent")
	}
}

func TestReviewOfAMessageNotHeldIsRefused(t *testing.T) {
	h := newHarness(t, sentOK("abc"))
	h.admitted = &smsgw.Admission{Matches: []smsgw.RuleMatch{{Rule: "content:promo", Action: smsgw.ActionTag, Tag: "marketing"}}}
	u := h.review(time.Second, ReviewRequest{Release: true})
	h.signalAt(time.Minute, "DELIVRD", "abc")
	h.assertFinal(t, h.run(t), smsgw.StatusDelivered)
	var appErr *temporal.ApplicationError
	if !errors.As(u.rejected, &appErr) || appErr.Type() != ErrCannotChange {
		t.Fatalf("review of a message not held: %v, want %s", u.rejected, ErrCannotChange)
	}
	if ev := h.events.events["m1:rule-1"]; ev.Type != smsgw.EventRuleMatched {
		t.Errorf("rule match not recorded: %+v", h.events.events)
	}
}
