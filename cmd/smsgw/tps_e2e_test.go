package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw/connectors/smpptest"
	"github.com/smsgw/smsgw/workflows"
)

// TestEndToEndConnectorTPSAcrossProcesses runs a connector's binds in two
// processes: `smsgw all` and a second `smsgw connector` built from this
// tree and started as its own process. The connector's tps is the rate of
// its Temporal task queue, so together the two send no faster than tps
// over a few seconds, while both take part. Within one second they may
// reach twice tps: Temporal's task-queue limiter holds a second's worth of
// tasks as its burst (docs/connectors.md).
func TestEndToEndConnectorTPSAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// More sends than one process keeps polls waiting (16): were the
	// first process's polls all ahead of the second's, the second still
	// gets some.
	const tps, n = 8, 40
	sim, simAddr := startSim(t, ctx, smpptest.Config{SystemID: "gw", Password: "pw"})
	g := startGatewayWith(t, "", gatewayExtras{
		connectors: fmt.Sprintf("  - {id: shared, address: %q, systemId: gw, password: pw, tps: %d}\n", simAddr, tps),
		routes:     `  - {name: denmark, prefixes: ["+45"], connectors: [shared]}` + "\n",
	})

	bin := buildSmsgw(t, ctx)
	var logs bytes.Buffer
	second := exec.Command(bin, append([]string{"connector", "-config", g.cfgPath, "-connectors", "shared",
		"-temporal-address", g.temporal, "-mongodb-uri", g.mongoURI, "-mongodb-database", g.mongoDB,
		"-mysql-dsn", g.mysqlDSN, "-metrics-addr", freeAddr(t), "-log-level", "warn"}, g.keys.flags()...)...)
	second.Stdout, second.Stderr = &logs, &logs
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = second.Process.Signal(syscall.SIGTERM)
		_ = second.Wait()
		if t.Failed() {
			t.Logf("second connector's logs:\n%s", logs.String())
		}
	})
	if err := sim.WaitBinds(ctx, 2); err != nil {
		t.Fatalf("both processes bound: %v\n%s", err, logs.String())
	}
	waitPollers(t, ctx, g.temporal, workflows.SendTaskQueue("shared"), 2)

	for i := range n {
		if code, out := g.do(t, "POST", "/v1/messages", "acme-key",
			fmt.Sprintf(`{"from":"ACME","to":"+4530000%03d","text":"shared %d"}`, i, i)); code != http.StatusAccepted {
			t.Fatalf("submit %d: HTTP %d %v", i, code, out)
		}
	}
	if err := sim.WaitSubmits(ctx, n); err != nil {
		t.Fatal(err)
	}
	var at []time.Time
	binds := map[int]int{}
	for _, s := range sim.Submits() {
		at = append(at, s.ReceivedAt)
		binds[s.Bind]++
	}
	slices.SortFunc(at, time.Time.Compare)
	// At tps in all, with the limiter's second of burst at the start, the
	// last send comes (n-tps)/tps after the first; two processes at tps
	// each would take half that. 10% slack for the clocks' scheduling.
	if span, least := at[n-1].Sub(at[0]), time.Duration(float64(n-tps)/tps*0.9*float64(time.Second)); span < least {
		t.Errorf("%d submits within %v from two processes; at %d per second in all they take at least %v", n, span, tps, least)
	}
	for i := range at {
		inSecond := 0
		for _, b := range at[i:] {
			if b.Sub(at[i]) < time.Second {
				inSecond++
			}
		}
		if inSecond > 2*tps {
			t.Errorf("%d submits in the second from %s, want at most %d (tps and the task queue's burst)", inSecond, at[i].Format(time.StampMilli), 2*tps)
		}
	}
	if t.Failed() {
		for _, s := range sim.Submits() {
			t.Logf("bind %d at %s", s.Bind, s.ReceivedAt.Format(time.StampMilli))
		}
	}
	if len(binds) < 2 {
		t.Errorf("submits by bind %v: want both processes to have sent", binds)
	}
}

// waitPollers waits until n processes poll the activity task queue named
// queue: a process takes sends only once its worker polls, some time after
// its bind.
func waitPollers(t *testing.T, ctx context.Context, address, queue string, n int) {
	t.Helper()
	c, err := client.DialContext(ctx, client.Options{HostPort: address})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for {
		resp, err := c.DescribeTaskQueue(ctx, queue, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
		identities := map[string]bool{}
		for _, p := range resp.GetPollers() {
			identities[p.GetIdentity()] = true
		}
		if err == nil && len(identities) >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d processes polling %s, want %d (last error: %v)", len(identities), queue, n, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
