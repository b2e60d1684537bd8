package workflows_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/smsgw/smsgw/workflows"
)

// TestReplayRecordedHistories replays every history in testdata/histories
// against the workflow code as it is now. The histories were recorded from
// the end-to-end tests (`make record-histories`), one per path they take;
// a change that would break a workflow already running in production (a
// command added, removed or reordered without workflow.GetVersion) fails
// here with a non-determinism error.
func mustOpen(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata/histories: run `make record-histories`")
	}
	replayer := worker.NewWorkflowReplayer()
	for _, wf := range []any{workflows.MessageWorkflow, workflows.InboundWorkflow, workflows.ReassemblyWorkflow, workflows.RedeliverWorkflow} {
		replayer.RegisterWorkflow(wf)
	}
	logger := tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	kinds := map[string]int{}
	for _, f := range files {
		kind, _, _ := strings.Cut(filepath.Base(f), "-")
		kinds[kind]++
		t.Run(filepath.Base(f), func(t *testing.T) {
			history, err := client.HistoryFromJSON(mustOpen(t, f), client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			opts := worker.ReplayWorkflowHistoryOptions{}
			if ids, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".execution"); err == nil {
				id, runID, _ := strings.Cut(strings.TrimSpace(string(ids)), "\n")
				opts.OriginalExecution = workflow.Execution{ID: id, RunID: runID}
			}
			if err := replayer.ReplayWorkflowHistoryWithOptions(logger, history, opts); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
	for _, kind := range []string{"MessageWorkflow", "InboundWorkflow", "ReassemblyWorkflow", "RedeliverWorkflow"} {
		if kinds[kind] == 0 {
			t.Errorf("no recorded history of %s", kind)
		}
	}
}
