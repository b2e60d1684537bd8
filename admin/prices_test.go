package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/admin"
)

// A price list is created and replaced whole with Put, validated as the
// configuration file is, read back with its prices as written and its
// rates' times as RFC 3339, audited, in force on another replica once it
// polls, and deleted unless a customer's billing needs it.
func TestPriceListsArePutValidatedAndDeleted(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	file := strings.Replace(bootstrap, "connectors:", "  - id: pre\n    billing: {mode: prepaid}\nconnectors:", 1) + `priceLists:
  - {id: pre-list, currency: EUR, customers: [pre], default: 0.10}
`
	s, live := replica(t, store, file)
	other, otherLive := replica(t, store, file)

	// Created: JSON numbers and strings both read as decimals.
	spec := map[string]any{
		"currency": "EUR", "customers": []any{"acme"}, "default": "0.10",
		"rates": []any{
			map[string]any{"prefix": "+61", "price": 0.05},
			map[string]any{"prefix": "+61", "price": "0.065", "from": "2027-01-01T00:00:00Z"},
		},
	}
	pl, v, created, err := s.Put(ctx, "ops", admin.PriceLists, "retail", spec, 0)
	if err != nil || !created || v != 2 {
		t.Fatalf("put: created %v version %d, %v", created, v, err)
	}
	rates, _ := pl["rates"].([]any)
	if pl["id"] != "retail" || pl["default"] != "0.10" || len(rates) != 2 {
		t.Fatalf("read back: %v", pl)
	}
	if r := rates[0].(map[string]any); r["price"] != "0.05" || r["from"] != nil || r["until"] != nil {
		t.Errorf("first rate read back %v, want price 0.05 and no times", r)
	}
	if r := rates[1].(map[string]any); r["price"] != "0.065" || r["from"] != "2027-01-01T00:00:00Z" {
		t.Errorf("second rate read back %v, want 0.065 from 2027-01-01T00:00:00Z", r)
	}
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC) // fixed date: before the second rate takes effect
	if q, billed, err := live.Config().Quote("acme", "+61412345678", at); err != nil || !billed || q.Micros != 50_000 || q.PriceList != "retail" {
		t.Errorf("quote in force here: %+v %v %v", q, billed, err)
	}
	if err := other.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if q, billed, _ := otherLive.Config().Quote("acme", "+61412345678", at.AddDate(1, 0, 0)); !billed || q.Micros != 65_000 {
		t.Errorf("quote on the other replica a year on: %+v %v, want 0.065", q, billed)
	}

	// Validated as the file is.
	for _, c := range []struct {
		spec map[string]any
		want string
	}{
		{map[string]any{"currency": "EUR", "customers": []any{"nobody"}, "default": "0.1"}, `price list retail: unknown customer "nobody"`},
		{map[string]any{"currency": "euro", "customers": []any{"acme"}, "default": "0.1"}, "ISO 4217"},
		{map[string]any{"currency": "EUR", "customers": []any{"acme"}, "default": "ten"}, "is not an amount"},
		{map[string]any{"currency": "EUR", "customers": []any{"pre"}, "default": "0.1"}, `customer "pre" is already on price list pre-list`},
		{map[string]any{"currency": "EUR", "customers": []any{"acme"}, "rates": []any{map[string]any{"prefix": "61", "price": "1"}}}, "must be '+' followed by digits"},
		{map[string]any{"id": "other", "currency": "EUR", "customers": []any{"acme"}, "default": "0.1"}, "is not the one of the path"},
		{map[string]any{"currency": "EUR", "customers": []any{"acme"}, "default": "0.1", "discount": 3}, "discount"},
	} {
		if _, _, _, err := s.Put(ctx, "ops", admin.PriceLists, "retail", c.spec, 0); smsgw.ErrorCode(err) != smsgw.EINVALID || !strings.Contains(err.Error(), c.want) {
			t.Errorf("put %v: %v, want EINVALID naming %q", c.spec, err, c.want)
		}
	}

	// Replaced whole: the rates left out are gone.
	pl, v, created, err = s.Put(ctx, "ops", admin.PriceLists, "retail", map[string]any{"currency": "EUR", "customers": []any{"acme"}, "default": "0.07"}, 2)
	if err != nil || created || v != 3 || pl["rates"] != nil || pl["default"] != "0.07" {
		t.Fatalf("replace: %v created %v version %d, %v", pl, created, v, err)
	}
	if _, _, _, err := s.Put(ctx, "ops", admin.PriceLists, "retail", map[string]any{"currency": "EUR", "customers": []any{"acme"}, "default": "0.08"}, 2); smsgw.ErrorCode(err) != smsgw.ECONFLICT {
		t.Errorf("put against an old version: %v, want ECONFLICT", err)
	}
	lists, _, err := s.List(ctx, admin.PriceLists)
	if err != nil || len(lists) != 2 || lists[0]["id"] != "pre-list" || lists[1]["id"] != "retail" {
		t.Fatalf("list: %v, %v", lists, err)
	}

	// Deleted, unless a customer's billing mode needs it.
	if _, err := s.Delete(ctx, "ops", admin.PriceLists, "pre-list", 0); smsgw.ErrorCode(err) != smsgw.EINVALID ||
		!strings.Contains(err.Error(), `customer "pre": billing.mode prepaid needs a price list`) {
		t.Errorf("delete of a price list a prepaid customer needs: %v", err)
	}
	if _, err := s.Delete(ctx, "ops", admin.PriceLists, "retail", 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, admin.PriceLists, "retail"); smsgw.ErrorCode(err) != smsgw.ENOTFOUND {
		t.Errorf("get after delete: %v, want ENOTFOUND", err)
	}
	if live.Config().Billed("acme") {
		t.Error("acme is still billed after its price list was deleted")
	}

	// Audited, with what changed.
	audit, err := s.Audit(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range audit {
		got = append(got, e.Who+" "+e.Action+": "+strings.Join(e.Changes, "; "))
	}
	joined := strings.Join(got, "\n")
	for _, want := range []string{"ops put price list retail: + price list retail", "ops put price list retail: ~ price list retail:", "ops delete price list retail: - price list retail"} {
		if !strings.Contains(joined, want) {
			t.Errorf("audit lacks %q:\n%s", want, joined)
		}
	}

	// Customers keep their secrets: they are not replaced whole.
	if _, _, _, err := s.Put(ctx, "ops", admin.Customers, "acme", map[string]any{}, 0); smsgw.ErrorCode(err) != smsgw.EINVALID {
		t.Errorf("put of a customer: %v, want EINVALID", err)
	}
}
