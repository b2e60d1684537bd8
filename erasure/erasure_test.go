package erasure_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/erasure"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/mongostore"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

// TestEraseANumber runs against MariaDB, devdb and a Temporal dev server:
// the messages to and from a number leave both stores and Temporal, its
// running workflow is refused until the caller asks to terminate it, and
// another number's message stays.
func TestEraseANumber(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	events, err := mongostore.Open(ctx, testenv.MongoURI(t), testenv.MongoDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close(context.Background())
	reports, err := mysqlstore.Open(ctx, testenv.MySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer reports.Close()
	tc, err := client.DialContext(ctx, client.Options{HostPort: testenv.TemporalAddress(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()

	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC) // fixed date: only stored, never compared with the clock
	msgs := []smsgw.MessageRecord{
		{ID: "to-number", From: "ACME", To: "+61412345001"},
		{ID: "from-number", From: "61412345001", To: "+61400000000"},
		{ID: "other-number", From: "ACME", To: "+61412345999"},
	}
	for _, m := range msgs {
		m.CustomerID, m.EntryPoint, m.Status, m.AcceptedAt, m.UpdatedAt = "acme", smsgw.EntryREST, smsgw.StatusSent, at, at
		if err := reports.UpsertMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
		if err := events.AppendEvents(ctx, smsgw.NewEvent(m.ID, "acme", 1, smsgw.EventAccepted, "accepted", at, nil),
			smsgw.NewEvent(m.ID, "acme", 2, smsgw.EventNotifyFailed, "notify-failed-webhook", at, nil)); err != nil {
			t.Fatal(err)
		}
		// No worker polls this queue: the workflows stay running.
		if _, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: m.ID, TaskQueue: "erasure-test-idle"}, "Idle"); err != nil {
			t.Fatal(err)
		}
	}
	// An inbound message from the number (its workflow long gone).
	if _, _, err := events.PutInbound(ctx, smsgw.InboundRecord{InboundMessage: smsgw.InboundMessage{
		ID: "mo-from-number", From: "+61412345001", To: "+61400000000", Text: "STOP", Encoding: "GSM7", Parts: 1, ReceivedAt: at,
	}, CustomerID: "acme", Status: "delivered", UpdatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := tc.TerminateWorkflow(ctx, "from-number", "", "ended before the erasure"); err != nil {
		t.Fatal(err)
	}
	// A redelivery of the failed notification, closed.
	redeliver := "redeliver-to-number-notify-failed-webhook"
	if _, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: redeliver, TaskQueue: "erasure-test-idle"}, "Idle"); err != nil {
		t.Fatal(err)
	}
	if err := tc.TerminateWorkflow(ctx, redeliver, "", "closed"); err != nil {
		t.Fatal(err)
	}

	e := &erasure.Eraser{Reports: reports, Events: events, Temporal: tc, Namespace: "default"}
	if _, err := e.Erase(ctx, "not a number", erasure.Options{}); smsgw.ErrorCode(err) != smsgw.EINVALID {
		t.Errorf("invalid number: %v", err)
	}
	_, err = e.Erase(ctx, "0061 412 345 001", erasure.Options{})
	if smsgw.ErrorCode(err) != smsgw.ECONFLICT {
		t.Fatalf("erasure with a running workflow: %v, want a conflict", err)
	}
	if _, err := reports.GetMessage(ctx, "to-number"); err != nil {
		t.Fatalf("the refused erasure removed a row: %v", err)
	}

	rep, err := e.Erase(ctx, "+61 412 345 001", erasure.Options{TerminateRunning: true, RequestedBy: "dpo@example.com", Reason: "ticket 42"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Messages != 3 || rep.Workflows != 3 || rep.Terminated != 1 || rep.Deleted["reporting/messages"] != 2 ||
		rep.Deleted["eventstore/events"] != 4 || rep.Deleted["eventstore/inbound"] != 1 || rep.NumberHash != smsgw.NumberHash("+61412345001") {
		t.Errorf("report %+v", rep)
	}
	for _, id := range []string{"to-number", "from-number"} {
		if _, err := reports.GetMessage(ctx, id); smsgw.ErrorCode(err) != smsgw.ENOTFOUND {
			t.Errorf("row %s: %v", id, err)
		}
		if evs, err := events.Events(ctx, id); err != nil || len(evs) != 0 {
			t.Errorf("events of %s: %v %v", id, evs, err)
		}
	}
	for _, id := range []string{"to-number", "from-number", redeliver} {
		waitGone(t, ctx, tc, id)
	}
	if _, err := events.GetInbound(ctx, "mo-from-number"); smsgw.ErrorCode(err) != smsgw.ENOTFOUND {
		t.Errorf("the number's inbound message after the erasure: %v", err)
	}
	if _, err := reports.GetMessage(ctx, "other-number"); err != nil {
		t.Errorf("the other number's row: %v", err)
	}
	if evs, err := events.Events(ctx, "other-number"); err != nil || len(evs) != 2 {
		t.Errorf("the other number's events: %v %v", evs, err)
	}
	if d, err := tc.DescribeWorkflowExecution(ctx, "other-number", ""); err != nil || d.GetWorkflowExecutionInfo().GetCloseTime() != nil {
		t.Errorf("the other number's workflow: %v", err)
	}
	audits, err := events.Erasures(ctx, smsgw.NumberHash("+61412345001"))
	// The refusal, then the erasure.
	if err != nil || len(audits) != 2 || !strings.Contains(audits[0].Error, "still running") || audits[0].Deleted["reporting/messages"] != 0 ||
		audits[1].ID != rep.ID || audits[1].RequestedBy != "dpo@example.com" || audits[1].Reason != "ticket 42" ||
		audits[1].Messages != 3 || audits[1].Deleted["reporting/messages"] != 2 || audits[1].Error != "" || audits[1].FinishedAt.Before(audits[1].StartedAt) {
		t.Errorf("audit %+v %v", audits, err)
	}

	// Again: nothing left to find, and a second audit record says so.
	again, err := e.Erase(ctx, "+61412345001", erasure.Options{})
	if err != nil || again.Messages != 0 || again.Workflows != 0 {
		t.Errorf("second erasure %+v %v", again, err)
	}
}

// waitGone waits until Temporal no longer knows a workflow (deletion is
// asynchronous).
func waitGone(t *testing.T, ctx context.Context, tc client.Client, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		_, err := tc.DescribeWorkflowExecution(ctx, id, "")
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	d, err := tc.DescribeWorkflowExecution(ctx, id, "")
	t.Errorf("workflow %s still exists after the erasure: %v %v", id, d.GetWorkflowExecutionInfo(), err)
}
