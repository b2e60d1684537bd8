package api

import (
	"context"
	"strings"
	"testing"
	"time"

	smsgw "github.com/smsgw/smsgw"
	smsgwv1 "github.com/smsgw/smsgw/proto/smsgw/v1"
)

// trafficFakes answer searches, events and usage, and keep the last query.
type trafficFakes struct {
	search smsgw.MessageQuery
	usage  smsgw.UsageQuery
	events map[string][]smsgw.Event
}

func (f *trafficFakes) SearchMessages(_ context.Context, q smsgw.MessageQuery) (smsgw.MessagePage, error) {
	f.search = q
	return smsgw.MessagePage{
		Messages:      []smsgw.MessageRecord{{ID: "m1", CustomerID: "acme", EntryPoint: smsgw.EntrySMPP, Status: smsgw.StatusDelivered, UpstreamID: "up1"}},
		NextPageToken: "next",
	}, nil
}

func (f *trafficFakes) Events(_ context.Context, id string) ([]smsgw.Event, error) {
	return f.events[id], nil
}

func (f *trafficFakes) Usage(_ context.Context, q smsgw.UsageQuery) ([]smsgw.UsageRow, error) {
	f.usage = q
	return []smsgw.UsageRow{
		{Day: "2026-12-01", CustomerID: "acme", EntryPoint: smsgw.EntryREST, ConnectorID: "sim", Status: smsgw.StatusDelivered, Messages: 3, Segments: 4},
		{Day: "2026-12-01", CustomerID: "bob", EntryPoint: smsgw.EntryREST, ConnectorID: "sim", Status: smsgw.StatusFailed, Messages: 1, Segments: 1},
	}, nil
}

func (f *trafficFakes) Refusals(_ context.Context, q smsgw.UsageQuery) ([]smsgw.RefusalRow, error) {
	return []smsgw.RefusalRow{{Day: "2026-12-01", CustomerID: "acme", Reason: smsgw.ReasonOptedOut, Refusals: 2}}, nil
}

func newTrafficFakes() *trafficFakes {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC) // fixed date: fake data, read back by its own time range
	return &trafficFakes{events: map[string][]smsgw.Event{
		"m1": {
			// As the store returns them: by seq, the failed notification
			// (seq of its status) after the final event.
			smsgw.NewEvent("m1", "acme", 1, smsgw.EventAccepted, "accepted", at, map[string]any{"entryPoint": "rest"}),
			smsgw.NewEvent("m1", "acme", 3, smsgw.EventNotifyFailed, "nf", at.Add(3*time.Second), map[string]any{"reason": "410", "delivery": map[string]any{"x": 1}}),
			smsgw.NewEvent("m1", "acme", 3, smsgw.EventNotified, "n", at.Add(2*time.Second), map[string]any{"channel": "smpp", "at": at}),
			smsgw.NewEvent("m1", "acme", 2, smsgw.EventFinal, "final", at.Add(time.Second), map[string]any{"status": "DELIVERED"}),
		},
	}}
}

func asCustomer(id string) context.Context {
	return context.WithValue(context.Background(), customerKey{}, &smsgw.Customer{ID: id})
}

