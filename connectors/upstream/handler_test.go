package upstream

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/mongostore"
)

// startRecorder is a Temporal client that records the workflow IDs it is
// asked to start, and loses the answer of the first start (the server
// took it): the connector then refuses the deliver_sm.
type startRecorder struct {
	client.Client
	mu  sync.Mutex
	ids []string
}

func (c *startRecorder) ExecuteWorkflow(ctx context.Context, o client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	c.mu.Lock()
	c.ids = append(c.ids, o.ID)
	first := len(c.ids) == 1
	c.mu.Unlock()
	run, err := c.Client.ExecuteWorkflow(ctx, o, wf, args...)
	if first && err == nil {
		return nil, serviceerror.NewDeadlineExceeded("context deadline exceeded")
	}
	return run, err
}

// An SMPP MO has no ID: only a deliver_sm offered again after the gateway
// refused it (or left it unanswered), on the same connector within the
// redelivery window, is the same message; an identical one answered
// ESME_ROK before is a new message.
func TestMOOfferedAgainIsOneMessage(t *testing.T) {
	store, err := mongostore.Open(ctxT(t), testenv.MongoURI(t), testenv.MongoDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	tc, err := client.NewLazyClient(client.Options{HostPort: testenv.TemporalAddress(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	starts := &startRecorder{Client: tc}
	h := &Handler{Temporal: starts, Offers: store, RedeliveryWindow: time.Minute, Logger: testLogger(t)}

	at := time.Now().UTC()
	mo := func(after time.Duration) smsgw.MO {
		return smsgw.MO{ConnectorID: "offers", From: "61412345678", To: "61400000001", ShortMessage: []byte("yes please"), ReceivedAt: at.Add(after)}
	}
	if err := h.HandleMO(ctxT(t), mo(0)); err == nil {
		t.Fatal("the MO whose start was not answered was taken")
	}
	// The SMSC offers it again: the same message, started once.
	again := mo(5 * time.Second)
	if err := h.HandleMO(ctxT(t), again); err != nil {
		t.Fatal(err)
	}
	h.MOAnswered(ctxT(t), again)
	// The same words again, after the first was answered: a new message.
	third := mo(10 * time.Second)
	if err := h.HandleMO(ctxT(t), third); err != nil {
		t.Fatal(err)
	}
	h.MOAnswered(ctxT(t), third)
	// Taken, but its answer never went out (the connection dropped): offered
	// again within the window it is the same message, after it a new one.
	for _, after := range []time.Duration{20 * time.Second, 30 * time.Second, 30*time.Second + 2*time.Minute} {
		if err := h.HandleMO(ctxT(t), mo(after)); err != nil {
			t.Fatal(err)
		}
	}

	ids := starts.ids
	if len(ids) != 6 || ids[0] != ids[1] || ids[2] == ids[1] || ids[3] == ids[2] || ids[4] != ids[3] || ids[5] == ids[4] {
		t.Fatalf("workflow IDs started %v: want A A B C C D", ids)
	}
	for _, id := range ids {
		if _, err := tc.DescribeWorkflowExecution(ctxT(t), id, ""); err != nil {
			t.Errorf("inbound message %s was not started: %v", id, err)
		}
	}
}
