package main

import (
	"bufio"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"google.golang.org/grpc"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppserver/esme"
	"github.com/smsgw/smsgw/connectors/smpptest"
	"github.com/smsgw/smsgw/connectors/smppwire"
	"github.com/smsgw/smsgw/store/mongostore"
)

// soak runs the gateway as production runs it, two replicas of every role
// as processes of their own on one machine, under load from every entry
// point, while faults are injected in turn: processes killed and stopped,
// Temporal and the databases restarted, the carriers misbehaving, the
// customer's endpoints going away. Then a checker reads what every side
// saw and judges each message (docs/reliability.md).
func soak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	profileName := fs.String("profile", "short", "short (about 3 minutes of load, the main faults) or full (10 minutes, every fault)")
	dir := fs.String("dir", "", "directory of the run: data, logs, the report (default .data/soak-<time>)")
	rate := fs.Float64("rate", 0, "submissions per second over all entry points (default: half the rate a measuring run reaches on the stack just before the soak)")
	temporalCLI := fs.String("temporal-cli", envOr("SMSGW_TEMPORAL_CLI", "bin/temporal"), "the Temporal CLI (env SMSGW_TEMPORAL_CLI)")
	devdb := fs.String("devdb", envOr("SMSGW_DEVDB", "bin/devdb"), "the MongoDB-wire server (env SMSGW_DEVDB)")
	alertRules := fs.String("alert-rules", "deploy/prometheus/alerts.yaml", "the alert rules a Prometheus of the soak's own evaluates, when prometheus is installed")
	mysqlFallback := fs.String("mysql-dsn", "root@tcp(127.0.0.1:3306)/smsgw_soak?parseTime=true&loc=UTC",
		"reporting database when no mariadbd can be run for the soak (it is then never restarted)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, ok := soakProfiles[*profileName]
	if !ok {
		return fmt.Errorf("unknown -profile %q: short or full", *profileName)
	}
	if *rate > 0 {
		p.rate, p.measureN = *rate, 0
	}
	if *dir == "" {
		*dir = filepath.Join(".data", "soak-"+time.Now().UTC().Format("20060102-150405"))
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for _, path := range []*string{temporalCLI, devdb} {
		if *path, err = filepath.Abs(*path); err != nil {
			return err
		}
		if _, err := os.Stat(*path); err != nil {
			return fmt.Errorf("%w (run `make tools`)", err)
		}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("soak", p.name)
	k := &soakRun{profile: p, st: &stack{dir: abs, self: self, logger: logger}, logger: logger, stdout: stdout,
		ledger: &ledger{}, cust: newCustomer(), sims: map[string]*smpptest.SMSC{}, alertRules: *alertRules}
	return k.run(ctx, *temporalCLI, *devdb, *mysqlFallback)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// soakProfile is how long and how hard a soak runs, and its faults.
type soakProfile struct {
	name     string
	load     time.Duration // how long the load runs
	rate     float64       // submissions per second, over all entry points
	moEvery  time.Duration
	validity time.Duration // of every message
	faults   []plannedFault

	// measureN is how many messages the measuring run sends before the
	// soak: the load is then half the rate it reached. 0: rate is set.
	measureN int
	measured string // how the rate was measured, for the report
}

// plannedFault is one fault of the schedule: at its time (or when the one
// before it is over) it runs, and returns once the stack is whole again.
type plannedFault struct {
	at   time.Duration
	what string
	run  func(ctx context.Context, k *soakRun) (took time.Duration, detail string, err error)
}

// soakProfiles: the short one for CI, the full one for a release.
var soakProfiles = map[string]soakProfile{
	"short": {name: "short", load: 100 * time.Second, rate: 4, measureN: 120, moEvery: 4 * time.Second, validity: 2 * time.Minute, faults: []plannedFault{
		{10 * time.Second, killName("connector", 1), killHolding("connector", 0)},
		{20 * time.Second, "carrier A answers ESME_RTHROTTLED for 15 s", carrierFault("A", 15*time.Second, smpptest.Faults{Throttle: true})},
		{35 * time.Second, "SIGTERM worker-1 (drain), restart", killRole("worker", 0, syscall.SIGTERM)},
		{45 * time.Second, "kill -9 smpp-1, restart", killRole("smpp", 0, syscall.SIGKILL)},
		{55 * time.Second, "restart Temporal", restartServer(func(k *soakRun) *proc { return k.st.temporal })},
		{65 * time.Second, "carrier A answers no submit_sm for 10 s (in doubt)", carrierFault("A", 10*time.Second, smpptest.Faults{Silent: true})},
		{75 * time.Second, "customer webhook answers 500 for 20 s", webhookDown(20 * time.Second)},
		{78 * time.Second, "carrier A drops its connections mid-window", dropCarrier("A")},
		{82 * time.Second, "carrier A down for 20 s: messages fail over to carrier B", carrierDown("A", 20*time.Second)},
		{85 * time.Second, "restart the MongoDB-wire server", restartServer(func(k *soakRun) *proc { return k.st.devdb })},
		{92 * time.Second, "kill -9 worker-2, restart", killRole("worker", 1, syscall.SIGKILL)},
	}},
	"full": {name: "full", load: 10 * time.Minute, rate: 4, measureN: 300, moEvery: 2 * time.Second, validity: 10 * time.Minute, faults: fullFaults()},
}

// fullFaults is the full profile's schedule: each role's replicas killed
// and stopped in turn, every server restarted, every carrier fault and
// both customer faults, one after the other.
func fullFaults() []plannedFault {
	var fs []plannedFault
	at := 15 * time.Second
	add := func(what string, run func(context.Context, *soakRun) (time.Duration, string, error)) {
		fs = append(fs, plannedFault{at, what, run})
		at += 12 * time.Second
	}
	for _, r := range roleNames {
		add(killName(r, 1), killOne(r, 0))
	}
	add("restart Temporal", restartServer(func(k *soakRun) *proc { return k.st.temporal }))
	add("carrier A drops its connections mid-window", dropCarrier("A"))
	add("carrier A answers ESME_RTHROTTLED for 30 s", carrierFault("A", 30*time.Second, smpptest.Faults{Throttle: true}))
	add("customer webhook answers 500 for 2 min", webhookDown(2*time.Minute))
	for _, r := range roleNames {
		add("SIGTERM "+r+"-2 (drain), restart", killRole(r, 1, syscall.SIGTERM))
	}
	add("restart the MongoDB-wire server", restartServer(func(k *soakRun) *proc { return k.st.devdb }))
	add("carrier A answers no submit_sm for 20 s (in doubt)", carrierFault("A", 20*time.Second, smpptest.Faults{Silent: true}))
	add("carrier A sends receipts 3 min late, for 30 s of submits", carrierFault("A", 30*time.Second, smpptest.Faults{ReceiptDelay: 3 * time.Minute}))
	add("carrier A down for 30 s: messages fail over to carrier B", carrierDown("A", 30*time.Second))
	add("carrier A sends every receipt twice, for 30 s", carrierFault("A", 30*time.Second, smpptest.Faults{DuplicateReceipts: true}))
	add("restart MariaDB", restartServer(func(k *soakRun) *proc { return k.st.mariadb }))
	add("carrier A sends receipts before submit_sm_resp, for 30 s", carrierFault("A", 30*time.Second, smpptest.Faults{ReceiptBeforeResp: true}))
	add("carrier A sends receipts on its other bind, for 30 s", carrierFault("A", 30*time.Second, smpptest.Faults{ReceiptOtherBind: true}))
	add("customer receiver binds away for 60 s", receiversAway(60*time.Second))
	for _, r := range roleNames {
		add(killName(r, 2), killOne(r, 1))
	}
	add("restart Temporal", restartServer(func(k *soakRun) *proc { return k.st.temporal }))
	return fs
}

// killOne kills replica i of a role with SIGKILL and restarts it; a
// connector is killed only once it holds a send open for its receipt
// (killHolding).
func killOne(name string, i int) func(context.Context, *soakRun) (time.Duration, string, error) {
	if name == "connector" {
		return killHolding(name, i)
	}
	return killRole(name, i, syscall.SIGKILL)
}

// killName names killOne's fault for replica n (from 1) of a role.
func killName(role string, n int) string {
	if role == "connector" {
		return fmt.Sprintf("kill -9 %s-%d while it holds sends for their receipts, restart", role, n)
	}
	return fmt.Sprintf("kill -9 %s-%d, restart", role, n)
}

// killRole stops replica i of a role with sig, waits a moment, and starts
// it again; it returns once the replica is ready.
func killRole(name string, i int, sig syscall.Signal) func(context.Context, *soakRun) (time.Duration, string, error) {
	return func(ctx context.Context, k *soakRun) (time.Duration, string, error) {
		r := k.st.roles[name][i]
		took := r.stop(sig, 60*time.Second)
		if err := sleepCtx(ctx, 2*time.Second); err != nil {
			return took, "", err
		}
		if err := r.start(); err != nil {
			return took, "", err
		}
		err := r.waitReady(ctx, 2*time.Minute)
		return took, fmt.Sprintf("stopped in %s", took.Round(100*time.Millisecond)), err
	}
}

// killHolding is killRole with SIGKILL for a connector replica, sent once
// the replica holds at least one send open for its receipt (its
// smsgw_upstream_sends_held gauge, read every 20 ms, each read in at most
// a second, for up to 15 s): the
// kill then lands on sends that are upstream and not yet completed, which
// their heartbeat timeout and a retry must finish without sending them
// again. The detail says how many the last reading found, how long the
// wait took, and why the gauge could not be read, if it could not.
func killHolding(name string, i int) func(context.Context, *soakRun) (time.Duration, string, error) {
	const (
		waitAtMost = 15 * time.Second
		readEvery  = 20 * time.Millisecond
	)
	kill := killRole(name, i, syscall.SIGKILL)
	return func(ctx context.Context, k *soakRun) (time.Duration, string, error) {
		url := "http://" + k.st.roles[name][i].probes + "/metrics"
		start := time.Now()
		var held float64
		var readErr error
		for {
			readCtx, cancel := context.WithTimeout(ctx, time.Second)
			held, readErr = gaugeOf(readCtx, url, "smsgw_upstream_sends_held")
			cancel()
			if held >= 1 || time.Since(start) >= waitAtMost {
				break
			}
			if err := sleepCtx(ctx, readEvery); err != nil {
				return 0, "", err
			}
		}
		waited := time.Since(start).Round(10 * time.Millisecond)
		took, detail, err := kill(ctx, k)
		what := fmt.Sprintf("after %s: %.0f sends held at the last reading", waited, held)
		if readErr != nil {
			what += " (gauge not read: " + readErr.Error() + ")"
		}
		return took, what + "; " + detail, err
	}
}

// gaugeOf reads one metric without labels from a Prometheus text page.
func gaugeOf(ctx context.Context, url, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	return 0, fmt.Errorf("scrape %s: no %s", url, name)
}

// restartServer stops a server (SIGTERM) and starts it again on its data.
func restartServer(which func(*soakRun) *proc) func(context.Context, *soakRun) (time.Duration, string, error) {
	return func(ctx context.Context, k *soakRun) (time.Duration, string, error) {
		p := which(k)
		if p == nil {
			return 0, "skipped: not a server of the soak's own", nil
		}
		start := time.Now()
		p.stop(syscall.SIGTERM, 60*time.Second)
		if err := sleepCtx(ctx, time.Second); err != nil {
			return 0, "", err
		}
		if err := p.start(); err != nil {
			return 0, "", err
		}
		addr := map[*proc]string{k.st.temporal: k.st.temporalAddr, k.st.devdb: strings.TrimSuffix(strings.TrimPrefix(k.st.mongoURI, "mongodb://"), "/"),
			k.st.mariadb: mysqlAddrOf(k.st.mysqlDSN)}[p]
		err := waitUp(ctx, p, addr, 2*time.Minute)
		return time.Since(start), "down and back in " + time.Since(start).Round(100*time.Millisecond).String(), err
	}
}

// carrierFault switches a carrier's fault modes on for d.
func carrierFault(carrier string, d time.Duration, f smpptest.Faults) func(context.Context, *soakRun) (time.Duration, string, error) {
	return func(ctx context.Context, k *soakRun) (time.Duration, string, error) {
		sim := k.sims[carrier]
		before := sim.Faults()
		sim.SetFaults(f)
		err := sleepCtx(ctx, d)
		sim.SetFaults(before)
		return d, "", err
	}
}

// carrierDown takes a carrier away (its listener and its connections) for
// d: after the route's failover time its messages go to the other one.
func carrierDown(carrier string, d time.Duration) func(context.Context, *soakRun) (time.Duration, string, error) {
	return func(ctx context.Context, k *soakRun) (time.Duration, string, error) {
		sim := k.sims[carrier]
		sim.Stop()
		err := sleepCtx(ctx, d)
		if serr := sim.Start(); serr != nil && err == nil {
			err = serr
		}
		return d, "", err
	}
}

// dropCarrier closes every connection of a carrier at once.
func dropCarrier(carrier string) func(context.Context, *soakRun) (time.Duration, string, error) {
	return func(_ context.Context, k *soakRun) (time.Duration, string, error) {
		n := k.sims[carrier].Sessions()
		k.sims[carrier].CloseSessions()
		return 0, fmt.Sprintf("%d sessions closed", n), nil
	}
}

// webhookDown has the customer's endpoint answer 500 for d.
func webhookDown(d time.Duration) func(context.Context, *soakRun) (time.Duration, string, error) {
	return func(ctx context.Context, k *soakRun) (time.Duration, string, error) {
		k.cust.failWebhooksFor(d)
		return d, "", sleepCtx(ctx, d)
	}
}

// receiversAway takes the customer's receiver binds away for d.
func receiversAway(d time.Duration) func(context.Context, *soakRun) (time.Duration, string, error) {
	return func(ctx context.Context, k *soakRun) (time.Duration, string, error) {
		k.cust.receiversAwayFor(d)
		return d, "", sleepCtx(ctx, d)
	}
}

// soakRun is one run of the soak.
type soakRun struct {
	profile soakProfile
	st      *stack
	logger  *slog.Logger
	stdout  io.Writer
	ledger  *ledger
	cust    *customer
	sims    map[string]*smpptest.SMSC

	alertRules string
	measuredAt time.Time     // when the measuring run began
	alerts     *alertWatcher // nil when no prometheus is installed

	faultsMu sync.Mutex
	faults   []faultRecord
	current  *faultRecord // the fault under way
}

// faultsSoFar returns the faults run so far and the one under way, its
// duration so far as its Took.
func (k *soakRun) faultsSoFar() []faultRecord {
	k.faultsMu.Lock()
	defer k.faultsMu.Unlock()
	out := slices.Clone(k.faults)
	if k.current != nil {
		cur := *k.current
		cur.Took = time.Since(cur.started)
		out = append(out, cur)
	}
	return out
}

func (k *soakRun) run(ctx context.Context, temporalCLI, devdb, mysqlFallback string) error {
	started := time.Now()
	k.logger.Info("starting the stack", "dir", k.st.dir)
	defer k.st.stopAll()
	if err := k.st.startInfra(ctx, temporalCLI, devdb, mysqlFallback); err != nil {
		return err
	}

	// The carriers, and the customer's webhook endpoint.
	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopBG()
	simAddrs := map[string]string{}
	for _, carrier := range []string{"A", "B"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		sim := smpptest.New(smpptest.Config{SystemID: "gw", Password: "pw", ReceiptDelay: 500 * time.Millisecond, IDFormat: "hex",
			ReceiptAttempts: 200, ReceiptRetryInterval: 2 * time.Second,
			Logger: slog.New(slog.DiscardHandler)})
		k.sims[carrier], simAddrs[carrier] = sim, ln.Addr().String()
		wg.Add(1)
		go func() { defer wg.Done(); _ = sim.Serve(bg, ln) }()
	}
	hookLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() { defer wg.Done(); k.cust.serveWebhooks(bg, hookLn) }()

	cfgPath := filepath.Join(k.st.dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(soakConfig(k.profile, "http://"+hookLn.Addr().String()+"/hook", simAddrs)), 0o644); err != nil {
		return err
	}
	if err := k.st.startRoles(ctx, cfgPath); err != nil {
		return err
	}
	k.logger.Info("stack ready", "took", time.Since(started).Round(time.Second))
	promURL, err := k.st.startPrometheus(ctx, k.alertRules)
	if err != nil {
		return err
	}

	// The customer's binds: a transmitter and a receiver on each smpp replica.
	ld := &loader{st: k.st, ledger: k.ledger, smpp: map[string]*esme.Client{}, grpcConns: map[string]*grpc.ClientConn{}}
	defer func() {
		for _, c := range ld.grpcConns {
			c.Close()
		}
	}()
	for _, r := range k.st.roles["smpp"] {
		wg.Add(2)
		go func() {
			defer wg.Done()
			k.cust.keepBound(bg, r.smpp, smppwire.BindTransmitter, ld.setTransmitter(r.smpp))
		}()
		go func() { defer wg.Done(); k.cust.keepBound(bg, r.smpp, smppwire.BindReceiver, func(*esme.Client) {}) }()
	}
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return err
	}

	if k.profile.measureN > 0 {
		if err := k.measure(ctx, ld, k.profile.measureN); err != nil {
			return err
		}
	}

	// Load and faults, side by side.
	loadStart := time.Now()
	if !k.measuredAt.IsZero() {
		// Listed with the faults: the alerts its burst raises are its own.
		k.faults = append(k.faults, faultRecord{At: k.measuredAt.Sub(loadStart), What: "the measuring run's burst (before the load)", Took: loadStart.Sub(k.measuredAt)})
	}
	if promURL != "" {
		k.alerts = &alertWatcher{url: promURL, loadStart: loadStart, faults: k.faultsSoFar, firing: map[string]*alertSpan{}}
		wg.Add(1)
		go func() { defer wg.Done(); k.alerts.watch(bg) }()
	}
	loadCtx, stopLoad := context.WithTimeout(ctx, k.profile.load)
	defer stopLoad()
	var load sync.WaitGroup
	load.Add(3)
	go func() { defer load.Done(); k.submitLoad(loadCtx, ld) }()
	go func() { defer load.Done(); k.moLoad(loadCtx, ld) }()
	go func() { defer load.Done(); k.runFaults(ctx, loadStart) }()
	load.Wait()
	k.logger.Info("load and faults done", "submissions", len(k.ledger.submissions()))
	if err := k.st.waitRolesReady(ctx, 2*time.Minute); err != nil {
		return err
	}

	// The checker.
	mc, err := mongo.Connect(options.Client().ApplyURI(k.st.mongoURI).SetBSONOptions(&options.BSONOptions{DefaultDocumentMap: true}))
	if err != nil {
		return err
	}
	defer mc.Disconnect(context.WithoutCancel(ctx))
	db, err := sql.Open("mysql", k.st.mysqlDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	c := &checker{st: k.st, ledger: k.ledger, cust: k.cust, sims: k.sims,
		events: mc.Database("smsgw_soak").Collection(mongostore.EventsCollection), db: db}
	deadline := time.Now().Add(k.profile.validity + 90*time.Second)
	c.awaitFinal(ctx, deadline, func(format string, args ...any) { k.logger.Info(fmt.Sprintf(format, args...)) })
	k.awaitNotifications(ctx, c, time.Now().Add(90*time.Second))
	if k.alerts != nil {
		k.alerts.awaitResolved(ctx, time.Now().Add(2*time.Minute))
	}
	balanceProblem, err := c.awaitBalance(ctx, time.Now().Add(90*time.Second))
	if err != nil {
		return err
	}
	vs, f, err := c.check(ctx)
	if err != nil {
		return err
	}
	if balanceProblem != "" {
		f.LedgerProblems++
		f.BalanceProblem = balanceProblem
	}
	if err := writeRecords(k.st.dir, vs, k.sims, k.ledger); err != nil {
		return err
	}
	out, err := os.Create(filepath.Join(k.st.dir, "report.md"))
	if err != nil {
		return err
	}
	defer out.Close()
	af := k.alerts.figures()
	report(io.MultiWriter(out, k.stdout), k.profile, started, k.faultsSoFar(), f, vs, k.st.ownMariaDB)
	reportAlerts(io.MultiWriter(out, k.stdout), af)
	fmt.Fprintf(k.stdout, "\nThe run took %s; its logs and records are in %s\n", time.Since(started).Round(time.Second), k.st.dir)
	if !af.pass() {
		return fmt.Errorf("the alert rules did not fire during their faults or did not resolve after them (see %s)", filepath.Join(k.st.dir, "report.md"))
	}
	if !f.pass() {
		return fmt.Errorf("the soak found messages the gateway lost, sent twice unrecorded, or failed to keep (see %s)", filepath.Join(k.st.dir, "report.md"))
	}
	return nil
}

// measureConcurrency is how many REST clients the measuring run has.
const measureConcurrency = 16

// measure sends n messages over REST, from measureConcurrency clients
// spread over both api replicas, and waits for their final webhooks: the
// stack's capacity is n over the time from the first submission to the
// last final status, and the soak's load is half of it. The messages are
// checked with the soak's own.
func (k *soakRun) measure(ctx context.Context, ld *loader, n int) error {
	before := len(k.ledger.submissions())
	start := time.Now()
	next := make(chan struct{})
	var wg sync.WaitGroup
	for range measureConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				ld.submit(ctx, "rest")
			}
		}()
	}
	for range n {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	accepted := map[string]bool{}
	for _, s := range k.ledger.submissions()[before:] {
		if s.Outcome == outcomeAccepted {
			accepted[s.ID] = true
		}
	}
	if len(accepted) < n/2 {
		return fmt.Errorf("measuring run: %d of %d submissions accepted", len(accepted), n)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		final := 0
		k.cust.mu.Lock()
		for id := range accepted {
			if slices.ContainsFunc(k.cust.webhooks[id], func(nt note) bool { return smsgw.Status(nt.Status).Final() }) {
				final++
			}
		}
		k.cust.mu.Unlock()
		if final == len(accepted) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("measuring run: %d of %d messages final after 3 minutes", final, len(accepted))
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	took := time.Since(start)
	k.measuredAt = start
	capacity := float64(len(accepted)) / took.Seconds()
	k.profile.rate = capacity / 2
	k.profile.measured = fmt.Sprintf("half of %.1f messages/s, the rate the stack reached just before the soak: %d messages over REST from %d clients, final in %s",
		capacity, len(accepted), measureConcurrency, took.Round(100*time.Millisecond))
	k.logger.Info("measured the stack", "capacity", fmt.Sprintf("%.1f/s", capacity), "load", fmt.Sprintf("%.1f/s", k.profile.rate))
	return nil
}

// submitLoad submits at the profile's rate, over REST, gRPC, SMPP and
// email in turn, until ctx ends.
func (k *soakRun) submitLoad(ctx context.Context, ld *loader) {
	entries := []string{"rest", "grpc", "smpp", "email"}
	tick := time.NewTicker(time.Duration(float64(time.Second) / k.profile.rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		entry := entries[i%len(entries)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ld.submit(context.WithoutCancel(ctx), entry)
		}()
	}
}

// moLoad has the carriers offer MO in turn until ctx ends.
func (k *soakRun) moLoad(ctx context.Context, ld *loader) {
	tick := time.NewTicker(k.profile.moEvery)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		carrier := []string{"A", "B"}[n%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ld.offerMO(context.WithoutCancel(ctx), n, carrier, k.sims[carrier])
		}()
	}
}

// runFaults runs the profile's faults in turn, each at its time or when
// the one before it is over, and records them.
func (k *soakRun) runFaults(ctx context.Context, loadStart time.Time) {
	for _, pf := range k.profile.faults {
		if wait := time.Until(loadStart.Add(pf.at)); wait > 0 {
			if sleepCtx(ctx, wait) != nil {
				return
			}
		}
		at := time.Since(loadStart)
		k.logger.Info("fault", "what", pf.what)
		k.faultsMu.Lock()
		k.current = &faultRecord{At: at, What: pf.what, started: time.Now()}
		k.faultsMu.Unlock()
		took, detail, err := pf.run(ctx, k)
		if err != nil {
			detail = strings.TrimSpace(detail + " error: " + err.Error())
			k.logger.Error("fault", "what", pf.what, "err", err)
		}
		k.faultsMu.Lock()
		k.faults = append(k.faults, faultRecord{At: at, What: pf.what, Took: took, Detail: detail})
		k.current = nil
		k.faultsMu.Unlock()
	}
}

// awaitNotifications waits, until deadline, for every final message's
// webhook (and receipt deliver_sm, for SMPP submissions) and every MO the
// gateway took to reach the customer.
func (k *soakRun) awaitNotifications(ctx context.Context, c *checker, deadline time.Time) {
	for time.Now().Before(deadline) && ctx.Err() == nil {
		missing := 0
		k.cust.mu.Lock()
		for _, s := range k.ledger.submissions() {
			if s.Outcome != outcomeAccepted {
				continue
			}
			if len(k.cust.webhooks[s.ID]) == 0 || s.Entry == "smpp" && len(k.cust.deliverSM[s.ID]) == 0 {
				missing++
			}
		}
		k.ledger.mu.Lock()
		for _, mo := range k.ledger.mos {
			if mo.Taken && len(k.cust.inbound[mo.Text]) == 0 {
				missing++
			}
		}
		k.ledger.mu.Unlock()
		k.cust.mu.Unlock()
		if missing == 0 {
			return
		}
		k.logger.Info("waiting for notifications", "missing", missing)
		_ = sleepCtx(ctx, 5*time.Second)
	}
}

// soakConfig is the gateway's configuration for the soak: one prepaid
// customer on every entry point and channel, two carriers with failover
// between them.
func soakConfig(p soakProfile, hookURL string, sims map[string]string) string {
	return fmt.Sprintf(`# Written by smsgw soak.
webhooks:
  allowNetworks: ["127.0.0.0/8"] # the customer's endpoint is on loopback
customers:
  - id: soak
    apiKeys: ["plain:%s"]
    webhook: {url: %q, secret: %s}
    smpp: {systemId: %s, password: "plain:%s", maxBinds: 20}
    validity: %s
    numbers: [{number: "+%s"}]
    emailIngress: {allowedSenders: [%q], trustEnvelopeSender: true} # loopback: the soak is the network
    billing: {mode: prepaid} # every message reserved, then settled or released, exactly once
priceLists:
  - {id: soak, currency: EUR, customers: [soak], rates: [{prefix: "+61", price: 0.01}]}
connectors:
  - {id: carrier-a, address: %q, systemId: gw, password: pw, binds: 2, windowSize: 20, responseTimeout: 5s,
     rebindMin: 500ms, rebindMax: 2s, receiptIdFormat: hex, inDoubt: resubmit}
  - {id: carrier-b, address: %q, systemId: gw, password: pw, windowSize: 20, responseTimeout: 5s,
     rebindMin: 500ms, rebindMax: 2s, receiptIdFormat: hex, inDoubt: fail}
email:
  domains: [%s]
routes:
  - {name: soak, prefixes: ["+61"], connectors: [carrier-a, carrier-b]}
`, soakAPIKey, hookURL, soakSecret, soakSystemID, soakPassword, p.validity, soakNumber, soakMailFrom, sims["A"], sims["B"], soakMailDomain)
}
