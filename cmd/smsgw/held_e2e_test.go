package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEndToEndHeldList holds messages of two customers on one replica and
// lists them from another, with an admin key: all customers' or one's,
// oldest hold first, a page at a time, with the rule that held each and
// when its hold times out. A message leaves the list when it is released
// (a scheduled one at once, not when it is sent), rejected or cancelled;
// `smsgw ctl held list` prints what is left. A customer's key may not list.
func TestEndToEndHeldList(t *testing.T) {
	rules := `    rules:
      content:
        - {name: review-links, regex: "https?://", action: hold, holdFor: 1h}
`
	g := startGatewayWith(t, "", gatewayExtras{
		customers: "  - id: shop\n    apiKeys: [\"plain:shop-key\"]\n" + rules +
			"  - id: mart\n    apiKeys: [\"plain:mart-key\"]\n" + rules,
		sections: "admin:\n  keys: [{name: ops, key: \"plain:admin-key\"}]\n",
	})
	g2 := replicaOf(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	list := func(query string) (ids []string, out map[string]any) {
		t.Helper()
		code, out := g2.do(t, "GET", "/v1/admin/held-messages"+query, "admin-key", "")
		if code != http.StatusOK {
			t.Fatalf("GET /v1/admin/held-messages%s: HTTP %d %v", query, code, out)
		}
		msgs, _ := out["messages"].([]any)
		for _, m := range msgs {
			ids = append(ids, fmt.Sprint(m.(map[string]any)["id"]))
		}
		return ids, out
	}
	hold := func(key, to, extra string) string {
		t.Helper()
		code, out := g.do(t, "POST", "/v1/messages", key, fmt.Sprintf(`{"from":"SHOP","to":%q,"text":"see https://shop.test/x"%s}`, to, extra))
		if code != http.StatusAccepted {
			t.Fatalf("a message to hold: HTTP %d %v", code, out)
		}
		id := fmt.Sprint(out["id"])
		// Each is held by its workflow after the answer (a scheduled one
		// plans first); the next goes once this one is listed, so the
		// order they were held in is the order they were sent in.
		waitFor(t, ctx, "message "+id+" held", func() bool {
			ids, _ := list("")
			return slices.Contains(ids, id)
		})
		return id
	}
	first := hold("shop-key", "+61412000031", "")
	scheduled := hold("shop-key", "+61412000032", fmt.Sprintf(`,"scheduleAt":%q`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339)))
	mart := hold("mart-key", "+61412000033", "")
	cancelled := hold("mart-key", "+61412000034", "")

	waitFor(t, ctx, "the four held messages listed on the other replica", func() bool {
		ids, _ := list("")
		return len(ids) == 4
	})
	if ids, _ := list(""); fmt.Sprint(ids) != fmt.Sprint([]string{first, scheduled, mart, cancelled}) {
		t.Errorf("held list %v, want the four in the order they were held: %v", ids, []string{first, scheduled, mart, cancelled})
	}
	ids, out := list("?customerId=mart")
	if len(ids) != 2 || ids[0] != mart {
		t.Fatalf("mart's held list %v", out)
	}
	m := out["messages"].([]any)[0].(map[string]any)
	heldAt, err1 := time.Parse(time.RFC3339Nano, fmt.Sprint(m["heldAt"]))
	until, err2 := time.Parse(time.RFC3339Nano, fmt.Sprint(m["holdUntil"]))
	if m["customerId"] != "mart" || m["from"] != "SHOP" || m["to"] != "+61412000033" || m["rule"] != "content:review-links" ||
		m["reason"] != "content rule review-links" || err1 != nil || err2 != nil || until.Sub(heldAt) != time.Hour || time.Since(heldAt) > time.Minute {
		t.Errorf("held message %v, want mart's to +61412000033, held by content:review-links for an hour", m)
	}
	// Pages of two.
	page1, out := list("?pageSize=2")
	next, _ := out["nextPageToken"].(string)
	page2, out2 := list("?pageSize=2&pageToken=" + next)
	if len(page1) != 2 || next == "" || len(page2) != 2 || out2["nextPageToken"] != nil && out2["nextPageToken"] != "" || page2[0] != mart {
		t.Errorf("pages %v (next %q) and %v (%v), want two and two", page1, next, page2, out2)
	}
	if code, out := g2.do(t, "GET", "/v1/admin/held-messages", "shop-key", ""); code != http.StatusForbidden {
		t.Errorf("the list with a customer's key: HTTP %d %v, want 403", code, out)
	}

	// Released (the scheduled one, by the operator), rejected, cancelled:
	// off the list; the first is left.
	if code, out := g.do(t, "POST", "/v1/admin/messages/"+scheduled+":release", "admin-key", `{"reason":"fine"}`); code != 200 {
		t.Fatalf("release: HTTP %d %v", code, out)
	}
	if code, out := g.do(t, "POST", "/v1/admin/messages/"+mart+":reject", "admin-key", `{}`); code != 200 {
		t.Fatalf("reject: HTTP %d %v", code, out)
	}
	if code, out := g.do(t, "POST", "/v1/messages/"+cancelled+":cancel", "mart-key", `{}`); code != 200 {
		t.Fatalf("cancel: HTTP %d %v", code, out)
	}
	waitFor(t, ctx, "only the first message left on the list", func() bool {
		ids, _ := list("")
		return len(ids) == 1 && ids[0] == first
	})
	if _, out := g.do(t, "GET", "/v1/messages/"+scheduled, "shop-key", ""); statusName(out["status"]) != "ACCEPTED" {
		t.Errorf("the released scheduled message: %v, want still ACCEPTED, waiting for its time", out)
	}

	var ctlOut, ctlErr bytes.Buffer
	env := func(name string) string {
		if name == "SMSGW_ADMIN_KEY" {
			return "admin-key"
		}
		return ""
	}
	if code := run(ctx, []string{"ctl", "-addr", g2.base, "held", "list", "-customer", "shop"}, env, &ctlOut, &ctlErr); code != 0 {
		t.Fatalf("smsgw ctl held list: exit %d\n%s%s", code, ctlOut.String(), ctlErr.String())
	}
	lines := strings.Split(strings.TrimSpace(ctlOut.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "RULE") || !strings.Contains(lines[0], "TIMEOUT") ||
		!strings.HasPrefix(lines[1], first) || !strings.Contains(lines[1], "content:review-links") || !strings.Contains(lines[1], "+61412000031") {
		t.Errorf("smsgw ctl held list:\n%s", ctlOut.String())
	}
}
