package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The soak's stack: every server is a process of its own on loopback,
// started, killed and started again by a supervisor that keeps its
// command line, so a restarted process comes back where it was.

// proc is one supervised process.
type proc struct {
	name string
	path string
	args []string
	env  []string
	log  string // its stdout and stderr, appended across restarts

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the running command has exited
}

// start runs the process; it is an error to start one that runs.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s is running", p.name)
	}
	out, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "=== %s: %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), p.path, strings.Join(p.args, " "))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: a signal to the soak does not reach it, and
	// a kill reaches what it started (the Temporal CLI's server).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		_ = cmd.Wait()
		out.Close()
		p.mu.Lock()
		if p.cmd == cmd {
			p.cmd = nil
		}
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// running reports whether the process runs.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// stop sends sig to the process's group and waits up to grace for it to
// exit, then kills the group. It reports how long the exit took.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) time.Duration {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return 0
	}
	start := time.Now()
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	return time.Since(start)
}

// freePort returns a loopback port nothing listens on now and that no
// earlier call has returned: the system may hand the same free port to
// two binds in a row, and two servers of the stack given one port would
// have one of them fail to start (or, worse, a client of one talking to
// the other).
func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !portsGiven[port] {
			portsGiven[port] = true
			return port, nil
		}
	}
	return 0, errors.New("no loopback port left that was not handed out already")
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// waitUp waits until p takes connections at addr, and fails at once if p
// exits meanwhile (a server that could not start, its port taken).
func waitUp(ctx context.Context, p *proc, addr string, timeout time.Duration) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := waitTCP(ctx, addr, timeout)
	select {
	case <-done:
		return fmt.Errorf("%s exited while starting (its log: %s)", p.name, p.log)
	default:
	}
	return err
}

// waitTCP waits until addr takes connections.
func waitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s does not answer: %w", addr, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stack is every process of the soak.
type stack struct {
	dir    string // the run's directory: data, logs, the report
	self   string // this binary
	logger *slog.Logger

	temporal, devdb, mariadb *proc
	prometheus               *proc // the soak's alerting, when installed
	temporalAddr             string
	mongoURI, mysqlDSN       string
	ownMariaDB               bool // a server of the soak's own, which it may restart

	roles map[string][]*role // by role name, two replicas each
}

// role is one replica of an smsgw role and its addresses.
type role struct {
	*proc
	role                   string
	http, grpc, smpp, smtp string
	probes                 string // where /readyz (and /metrics) are served
}

// startInfra starts Temporal (the dev server on a file), the MongoDB-wire
// server (devdb) and MariaDB (a server of the soak's own when mariadbd is
// installed, else the one at mysqlFallback).
func (s *stack) startInfra(ctx context.Context, temporalCLI, devdbPath, mysqlFallback string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	uiPort, err := freePort()
	if err != nil {
		return err
	}
	s.temporalAddr = fmt.Sprintf("127.0.0.1:%d", port)
	args := append([]string{"server", "start-dev", "--ip", "127.0.0.1", "--port", fmt.Sprint(port), "--ui-port", fmt.Sprint(uiPort),
		"--db-filename", filepath.Join(s.dir, "temporal.db")}, temporalDevArgs()...)
	s.temporal = &proc{name: "temporal", path: temporalCLI, args: args, log: filepath.Join(s.dir, "temporal.log")}

	mongoPort, err := freePort()
	if err != nil {
		return err
	}
	s.mongoURI = fmt.Sprintf("mongodb://127.0.0.1:%d/", mongoPort)
	s.devdb = &proc{name: "devdb", path: devdbPath, log: filepath.Join(s.dir, "devdb.log"),
		args: []string{"-mongo-addr", fmt.Sprintf("127.0.0.1:%d", mongoPort), "-mysql-addr", "", "-data", filepath.Join(s.dir, "ferretdb")}}

	if mariadbd, err := exec.LookPath("mariadbd"); err == nil {
		if err := s.prepareMariaDB(ctx, mariadbd); err != nil {
			return err
		}
	} else {
		s.logger.Warn("no mariadbd on this machine: using the MariaDB at "+mysqlFallback+", which the soak does not restart", "err", err)
		s.mysqlDSN = mysqlFallback
	}

	for _, p := range []*proc{s.temporal, s.devdb, s.mariadb} {
		if p == nil {
			continue
		}
		if err := p.start(); err != nil {
			return err
		}
	}
	if err := waitUp(ctx, s.temporal, s.temporalAddr, 2*time.Minute); err != nil {
		return fmt.Errorf("temporal: %w", err)
	}
	if err := waitUp(ctx, s.devdb, fmt.Sprintf("127.0.0.1:%d", mongoPort), time.Minute); err != nil {
		return fmt.Errorf("devdb: %w", err)
	}
	if s.mariadb != nil {
		if err := waitUp(ctx, s.mariadb, mysqlAddrOf(s.mysqlDSN), time.Minute); err != nil {
			return fmt.Errorf("mariadb: %w", err)
		}
	}
	// Bounded: a server that answers on the port but not as MySQL would
	// otherwise hold the soak here for good.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return createDatabase(ctx, s.mysqlDSN)
}

