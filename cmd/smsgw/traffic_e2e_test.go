package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/testenv"
)

// get sends a GET with the API key and the Accept header, and returns the
// status, the Content-Type and the body.
func (g *gateway) get(t *testing.T, path, key, accept string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest("GET", g.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

// searchIDs pages through GET /v1/messages?query and returns the IDs found,
// a "|" between pages.
func (g *gateway) searchIDs(t *testing.T, query string) string {
	t.Helper()
	var pages []string
	token := ""
	for range 50 {
		q := query
		if token != "" {
			q += "&pageToken=" + url.QueryEscape(token)
		}
		code, out := g.do(t, "GET", "/v1/messages?"+q, "acme-key", "")
		if code != http.StatusOK {
			t.Fatalf("search ?%s: HTTP %d %v", q, code, out)
		}
		var ids []string
		for _, f := range out["messages"].([]any) {
			ids = append(ids, f.(map[string]any)["message"].(map[string]any)["id"].(string))
		}
		pages = append(pages, strings.Join(ids, " "))
		token, _ = out["nextPageToken"].(string)
		if token == "" {
			return strings.Join(pages, "|")
		}
	}
	t.Fatalf("search ?%s did not end after 50 pages", query)
	return ""
}

// TestEndToEndSearchEventsUsage submits a few messages over REST, finds
// them by search with filters and pages (JSON and CSV), reads a message's
// events in order, and sees them in the usage report.
func TestEndToEndSearchEventsUsage(t *testing.T) {
	g := startGateway(t)
	start := time.Now().UTC()
	submit := func(key, body string) string {
		t.Helper()
		code, acc := g.do(t, "POST", "/v1/messages", key, body)
		id, _ := acc["id"].(string)
		if code != http.StatusAccepted || id == "" {
			t.Fatalf("submit %s: HTTP %d %v", body, code, acc)
		}
		return id
	}
	// acme's five: three delivered, one undeliverable (the simulator fails
	// numbers ending 0000), one from another sender with a reference; then
	// one of the other customer's.
	var ids []string
	for _, body := range []string{
		`{"from":"ACME","to":"+61412350001","text":"one"}`,
		`{"from":"ACME","to":"+61412350002","text":"two"}`,
		`{"from":"ACME","to":"+61412350000","text":"three"}`,
		`{"from":"ACME","to":"+61412350004","text":"a text long enough to take two parts on the air: ` + strings.Repeat("x", 120) + `"}`,
		`{"from":"SHOP","to":"+61412350005","text":"five","clientRef":"order-5"}`,
	} {
		ids = append(ids, submit("acme-key", body))
		time.Sleep(5 * time.Millisecond) // distinct acceptance times, in submission order
	}
	otherID := submit("other-key", `{"from":"OTHER","to":"+61412350006","text":"not acme's"}`)
	for i, id := range ids {
		status := "DELIVERED"
		if i == 2 {
			status = "UNDELIVERABLE"
		}
		g.hook.waitStatus(t, id, status, 60*time.Second)
	}
	newestFirst := slices.Clone(ids)
	slices.Reverse(newestFirst)

	// Search: every page, newest first, only acme's.
	for _, tc := range []struct{ query, want string }{
		{"pageSize=2", fmt.Sprintf("%s %s|%s %s|%s", newestFirst[0], newestFirst[1], newestFirst[2], newestFirst[3], newestFirst[4])},
		{"pageSize=10", strings.Join(newestFirst, " ")},
		{"status=UNDELIVERABLE", ids[2]},
		{"status=MESSAGE_STATUS_DELIVERED&pageSize=3", fmt.Sprintf("%s %s %s|%s", ids[4], ids[3], ids[1], ids[0])},
		{"to=" + url.QueryEscape("+61412350002"), ids[1]},
		{"from=SHOP", ids[4]},
		{"clientRef=order-5", ids[4]},
		{"connectorId=sim&pageSize=4", fmt.Sprintf("%s %s %s %s|%s", ids[4], ids[3], ids[2], ids[1], ids[0])},
		{"to=" + url.QueryEscape("+61412350006"), ""}, // the other customer's
		{"since=" + url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), ""},
		{"since=" + url.QueryEscape(start.Add(-time.Minute).Format(time.RFC3339)) + "&until=" + url.QueryEscape(time.Now().Add(time.Minute).UTC().Format(time.RFC3339)), strings.Join(newestFirst, " ")},
	} {
		if got := g.searchIDs(t, tc.query); got != tc.want {
			t.Errorf("search ?%s = %q, want %q", tc.query, got, tc.want)
		}
	}
	code, out := g.do(t, "GET", "/v1/messages?pageSize=1", "acme-key", "")
	found := out["messages"].([]any)[0].(map[string]any)
	if code != http.StatusOK || found["entryPoint"] != "rest" || found["upstreamId"] == "" || found["customerId"] != "acme" ||
		found["message"].(map[string]any)["clientRef"] != "order-5" {
		t.Errorf("the newest message as found: HTTP %d %v", code, out)
	}
	for _, tc := range []struct {
		query, key string
		want       int
	}{
		{"status=LOST", "acme-key", http.StatusBadRequest},
		{"pageToken=bogus", "acme-key", http.StatusBadRequest},
		{"pageSize=-1", "acme-key", http.StatusBadRequest},
		{"since=yesterday", "acme-key", http.StatusBadRequest},
		{"", "", http.StatusUnauthorized},
	} {
		if code, out := g.do(t, "GET", "/v1/messages?"+tc.query, tc.key, ""); code != tc.want || out["message"] == "" {
			t.Errorf("search ?%s: HTTP %d %v, want %d with the reason", tc.query, code, out, tc.want)
		}
	}

	// CSV: the same search, streamed over pages of one.
	code, ctype, body := g.get(t, "/v1/messages?status=DELIVERED&pageSize=1", "acme-key", "text/csv")
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/csv") {
		t.Fatalf("CSV search: HTTP %d %s %s", code, ctype, body)
	}
	records, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("CSV search: %v\n%s", err, body)
	}
	if len(records) != 5 || records[0][0] != "id" || records[0][1] != "status" {
		t.Fatalf("CSV search: %d records\n%s", len(records), body)
	}
	for i, want := range []string{ids[4], ids[3], ids[1], ids[0]} {
		if r := records[i+1]; r[0] != want || r[1] != "DELIVERED" || r[4] != "sim" || r[12] == "" || r[14] == "" {
			t.Errorf("CSV row %d = %v, want message %s", i+1, r, want)
		}
	}
	if r := records[2]; r[5] != "2" {
		t.Errorf("CSV row of the two-part message = %v, want 2 segments", r)
	}
	if code, ctype, body := g.get(t, "/v1/messages?status=LOST", "acme-key", "text/csv"); code != http.StatusBadRequest || !strings.Contains(body, "LOST") {
		t.Errorf("CSV search with a bad status: HTTP %d %s %s", code, ctype, body)
	}
	if code, _, _ := g.get(t, "/v1/messages", "", "text/csv"); code != http.StatusUnauthorized {
		t.Errorf("CSV search without a key: HTTP %d, want 401", code)
	}

	// Events of the two-part message, in order; the last, its delivery's,
	// is written after the webhook came, in the background (with the next
	// batch of events or after -store-batch-lazy-wait).
	testenv.WaitFor(t, "the two-part message's notified event", func() bool {
		code, out = g.do(t, "GET", "/v1/messages/"+ids[3]+"/events", "acme-key", "")
		if code != http.StatusOK {
			t.Fatalf("events: HTTP %d %v", code, out)
		}
		evs, _ := out["events"].([]any)
		return len(evs) > 0 && evs[len(evs)-1].(map[string]any)["type"] == smsgw.EventNotified
	})
	var types []string
	data := map[string]map[string]any{}
	for _, e := range out["events"].([]any) {
		ev := e.(map[string]any)
		types = append(types, ev["type"].(string))
		if _, seen := data[ev["type"].(string)]; !seen {
			data[ev["type"].(string)] = ev["data"].(map[string]any)
		}
	}
	if got, want := strings.Join(types, ","), "accepted,routed,sent,receipt,receipt,final,notified"; got != want {
		t.Fatalf("events %s, want %s\n%v", got, want, out)
	}
	if d := data["accepted"]; d["entryPoint"] != "rest" {
		t.Errorf("accepted: %v", d)
	}
	if d := data["routed"]; d["route"] != "australia" || d["prefix"] != "+61" || fmt.Sprint(d["segments"]) != "2" {
		t.Errorf("routed: %v", d)
	}
	if d := data["sent"]; d["connector"] != "sim" || len(d["upstreamIds"].([]any)) != 2 || len(d["latenciesMs"].([]any)) != 2 || fmt.Sprint(d["attempt"]) != "1" {
		t.Errorf("sent: %v", d)
	}
	if d := data["receipt"]; d["stat"] != "DELIVRD" || !strings.Contains(fmt.Sprint(d["raw"]), "stat:DELIVRD") {
		t.Errorf("receipt: %v", d)
	}
	if d := data["final"]; d["status"] != "DELIVERED" {
		t.Errorf("final: %v", d)
	}
	if d := data["notified"]; d["channel"] != "webhook" || d["result"] != "delivered" || fmt.Sprint(d["attempt"]) != "1" {
		t.Errorf("notified: %v", d)
	}
	if code, out := g.do(t, "GET", "/v1/messages/"+otherID+"/events", "acme-key", ""); code != http.StatusNotFound {
		t.Errorf("events of another customer's message: HTTP %d %v, want 404", code, out)
	}
	if code, out := g.do(t, "GET", "/v1/messages/no-such-message/events", "acme-key", ""); code != http.StatusNotFound {
		t.Errorf("events of no message: HTTP %d %v, want 404", code, out)
	}

	// Usage over the days around now: acme's five, once each.
	days := fmt.Sprintf("from=%s&to=%s", start.AddDate(0, 0, -1).Format(time.DateOnly), start.AddDate(0, 0, 2).Format(time.DateOnly))
	code, out = g.do(t, "GET", "/v1/usage?"+days, "acme-key", "")
	if code != http.StatusOK || fmt.Sprint(out["totalMessages"]) != "5" || fmt.Sprint(out["totalSegments"]) != "6" {
		t.Fatalf("usage: HTTP %d %v, want 5 messages in 6 segments", code, out)
	}
	byStatus := map[string]string{}
	for _, r := range out["rows"].([]any) {
		row := r.(map[string]any)
		if row["entryPoint"] != "rest" || row["connectorId"] != "sim" || row["customerId"] != "acme" {
			t.Errorf("usage row %v", row)
		}
		byStatus[statusName(row["status"])] += fmt.Sprintf("%v/%v ", row["messages"], row["segments"])
	}
	if got := fmt.Sprint(byStatus); got != "map[DELIVERED:4/5  UNDELIVERABLE:1/1 ]" {
		t.Errorf("usage by status = %s", got)
	}
	code, ctype, body = g.get(t, "/v1/usage?"+days+"&timeZone=Pacific/Auckland", "acme-key", "text/csv")
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/csv") || !strings.HasPrefix(body, "day,entry_point,connector_id,status,messages,segments,currency,cost_micros,refusal_reason\n") ||
		!strings.Contains(body, ",rest,sim,UNDELIVERABLE,1,1,,0,\n") {
		t.Errorf("usage CSV in Auckland: HTTP %d %s\n%s", code, ctype, body)
	}
	for _, q := range []string{days + "&timeZone=Mars/Olympus", "from=2026-13-01&to=2027-01-01", "from=2026-01-02&to=2026-01-01", "to=2026-01-01", "from=2020-01-01&to=2026-01-01"} {
		if code, out := g.do(t, "GET", "/v1/usage?"+q, "acme-key", ""); code != http.StatusBadRequest || out["message"] == "" {
			t.Errorf("usage ?%s: HTTP %d %v, want 400 with the reason", q, code, out)
		}
	}
}
