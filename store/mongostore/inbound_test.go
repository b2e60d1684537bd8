package mongostore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
)

func inboundRecord(id, customer string, at time.Time) smsgw.InboundRecord {
	status := smsgw.InboundRouted
	if customer == "" {
		status = smsgw.InboundUnrouted
	}
	return smsgw.InboundRecord{
		InboundMessage: smsgw.InboundMessage{ID: id, From: "+61412345678", To: "12345", Text: "hi " + id, Encoding: "GSM7", Parts: 1, ReceivedAt: at},
		CustomerID:     customer, Status: status,
	}
}

func TestInboundIsKeptOnceAndListedNewestFirst(t *testing.T) {
	t.Parallel()
	s, _, _ := open(t)
	c := ctx(t)
	if err := s.CreateInboundIndexes(c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateInboundIndexes(c); err != nil {
		t.Fatalf("indexes a second time: %v", err)
	}

	// Seven messages for acme, two in the same millisecond, one unrouted.
	for i := range 7 {
		at := t0.Add(time.Duration(i) * time.Second)
		if i == 6 {
			at = t0.Add(5 * time.Second)
		}
		if _, created, err := s.PutInbound(c, inboundRecord(fmt.Sprintf("mo-%d", i), "acme", at)); err != nil || !created {
			t.Fatalf("PutInbound %d: created %v, %v", i, created, err)
		}
	}
	if _, _, err := s.PutInbound(c, inboundRecord("mo-lost", "", t0)); err != nil {
		t.Fatal(err)
	}

	// The same ID again, routed elsewhere by a changed configuration: the first write wins.
	again := inboundRecord("mo-1", "other", t0)
	stored, created, err := s.PutInbound(c, again)
	if err != nil || created || stored.CustomerID != "acme" || stored.Text != "hi mo-1" {
		t.Fatalf("PutInbound again: %+v created %v, %v", stored, created, err)
	}

	var ids []string
	token := ""
	for pages := 0; ; pages++ {
		page, err := s.ListInbound(c, smsgw.InboundQuery{CustomerID: "acme", PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			ids = append(ids, m.ID)
		}
		if page.NextPageToken == "" {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		token = page.NextPageToken
	}
	want := "[mo-6 mo-5 mo-4 mo-3 mo-2 mo-1 mo-0]"
	if fmt.Sprint(ids) != want {
		t.Fatalf("listed %v, want %s", ids, want)
	}

	page, err := s.ListInbound(c, smsgw.InboundQuery{CustomerID: "acme", Since: t0.Add(4 * time.Second)})
	if err != nil || len(page.Messages) != 3 || page.NextPageToken != "" {
		t.Fatalf("since: %+v, %v", page, err)
	}
	unrouted, err := s.ListInbound(c, smsgw.InboundQuery{})
	if err != nil || len(unrouted.Messages) != 1 || unrouted.Messages[0].ID != "mo-lost" || unrouted.Messages[0].Status != smsgw.InboundUnrouted {
		t.Fatalf("unrouted: %+v, %v", unrouted, err)
	}
	if _, err := s.ListInbound(c, smsgw.InboundQuery{CustomerID: "acme", PageToken: "garbage"}); smsgw.ErrorCode(err) != smsgw.EINVALID {
		t.Fatalf("bad page token: %v, want EINVALID", err)
	}

	// Status moves, except for an unrouted message.
	if err := s.SetInboundStatus(c, "mo-2", smsgw.InboundDelivered, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetInboundStatus(c, "mo-lost", smsgw.InboundDelivered, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if m, err := s.GetInbound(c, "mo-2"); err != nil || m.Status != smsgw.InboundDelivered {
		t.Fatalf("mo-2: %+v, %v", m, err)
	}
	if m, err := s.GetInbound(c, "mo-lost"); err != nil || m.Status != smsgw.InboundUnrouted {
		t.Fatalf("mo-lost: %+v, %v", m, err)
	}
	if _, err := s.GetInbound(c, "nope"); smsgw.ErrorCode(err) != smsgw.ENOTFOUND {
		t.Fatalf("GetInbound of nothing: %v", err)
	}
}

func TestFailedNotificationsListAndRedelivered(t *testing.T) {
	t.Parallel()
	s, _, _ := open(t)
	c := ctx(t)
	if err := s.CreateInboundIndexes(c); err != nil {
		t.Fatal(err)
	}
	acts := &activities.Activities{Events: s, Now: func() time.Time { return t0 }}
	d1 := smsgw.Delivery{Channel: smsgw.ChannelWebhook, CustomerID: "acme", CallbackURL: "http://x/hook",
		Notification: &smsgw.Notification{MessageID: "m1", Status: smsgw.StatusDelivered, Seq: 7, OccurredAt: t0, Parts: 2}}
	d2 := smsgw.Delivery{Channel: smsgw.ChannelEmail, CustomerID: "acme",
		Inbound: &smsgw.InboundMessage{ID: "mo-9", From: "+61412345678", To: "12345", Text: "hello", ReceivedAt: t0}}
	d3 := smsgw.Delivery{Channel: smsgw.ChannelWebhook, CustomerID: "other",
		Notification: &smsgw.Notification{MessageID: "m3", Status: smsgw.StatusExpired}}
	for i, d := range []smsgw.Delivery{d1, d2, d3} {
		acts.Now = func() time.Time { return t0.Add(time.Duration(i) * time.Second) }
		if err := acts.NotifyFailed(c, d, "webhook answered 410 Gone"); err != nil {
			t.Fatal(err)
		}
	}

	list, next, err := s.ListFailedNotifications(c, "acme", "", 0)
	if err != nil || next != "" || len(list) != 2 {
		t.Fatalf("list: %+v %q, %v", list, next, err)
	}
	if list[0].Subject != "mo-9" || list[0].What != "inbound" || list[0].Delivery.Inbound == nil || list[0].Delivery.Inbound.Text != "hello" {
		t.Errorf("newest: %+v", list[0])
	}
	got := list[1]
	if got.Subject != "m1" || got.Channel != "webhook" || got.Reason != "webhook answered 410 Gone" || got.DeliveredAt != nil ||
		got.Delivery.CallbackURL != "http://x/hook" || got.Delivery.Notification == nil || got.Delivery.Notification.Seq != 7 ||
		!got.Delivery.Notification.OccurredAt.Equal(t0) {
		t.Errorf("oldest: %+v %+v", got, got.Delivery.Notification)
	}

	// One page at a time.
	first, token, err := s.ListFailedNotifications(c, "acme", "", 1)
	if err != nil || len(first) != 1 || token == "" {
		t.Fatalf("page 1: %+v %q %v", first, token, err)
	}
	second, token, err := s.ListFailedNotifications(c, "acme", token, 1)
	if err != nil || len(second) != 1 || token != "" || second[0].EventID != got.EventID {
		t.Fatalf("page 2: %+v %q %v", second, token, err)
	}

	// Delivered after all: the notified event Notify records marks it.
	eventID, err := smsgw.ParseFailedNotificationID(got.ID)
	if err != nil || eventID != got.EventID {
		t.Fatalf("ID %q → %q, %v", got.ID, eventID, err)
	}
	ok := smsgw.NewEvent("m1", "acme", 7, smsgw.EventNotified, "notified-webhook-DELIVERED", t0.Add(time.Hour), nil)
	if err := s.AppendEvents(c, ok); err != nil {
		t.Fatal(err)
	}
	one, err := s.FailedNotification(c, eventID)
	if err != nil || one.DeliveredAt == nil || !one.DeliveredAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after redelivery: %+v, %v", one, err)
	}
	if _, err := s.FailedNotification(c, "m1:accepted"); smsgw.ErrorCode(err) != smsgw.ENOTFOUND {
		t.Fatalf("an event of another type: %v, want ENOTFOUND", err)
	}
}