// createDatabase creates the database a DSN names, if it is not there.
func createDatabase(ctx context.Context, dsn string) error {
	server, rest, _ := strings.Cut(dsn, ")/")
	name, _, _ := strings.Cut(rest, "?")
	db, err := sql.Open("mysql", server+")/")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+name+"`"); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// prepareMariaDB sets up a MariaDB server of the soak's own, in its
// directory, on a port of its own: restarting it disturbs nothing else on
// the machine.
func (s *stack) prepareMariaDB(ctx context.Context, mariadbd string) error {
	data := filepath.Join(s.dir, "mariadb")
	install, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		return fmt.Errorf("mariadbd without mariadb-install-db: %w", err)
	}
	cmd := exec.CommandContext(ctx, install, "--no-defaults", "--datadir="+data, "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mariadb-install-db: %w\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	s.ownMariaDB = true
	s.mysqlDSN = fmt.Sprintf("root@tcp(127.0.0.1:%d)/smsgw_soak?parseTime=true&loc=UTC", port)
	s.mariadb = &proc{name: "mariadb", path: mariadbd, log: filepath.Join(s.dir, "mariadb.log"), args: []string{
		"--no-defaults", "--datadir=" + data, fmt.Sprintf("--port=%d", port), "--bind-address=127.0.0.1",
		"--socket=" + filepath.Join(s.dir, "mariadb.sock"), "--pid-file=" + filepath.Join(s.dir, "mariadb.pid"),
		"--user=root", "--skip-name-resolve", "--innodb-buffer-pool-size=128M", "--max-connections=500",
	}}
	return nil
}

// mysqlAddrOf is the host:port of a go-sql-driver DSN.
func mysqlAddrOf(dsn string) string {
	_, rest, _ := strings.Cut(dsn, "tcp(")
	addr, _, _ := strings.Cut(rest, ")")
	return addr
}

// roleNames are the roles the soak runs, two replicas each.
var roleNames = []string{"worker", "connector", "api", "smpp", "email"}

