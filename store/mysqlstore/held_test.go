package mysqlstore_test

import (
	"testing"
	"time"

	"github.com/smsgw/smsgw"
)

// The held list shows the rows marked held that are still ACCEPTED, oldest
// hold first, of one customer or all, a page at a time; a cleared hold,
// or a message that ended while held, is not on it.
func TestHeldListPagesThroughTheHeldMessages(t *testing.T) {
	s, _ := open(t)
	c := ctx(t)
	hold := func(id, customer string, at time.Time) {
		t.Helper()
		if err := s.UpsertMessage(c, smsgw.MessageRecord{ID: id, CustomerID: customer, From: "SHOP", To: "+61400000" + id[len(id)-3:],
			Status: smsgw.StatusAccepted, AcceptedAt: at, UpdatedAt: at}); err != nil {
			t.Fatal(err)
		}
		h := smsgw.HeldMessage{ID: id, CustomerID: customer, Rule: "content:links", Reason: "content rule links", HeldAt: at, HoldUntil: at.Add(time.Hour)}
		for range 2 { // marking again changes nothing
			if err := s.MarkHeld(c, h); err != nil {
				t.Fatal(err)
			}
		}
	}
	hold("h-001", "shop", t0.Add(3*time.Second))
	hold("h-002", "mart", t0.Add(1*time.Second))
	hold("h-003", "shop", t0.Add(2*time.Second))
	hold("h-004", "shop", t0.Add(2*time.Second)) // same instant as h-003: ordered by ID
	hold("h-005", "shop", t0.Add(4*time.Second))
	hold("h-006", "shop", t0.Add(5*time.Second))
	// h-005's review ended; h-006 was cancelled while held.
	if err := s.ClearHeld(c, "h-005"); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertMessage(c, smsgw.MessageRecord{ID: "h-006", Status: smsgw.StatusCancelled, UpdatedAt: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}

	list := func(q smsgw.HeldQuery) (ids []string, next string) {
		t.Helper()
		page, err := s.ListHeld(c, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range page.Messages {
			ids = append(ids, h.ID)
		}
		return ids, page.NextPageToken
	}
	var all []string
	q := smsgw.HeldQuery{PageSize: 2}
	for pages := 0; ; pages++ {
		ids, next := list(q)
		all = append(all, ids...)
		if next == "" {
			break
		}
		if pages == 5 {
			t.Fatal("the pages do not end")
		}
		q.PageToken = next
	}
	if got, want := len(all), 4; got != want || all[0] != "h-002" || all[1] != "h-003" || all[2] != "h-004" || all[3] != "h-001" {
		t.Fatalf("held list %v, want h-002 h-003 h-004 h-001", all)
	}
	if ids, next := list(smsgw.HeldQuery{CustomerID: "mart"}); len(ids) != 1 || ids[0] != "h-002" || next != "" {
		t.Errorf("mart's held list %v (next %q), want h-002 alone", ids, next)
	}
	page, err := s.ListHeld(c, smsgw.HeldQuery{CustomerID: "mart"})
	if err != nil {
		t.Fatal(err)
	}
	if h := page.Messages[0]; h.CustomerID != "mart" || h.From != "SHOP" || h.To != "+61400000002" || h.Rule != "content:links" ||
		h.Reason != "content rule links" || !h.HeldAt.Equal(t0.Add(time.Second)) || !h.HoldUntil.Equal(t0.Add(time.Hour+time.Second)) {
		t.Errorf("held message %+v", h)
	}
	if _, err := s.ListHeld(c, smsgw.HeldQuery{PageToken: "not-a-token"}); smsgw.ErrorCode(err) != smsgw.EINVALID {
		t.Errorf("a bad page token: %v, want EINVALID", err)
	}
	if _, err := s.ListHeld(c, smsgw.HeldQuery{PageSize: smsgw.MaxHeldPageSize + 1}); smsgw.ErrorCode(err) != smsgw.EINVALID {
		t.Errorf("a page too large: %v, want EINVALID", err)
	}
}