func TestOperatorTrafficSpansCustomers(t *testing.T) {
	f := newTrafficFakes()
	op, err := NewOperatorTrafficServer(TrafficDeps{Messages: f, Events: f, Usage: f})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	page, err := op.SearchAllMessages(ctx, &smsgwv1.SearchAllMessagesRequest{Status: "failed", ConnectorId: "sim", PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if f.search.CustomerID != "" || f.search.Status != smsgw.StatusFailed || f.search.ConnectorID != "sim" || f.search.PageSize != 10 {
		t.Errorf("query of an operator's search over every customer: %+v", f.search)
	}
	if got := page.GetMessages()[0]; got.GetCustomerId() != "acme" || got.GetEntryPoint() != "smpp" || got.GetUpstreamId() != "up1" ||
		page.GetNextPageToken() != "next" {
		t.Errorf("found %v", page)
	}
	if _, err := op.SearchAllMessages(ctx, &smsgwv1.SearchAllMessagesRequest{CustomerId: "bob"}); err != nil || f.search.CustomerID != "bob" {
		t.Errorf("search of one customer: %v, query %+v", err, f.search)
	}

	evs, err := op.ListAnyMessageEvents(ctx, &smsgwv1.ListAnyMessageEventsRequest{Id: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, e := range evs.GetEvents() {
		order = append(order, e.GetType())
	}
	if got := strings.Join(order, ","); got != "accepted,final,notified,notify_failed" || evs.GetCustomerId() != "acme" {
		t.Errorf("events %s of %s", got, evs.GetCustomerId())
	}
	if d := evs.GetEvents()[2].GetData().AsMap(); d["at"] != "2026-12-01T10:00:00Z" || d["channel"] != "smpp" {
		t.Errorf("notified data %v", d)
	}
	if d := evs.GetEvents()[3].GetData().AsMap(); d["reason"] != "410" || d["delivery"] != nil {
		t.Errorf("notify_failed data %v, want the reason without the delivery", d)
	}

	rep, err := op.GetAllUsage(ctx, &smsgwv1.GetAllUsageRequest{From: "2026-12-01", To: "2026-12-02", TimeZone: "Australia/Sydney"})
	if err != nil {
		t.Fatal(err)
	}
	if f.usage.CustomerID != "" || f.usage.Location.String() != "Australia/Sydney" || f.usage.From.Day() != 1 || f.usage.To.Day() != 2 {
		t.Errorf("usage query %+v", f.usage)
	}
	if rep.GetTotalRefusals() != 2 || len(rep.GetRefusals()) != 1 || rep.GetRefusals()[0].GetReason() != smsgw.ReasonOptedOut {
		t.Errorf("usage refusals %v", rep.GetRefusals())
	}
	if rep.GetTotalMessages() != 4 || rep.GetTotalSegments() != 5 || len(rep.GetRows()) != 2 || rep.GetRows()[1].GetStatus() != smsgwv1.MessageStatus_MESSAGE_STATUS_FAILED {
		t.Errorf("usage %v", rep)
	}

	if _, err := NewOperatorTrafficServer(TrafficDeps{Messages: f}); err == nil {
		t.Error("NewOperatorTrafficServer without events and usage: no error")
	}
}

func TestTrafficServiceKeepsToTheCustomer(t *testing.T) {
	f := newTrafficFakes()
	s := &trafficService{traffic: traffic{&TrafficDeps{Messages: f, Events: f, Usage: f}}}

	if _, err := s.SearchMessages(asCustomer("acme"), &smsgwv1.SearchMessagesRequest{To: "+61412345678"}); err != nil || f.search.CustomerID != "acme" || f.search.To != "+61412345678" {
		t.Errorf("search: %v, query %+v", err, f.search)
	}
	if _, err := s.GetUsage(asCustomer("acme"), &smsgwv1.GetUsageRequest{From: "2026-12-01", To: "2026-12-08"}); err != nil ||
		f.usage.CustomerID != "acme" || f.usage.Location != time.UTC {
		t.Errorf("usage: %v, query %+v", err, f.usage)
	}
	if _, err := s.ListMessageEvents(asCustomer("acme"), &smsgwv1.ListMessageEventsRequest{Id: "m1"}); err != nil {
		t.Errorf("events of the customer's message: %v", err)
	}
	if _, err := s.ListMessageEvents(asCustomer("bob"), &smsgwv1.ListMessageEventsRequest{Id: "m1"}); smsgw.ErrorCode(err) != smsgw.ENOTFOUND {
		t.Errorf("events of another customer's message: %v, want %s", err, smsgw.ENOTFOUND)
	}
	if _, err := s.SearchMessages(context.Background(), &smsgwv1.SearchMessagesRequest{}); smsgw.ErrorCode(err) != smsgw.EUNAUTHORIZED {
		t.Errorf("search without a customer: %v", err)
	}

	for _, req := range []*smsgwv1.SearchMessagesRequest{
		{Status: "LOST"}, {PageSize: -1}, {To: strings.Repeat("1", 200)}, {PageToken: strings.Repeat("x", 1000)},
	} {
		if _, err := s.SearchMessages(asCustomer("acme"), req); smsgw.ErrorCode(err) != smsgw.EINVALID {
			t.Errorf("search %v: %v, want %s", req, err, smsgw.EINVALID)
		}
	}
	for _, req := range []*smsgwv1.GetUsageRequest{
		{To: "2026-12-02"}, {From: "2026-12-01"}, {From: "1 Dec", To: "2026-12-02"},
		{From: "2026-12-01", To: "2026-12-02", TimeZone: "Local"}, {From: "2026-12-01", To: "2026-12-02", TimeZone: "Nowhere/Town"},
	} {
		if _, err := s.GetUsage(asCustomer("acme"), req); smsgw.ErrorCode(err) != smsgw.EINVALID {
			t.Errorf("usage %v: %v, want %s", req, err, smsgw.EINVALID)
		}
	}
}
