package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/smsgw/smsgw/payloadcrypt"
)

// openPayloads opens, in place, every sealed payload of a history event
// (failures' sealed messages included).
func openPayloads(ctx context.Context, e *historypb.HistoryEvent, keys *payloadcrypt.Keyring) error {
	return proxy.VisitPayloads(ctx, e, proxy.VisitPayloadsOptions{
		SkipSearchAttributes: true,
		Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
			return payloadcrypt.Codec{Keys: keys}.Decode(ps)
		},
	})
}

// recordHistories, when SMSGW_RECORD_HISTORIES names a directory, saves the
// history of every workflow on the test's Temporal server there,
// one file per shape (workflow type and sequence of event types), so that
// `make record-histories` keeps one example of every path the end-to-end
// tests take. workflows/replay_test.go replays them all against the
// workflow code as it is now. The payloads, sealed with keys, are saved
// opened, so that the replay needs no key.
func recordHistories(t *testing.T, address string, keys *payloadcrypt.Keyring) {
	dir := os.Getenv("SMSGW_RECORD_HISTORIES")
	if dir == "" || t.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: address, Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Errorf("record histories: %v", err)
		return
	}
	defer c.Close()
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			NextPageToken: token,
		})
		if err != nil {
			t.Errorf("record histories: %v", err)
			return
		}
		for _, ex := range resp.GetExecutions() {
			if err := saveHistory(ctx, c, keys, dir, ex.GetType().GetName(), ex.GetExecution().GetWorkflowId(), ex.GetExecution().GetRunId()); err != nil {
				t.Errorf("record histories: %v", err)
				return
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return
		}
	}
}

// saveHistory writes one workflow's history as <type>-<shape hash>.json,
// unless a history of that shape is saved already, and its workflow and run
// IDs beside it in <type>-<shape hash>.execution (a workflow may derive IDs
// from its own, and the replay must see the same ones).
func saveHistory(ctx context.Context, c client.Client, keys *payloadcrypt.Keyring, dir, wfType, id, runID string) error {
	h := &historypb.History{}
	shape := sha256.New()
	it := c.GetWorkflowHistory(ctx, id, runID, false, 0)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return err
		}
		if err := openPayloads(ctx, e, keys); err != nil {
			return err
		}
		h.Events = append(h.Events, e)
		shape.Write([]byte(e.GetEventType().String() + "\n"))
	}
	name := filepath.Join(dir, wfType+"-"+hex.EncodeToString(shape.Sum(nil))[:12]+".json")
	if _, err := os.Stat(name); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	raw, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(name, append(raw, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(strings.TrimSuffix(name, ".json")+".execution", []byte(id+"\n"+runID+"\n"), 0o644)
}
