package mongostore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/smsgw/smsgw"
)

func TestOptOutList(t *testing.T) {
	t.Parallel()
	s, _, _ := open(t)
	c := ctx(t)
	if err := s.CreateRulesIndexes(c); err != nil {
		t.Fatal(err)
	}
	added, err := s.AddOptOuts(c, []smsgw.OptOut{
		{CustomerID: "acme", Number: "+441000000001", Source: "api", At: t0},
		{CustomerID: "acme", Sender: "4470001", Number: "+441000000002", Source: "mo", Keyword: "STOP", At: t0},
		{CustomerID: "other", Number: "+441000000003", Source: "import", At: t0},
	})
	if err != nil || added != 3 {
		t.Fatalf("AddOptOuts: %d, %v", added, err)
	}
	// Again, with another source: kept as first stored, not counted.
	added, err = s.AddOptOuts(c, []smsgw.OptOut{{CustomerID: "acme", Number: "+441000000001", Source: "import", At: t0.Add(time.Hour)}})
	if err != nil || added != 0 {
		t.Fatalf("AddOptOuts again: %d, %v", added, err)
	}

	checks := []struct {
		customer, sender, number string
		want                     bool
	}{
		{"acme", "", "+441000000001", true},
		{"acme", "4470009", "+441000000001", true}, // the customer as a whole: every sender
		{"acme", "4470001", "+441000000002", true},
		{"acme", "4470009", "+441000000002", false}, // another sender of the customer
		{"acme", "", "+441000000002", false},        // an alphanumeric sender
		{"acme", "", "+441000000003", false},        // another customer's entry
		{"other", "", "+441000000003", true},
	}
	for _, ch := range checks {
		got, err := s.OptedOut(c, ch.customer, ch.sender, ch.number)
		if err != nil || got != ch.want {
			t.Errorf("OptedOut(%s, %q, %s) = %v, %v; want %v", ch.customer, ch.sender, ch.number, got, err, ch.want)
		}
	}

	// Listing a page at a time.
	var more []smsgw.OptOut
	for i := range 5 {
		more = append(more, smsgw.OptOut{CustomerID: "acme", Number: fmt.Sprintf("+44200000000%d", i), Source: "import", At: t0})
	}
	if _, err := s.AddOptOuts(c, more); err != nil {
		t.Fatal(err)
	}
	var listed []smsgw.OptOut
	token := ""
	for pages := 1; ; pages++ {
		page, next, err := s.ListOptOuts(c, smsgw.OptOutQuery{CustomerID: "acme", PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, page...)
		if next == "" {
			if pages != 3 {
				t.Errorf("%d pages, want 3", pages)
			}
			break
		}
		token = next
	}
	if len(listed) != 7 {
		t.Fatalf("listed %d entries, want 7: %+v", len(listed), listed)
	}
	first := listed[0]
	if first.Number != "+441000000001" || first.Source != "api" || !first.At.Equal(t0) {
		t.Errorf("first entry %+v, want +441000000001 from the api at %s", first, t0)
	}
	bySender, _, err := s.ListOptOuts(c, smsgw.OptOutQuery{CustomerID: "acme", Sender: "4470001"})
	if err != nil || len(bySender) != 1 || bySender[0].Keyword != "STOP" {
		t.Errorf("sender's entries: %+v, %v", bySender, err)
	}
	if _, _, err := s.ListOptOuts(c, smsgw.OptOutQuery{CustomerID: "other", PageToken: token}); smsgw.ErrorCode(err) != smsgw.EINVALID {
		t.Errorf("another customer's page token: %v, want EINVALID", err)
	}

	removed, err := s.RemoveOptOut(c, "acme", "", "+441000000001")
	if err != nil || !removed {
		t.Fatalf("RemoveOptOut: %v, %v", removed, err)
	}
	if removed, _ := s.RemoveOptOut(c, "acme", "", "+441000000001"); removed {
		t.Error("removed twice")
	}
	if got, _ := s.OptedOut(c, "acme", "", "+441000000001"); got {
		t.Error("still opted out after removal")
	}
}