// startRoles starts two replicas of each role with the configuration at
// cfgPath, after `smsgw migrate`.
func (s *stack) startRoles(ctx context.Context, cfgPath string) error {
	common := []string{"-config", cfgPath, "-temporal-address", s.temporalAddr,
		"-mongodb-uri", s.mongoURI, "-mongodb-database", "smsgw_soak", "-mysql-dsn", s.mysqlDSN,
		"-log-level", "info", "-failover-after", "10s",
		// Reservations of submissions whose workflow never started (a start
		// a killed replica never answered) are released soon.
		"-reservation-grace", "20s", "-reservation-interval", "2s"}
	migrate := exec.CommandContext(ctx, s.self, append([]string{"migrate"}, common...)...)
	if out, err := migrate.CombinedOutput(); err != nil {
		return fmt.Errorf("smsgw migrate: %w\n%s", err, out)
	}
	topUp := exec.CommandContext(ctx, s.self, "billing", "topup", "-config", cfgPath, "-mysql-dsn", s.mysqlDSN,
		"-customer", "soak", "-amount", "1000000", "-reference", "soak-start")
	if out, err := topUp.CombinedOutput(); err != nil {
		return fmt.Errorf("smsgw billing topup: %w\n%s", err, out)
	}
	metricsFlag := metricsAddrFlag()
	s.roles = map[string][]*role{}
	for _, name := range roleNames {
		for i := 1; i <= 2; i++ {
			r := &role{role: name}
			ports := make([]int, 6)
			for j := range ports {
				p, err := freePort()
				if err != nil {
					return err
				}
				ports[j] = p
			}
			r.http = fmt.Sprintf("127.0.0.1:%d", ports[0])
			r.grpc = fmt.Sprintf("127.0.0.1:%d", ports[1])
			r.smpp = fmt.Sprintf("127.0.0.1:%d", ports[2])
			r.smtp = fmt.Sprintf("127.0.0.1:%d", ports[3])
			args := append([]string{name}, common...)
			args = append(args, "-http-addr", r.http, "-grpc-addr", r.grpc, "-smpp-addr", r.smpp,
				"-smpp-tls-addr", fmt.Sprintf("127.0.0.1:%d", ports[4]), "-smtp-addr", r.smtp)
			r.probes = r.http
			if metricsFlag != "" {
				r.probes = fmt.Sprintf("127.0.0.1:%d", ports[5])
				args = append(args, "-"+metricsFlag, r.probes)
			}
			r.proc = &proc{name: fmt.Sprintf("%s-%d", name, i), path: s.self, args: args,
				log: filepath.Join(s.dir, fmt.Sprintf("%s-%d.log", name, i))}
			s.roles[name] = append(s.roles[name], r)
			if err := r.start(); err != nil {
				return err
			}
		}
	}
	return s.waitRolesReady(ctx, 2*time.Minute)
}

// waitRolesReady waits until every replica answers /readyz.
func (s *stack) waitRolesReady(ctx context.Context, timeout time.Duration) error {
	for _, name := range roleNames {
		for _, r := range s.roles[name] {
			if err := r.waitReady(ctx, timeout); err != nil {
				return err
			}
		}
	}
	return nil
}

// httpStatus GETs url and returns the status code.
func httpStatus(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitReady waits until the replica answers /readyz with 200.
func (r *role) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if !r.running() {
			return fmt.Errorf("%s exited; see %s", r.name, r.log)
		}
		if code, err := httpStatus(ctx, "http://"+r.probes+"/readyz"); err == nil && code == 200 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s; see %s", r.name, timeout, r.log)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// stopAll stops every process: the roles (drained), then the servers.
func (s *stack) stopAll() {
	var wg sync.WaitGroup
	for _, name := range roleNames {
		for _, r := range s.roles[name] {
			wg.Add(1)
			go func() { defer wg.Done(); r.stop(syscall.SIGTERM, 30*time.Second) }()
		}
	}
	wg.Wait()
	for _, p := range []*proc{s.prometheus, s.temporal, s.devdb, s.mariadb} {
		if p != nil {
			p.stop(syscall.SIGTERM, 30*time.Second)
		}
	}
}

// metricsAddrFlag is the flag that sets a serving role's metrics listener
// when it has one of its own; "" when /metrics is served on -http-addr.
func metricsAddrFlag() string {
	var s settings
	fs := flag.NewFlagSet("metrics", flag.ContinueOnError)
	s.register(fs, func(string) string { return "" })
	name := ""
	fs.VisitAll(func(f *flag.Flag) {
		if name == "" && strings.Contains(f.Name, "metrics") && strings.HasSuffix(f.Name, "addr") {
			name = f.Name
		}
	})
	return name
}
