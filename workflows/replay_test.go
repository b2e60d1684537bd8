package workflows

import (
	"log/slog"
	"testing"

	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
)

// Histories recorded by the gateway before the failover encoded per
// connector (testdata/old-*.json: a re-route on a submit error, and one on
// a receipt error) replay with the workflow as it is now, so messages in
// flight across an upgrade carry on.
func TestOldHistoriesReplay(t *testing.T) {
	for _, file := range []string{"testdata/old-failover-reroute.json", "testdata/old-failover-receipt.json"} {
		r := worker.NewWorkflowReplayer()
		r.RegisterWorkflow(MessageWorkflow)
		if err := r.ReplayWorkflowHistoryFromJSONFile(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)), file); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}
