package testenv

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
)

// TemporalAddress starts a Temporal dev server for one test and returns its
// address: the pinned CLI ($SMSGW_TEMPORAL_CLI or <repo>/bin/temporal, built
// by `make tools`), in memory, with the gateway's search attributes, stopped
// when the test ends. Nothing is ever downloaded.
func TemporalAddress(t testing.TB) string {
	t.Helper()
	skipShort(t, "the Temporal dev server")
	path := os.Getenv("SMSGW_TEMPORAL_CLI")
	if path == "" {
		root, err := repoRoot()
		if err != nil {
			t.Fatalf("find the repository root: %v", err)
		}
		path = filepath.Join(root, "bin", "temporal")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Temporal CLI: %v (run `make tools` to build bin/temporal, or set SMSGW_TEMPORAL_CLI)", err)
	}
	srv, err := testsuite.StartDevServer(context.Background(), testsuite.DevServerOptions{
		ExistingPath: path,
		LogLevel:     "error",
		SearchAttributes: temporal.NewSearchAttributes(
			temporal.NewSearchAttributeKeyKeyword("CustomerId").ValueSet(""),
			temporal.NewSearchAttributeKeyKeyword("MessageStatus").ValueSet(""),
			temporal.NewSearchAttributeKeyKeyword("ConnectorId").ValueSet(""),
			temporal.NewSearchAttributeKeyKeywordList("UpstreamMessageId").ValueSet(nil),
			temporal.NewSearchAttributeKeyKeyword("EntryPoint").ValueSet(""),
			temporal.NewSearchAttributeKeyTime("DueAt").ValueSet(time.Time{}),
		),
		ClientOptions: &client.Options{Namespace: "default", Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))},
		Stdout:        io.Discard,
		Stderr:        io.Discard,
	})
	if err != nil {
		t.Fatalf("Temporal dev server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return srv.FrontendHostPort()
}
