package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEndToEndPriceListsOverTheAdminAPI manages price lists over the
// admin API and `smsgw ctl prices` on one replica, and shows each change
// in force on another: a price list put for a customer bills its messages
// sent through the other replica at its price; replaced whole, with
// another currency and price, the next message costs the new price; a
// price list is validated as the configuration file is (400 with the
// reason), every change is audited under the admin key's name, and once
// deleted the customer is no longer billed.
func TestEndToEndPriceListsOverTheAdminAPI(t *testing.T) {
	g := startGatewayWith(t, "", gatewayExtras{
		customers: `  - id: shop
    apiKeys: ["plain:shop-key"]
  - id: pre
    apiKeys: ["plain:pre-key"]
    billing: {mode: prepaid}
`,
		sections: "admin:\n  keys: [{name: ops, key: \"plain:admin-key\"}]\n" +
			"priceLists:\n  - {id: pre-list, currency: EUR, customers: [pre], default: 0.10}\n",
	})
	g2 := replicaOf(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db, err := sql.Open("mysql", g.mysqlDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// billedIn is the currency g2 bills shop in, "" while it is not billed.
	billedIn := func() string {
		t.Helper()
		code, out := g2.do(t, "GET", "/v1/balance", "shop-key", "")
		switch code {
		case http.StatusConflict:
			return ""
		case http.StatusOK:
			return fmt.Sprint(out["balance"].(map[string]any)["currency"])
		}
		t.Fatalf("GET /v1/balance on the second replica: HTTP %d %v", code, out)
		return ""
	}
	// costOnTheOtherReplica sends a message through g2 and returns what it
	// was charged, once it is delivered.
	costOnTheOtherReplica := func(to string) string {
		t.Helper()
		code, out := g2.do(t, "POST", "/v1/messages", "shop-key", fmt.Sprintf(`{"from":"SHOP","to":%q,"text":"priced"}`, to))
		if code != http.StatusAccepted {
			t.Fatalf("submission on the second replica: HTTP %d %v", code, out)
		}
		id := fmt.Sprint(out["id"])
		var cost int64
		var currency string
		waitFor(t, ctx, "message "+id+" charged", func() bool {
			err := db.QueryRowContext(ctx, "SELECT cost_micros, currency FROM messages WHERE id = ? AND status = 'DELIVERED'", id).Scan(&cost, &currency)
			return err == nil && currency != ""
		})
		return fmt.Sprintf("%d %s", cost, currency)
	}
	if c := billedIn(); c != "" {
		t.Fatalf("shop billed in %q before it has a price list", c)
	}

	// Created over REST.
	code, out := g.do(t, "PUT", "/v1/admin/price-lists/retail", "admin-key",
		`{"currency":"EUR","customers":["shop"],"rates":[{"prefix":"+61","price":"0.05"},{"prefix":"+6149","price":0.02}]}`)
	if code != http.StatusOK || out["created"] != true {
		t.Fatalf("PUT a new price list: HTTP %d %v", code, out)
	}
	pl := out["priceList"].(map[string]any)
	if pl["id"] != "retail" || pl["currency"] != "EUR" || fmt.Sprint(pl["rates"]) != "[map[prefix:+61 price:0.05] map[prefix:+6149 price:0.02]]" {
		t.Errorf("the price list as stored: %v", pl)
	}
	waitFor(t, ctx, "shop billed in EUR on the second replica", func() bool { return billedIn() == "EUR" })
	if c := costOnTheOtherReplica("+61412000041"); c != "50000 EUR" {
		t.Errorf("a message through the second replica cost %s, want 50000 EUR", c)
	}

	// Read on either replica; a customer's key may not.
	if code, out := g2.do(t, "GET", "/v1/admin/price-lists", "admin-key", ""); code != http.StatusOK || len(out["priceLists"].([]any)) != 2 {
		t.Errorf("GET /v1/admin/price-lists: HTTP %d %v, want pre-list and retail", code, out)
	}
	if code, out := g2.do(t, "GET", "/v1/admin/price-lists/retail", "shop-key", ""); code != http.StatusForbidden {
		t.Errorf("a price list with a customer's key: HTTP %d %v, want 403", code, out)
	}

	// Validated as the configuration file is.
	for body, want := range map[string]string{
		`{"currency":"EUR","customers":["nobody"],"default":"0.1"}`: `price list retail: unknown customer \"nobody\"`,
		`{"currency":"EUR","customers":["pre"],"default":"0.1"}`:    `customer \"pre\" is already on price list pre-list`,
		`{"currency":"EUR","customers":["shop"],"default":"a lot"}`: "is not an amount",
	} {
		if code, out := g.do(t, "PUT", "/v1/admin/price-lists/retail", "admin-key", body); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["message"]), strings.ReplaceAll(want, `\"`, `"`)) {
			t.Errorf("PUT %s: HTTP %d %v, want 400 naming %s", body, code, out, want)
		}
	}
	if code, out := g.do(t, "DELETE", "/v1/admin/price-lists/pre-list", "admin-key", ""); code != http.StatusBadRequest ||
		!strings.Contains(fmt.Sprint(out["message"]), "billing.mode prepaid needs a price list") {
		t.Errorf("DELETE the price list a prepaid customer needs: HTTP %d %v, want 400", code, out)
	}

	// Replaced whole with `smsgw ctl prices put`: USD, one price.
	env := func(name string) string {
		if name == "SMSGW_ADMIN_KEY" {
			return "admin-key"
		}
		return ""
	}
	ctl := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := run(ctx, append([]string{"ctl", "-addr", g.base, "prices"}, args...), env, &stdout, &stderr); code != 0 {
			t.Fatalf("smsgw ctl prices %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	file := filepath.Join(t.TempDir(), "retail.yaml")
	if err := os.WriteFile(file, []byte("currency: USD\ncustomers: [shop]\ndefault: 0.07\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := ctl("put", "retail", "-f", file); !strings.Contains(out, "currency: USD") || !strings.Contains(out, "default: \"0.07\"") || strings.Contains(out, "rates") {
		t.Errorf("smsgw ctl prices put:\n%s", out)
	}
	if out := ctl("list"); !strings.Contains(out, "CURRENCY") || !strings.Contains(out, "retail") || !strings.Contains(out, "USD") || !strings.Contains(out, "pre-list") {
		t.Errorf("smsgw ctl prices list:\n%s", out)
	}
	if out := ctl("get", "retail"); !strings.Contains(out, "id: retail") || !strings.Contains(out, "USD") {
		t.Errorf("smsgw ctl prices get:\n%s", out)
	}
	waitFor(t, ctx, "shop billed in USD on the second replica", func() bool { return billedIn() == "USD" })
	if c := costOnTheOtherReplica("+61412000042"); c != "70000 USD" {
		t.Errorf("a message through the second replica after the replacement cost %s, want 70000 USD", c)
	}

	// Deleted: shop is no longer billed anywhere.
	if out := ctl("delete", "retail"); !strings.Contains(out, "deleted") {
		t.Errorf("smsgw ctl prices delete:\n%s", out)
	}
	waitFor(t, ctx, "shop no longer billed on the second replica", func() bool { return billedIn() == "" })
	if code, out := g2.do(t, "GET", "/v1/admin/price-lists/retail", "admin-key", ""); code != http.StatusNotFound {
		t.Errorf("GET a deleted price list: HTTP %d %v, want 404", code, out)
	}

	// Every change is audited under the admin key's name.
	code, out = g.do(t, "GET", "/v1/admin/audit?pageSize=10", "admin-key", "")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/admin/audit: HTTP %d %v", code, out)
	}
	audit := fmt.Sprint(out["entries"])
	for _, want := range []string{"action:put price list retail", "+ price list retail", "~ price list retail", "action:delete price list retail", "who:ops"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %q: %s", want, audit)
		}
	}
}
