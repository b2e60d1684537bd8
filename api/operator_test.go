package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	smsgw "github.com/smsgw/smsgw"
)

// fakeEraser records the erasures asked of it.
type fakeEraser struct{ calls []string }

func (f *fakeEraser) EraseNumber(_ context.Context, number string, terminate bool, by, reason string) (smsgw.ErasureRecord, error) {
	f.calls = append(f.calls, strings.Join([]string{number, map[bool]string{true: "terminate", false: "keep"}[terminate], by, reason}, " "))
	if !terminate {
		return smsgw.ErasureRecord{}, smsgw.Errorf(smsgw.ECONFLICT, "erase: 1 message of the number is still running")
	}
	return smsgw.ErasureRecord{ID: "er1", NumberHash: "abc", Messages: 2, Workflows: 2, Terminated: 1, Deleted: map[string]int64{"mysql/messages": 2}}, nil
}

// startOperatorServer serves the admin API with traffic and erasure.
func startOperatorServer(t *testing.T) (base string, traffic *trafficFakes, eraser *fakeEraser) {
	t.Helper()
	traffic, eraser = newTrafficFakes(), &fakeEraser{}
	srv, err := New(Config{}, Deps{
		Submitter: &recordingSubmitter{},
		Messages:  recordReader{},
		Customers: customerList{{ID: "alice", APIKeyHashes: []string{smsgw.HashAPIKey(aliceKey)}}},
		Admin:     &fakeAdmin{},
		Eraser:    eraser,
		Traffic:   &TrafficDeps{Messages: traffic, Events: traffic, Usage: traffic},
	})
	if err != nil {
		t.Fatal(err)
	}
	grpcLn, _ := net.Listen("tcp", "127.0.0.1:0")
	httpLn, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, grpcLn, httpLn) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "http://" + httpLn.Addr().String(), traffic, eraser
}

func TestOperatorTrafficOverRESTTakesAdminKeysOnly(t *testing.T) {
	base, traffic, _ := startOperatorServer(t)

	for _, path := range []string{"/v1/admin/messages", "/v1/admin/messages/m1/events", "/v1/admin/usage?from=2026-12-01&to=2026-12-02"} {
		if code, _ := call(t, "GET", base+path, aliceKey); code != http.StatusForbidden {
			t.Errorf("a customer key on %s: HTTP %d, want 403", path, code)
		}
	}
	code, page := call(t, "GET", base+"/v1/admin/messages?customerId=bob&status=failed", "admin-secret")
	if code != http.StatusOK || traffic.search.CustomerID != "bob" || traffic.search.Status != smsgw.StatusFailed || page["nextPageToken"] != "next" {
		t.Errorf("search: HTTP %d %v, query %+v", code, page, traffic.search)
	}
	code, evs := call(t, "GET", base+"/v1/admin/messages/m1/events", "admin-secret")
	if events, _ := evs["events"].([]any); code != http.StatusOK || len(events) != 4 || evs["customerId"] != "acme" {
		t.Errorf("events: HTTP %d %v", code, evs)
	}
	code, rep := call(t, "GET", base+"/v1/admin/usage?from=2026-12-01&to=2026-12-02", "admin-secret")
	if code != http.StatusOK || rep["totalMessages"] != "4" || traffic.usage.CustomerID != "" {
		t.Errorf("usage: HTTP %d %v, query %+v", code, rep, traffic.usage)
	}
	if code, body := call(t, "GET", base+"/v1/admin/usage?from=2026-12-01&to=2026-12-02&timeZone=Nowhere/Town", "admin-secret"); code != http.StatusBadRequest {
		t.Errorf("usage in an unknown zone: HTTP %d %v", code, body)
	}

	// CSV: the customer is a column.
	csvGet := func(path, key string) (int, [][]string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Accept", "text/csv")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return resp.StatusCode, nil
		}
		rows, err := csv.NewReader(resp.Body).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return resp.StatusCode, rows
	}
	code, rows := csvGet("/v1/admin/usage?from=2026-12-01&to=2026-12-02", "admin-secret")
	if code != http.StatusOK || len(rows) != 4 || rows[0][1] != "customer_id" || rows[2][1] != "bob" || rows[2][4] != "FAILED" ||
		rows[3][4] != "REFUSED" || rows[3][5] != "2" || rows[3][9] != "OPTED_OUT" {
		t.Errorf("usage CSV: HTTP %d %v", code, rows)
	}
	if code, _ := csvGet("/v1/admin/usage?from=2026-12-01&to=2026-12-02", aliceKey); code != http.StatusForbidden {
		t.Errorf("usage CSV with a customer key: HTTP %d, want 403", code)
	}
	// The fake's every page says there is a next one: the export is cut
	// short only by an error, so ask for a search that fails on its first page.
	if code, _ := csvGet("/v1/admin/messages?status=LOST", "admin-secret"); code != http.StatusBadRequest {
		t.Errorf("search CSV with a bad status: HTTP %d, want 400", code)
	}
}

func TestEraseNumberOverREST(t *testing.T) {
	base, _, eraser := startOperatorServer(t)
	post := func(body, key string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/v1/admin/erasures", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, _ := post(`{"number": "+61412345678"}`, aliceKey); code != http.StatusForbidden {
		t.Errorf("a customer key: HTTP %d, want 403", code)
	}
	if code, _ := post(`{}`, "admin-secret"); code != http.StatusBadRequest {
		t.Errorf("no number: HTTP %d, want 400", code)
	}
	if code, _ := post(`{"number": "+61412345678"}`, "admin-secret"); code != http.StatusConflict {
		t.Errorf("running messages without terminateRunning: HTTP %d, want 409", code)
	}
	code, rep := post(`{"number": "+61412345678", "terminateRunning": true, "reason": "request 42"}`, "admin-secret")
	if code != http.StatusOK || rep["id"] != "er1" || rep["messages"] != float64(2) || rep["terminated"] != float64(1) {
		t.Errorf("erasure: HTTP %d %v", code, rep)
	}
	if d, _ := rep["deleted"].(map[string]any); d["mysql/messages"] != "2" {
		t.Errorf("deleted %v", rep["deleted"])
	}
	if got := strings.Join(eraser.calls, "; "); got != "+61412345678 keep admin:ops ; +61412345678 terminate admin:ops request 42" {
		t.Errorf("erasures asked: %s", got)
	}
}
