package mysqlstore_test

import (
	"database/sql"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/smsgw/smsgw/internal/testenv"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

// The gateway reaches a MariaDB that requires TLS, verifying its
// certificate against the CA file it is given: with the right CA it
// connects and migrates over TLS; with another CA, or without TLS, it does
// not connect at all. The server is a MariaDB of the test's own, started
// from the installed binaries in a temporary directory with a self-signed
// certificate (the shared test server at 127.0.0.1:3306 has no TLS).
func TestOpenVerifiesTheServerAgainstTheCA(t *testing.T) {
	dir := t.TempDir()
	cert := testenv.SelfSignedCert(t, "localhost")
	caFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "key.pem")
	testenv.WritePEM(t, cert, caFile, keyFile)
	addr := startTLSMariaDB(t, dir, caFile, keyFile)

	// The database to migrate, created over a verified connection.
	admin, err := mysqlstore.WithTLSCA("root@tcp("+addr+")/", caFile)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx(t), "CREATE DATABASE smsgw"); err != nil {
		t.Fatalf("create the database over TLS: %v", err)
	}
	var name, cipher string
	if err := db.QueryRowContext(ctx(t), "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil || cipher == "" {
		t.Fatalf("the connection is not encrypted: cipher %q, %v", cipher, err)
	}

	dsn := "root@tcp(" + addr + ")/smsgw?parseTime=true&loc=UTC&tls=skip-verify"
	verified, err := mysqlstore.WithTLSCA(dsn, caFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mysqlstore.Open(ctx(t), verified)
	if err != nil {
		t.Fatalf("Open with the server's CA: %v", err)
	}
	s.Close()

	// Another CA: the server's certificate is not trusted.
	otherCA := filepath.Join(dir, "other-ca.pem")
	testenv.WritePEM(t, testenv.SelfSignedCert(t, "localhost"), otherCA, filepath.Join(dir, "other-key.pem"))
	untrusted, err := mysqlstore.WithTLSCA(dsn, otherCA)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := mysqlstore.Open(ctx(t), untrusted); err == nil {
		s.Close()
		t.Error("Open trusted a server whose certificate the CA did not sign")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Open with another CA: %v, want a certificate error", err)
	}

	// No TLS: the server requires it.
	if s, err := mysqlstore.Open(ctx(t), "root@tcp("+addr+")/smsgw?parseTime=true"); err == nil {
		s.Close()
		t.Error("Open connected without TLS to a server that requires it")
	}
}

func TestWithTLSCARewritesTheDSN(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	testenv.WritePEM(t, testenv.SelfSignedCert(t), caFile, filepath.Join(dir, "key.pem"))
	out, err := mysqlstore.WithTLSCA("smsgw:pw@tcp(db.example.com:3306)/smsgw?parseTime=true&tls=skip-verify", caFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := mysql.ParseDSN(out)
	if err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if !strings.HasPrefix(cfg.TLSConfig, "smsgw-") || cfg.TLS == nil || cfg.TLS.InsecureSkipVerify || cfg.TLS.ServerName != "db.example.com" ||
		cfg.TLS.RootCAs == nil || cfg.DBName != "smsgw" || cfg.User != "smsgw" || cfg.Passwd != "pw" || !cfg.ParseTime || strings.Contains(out, "skip-verify") {
		t.Errorf("DSN %s: tls %q %+v", out, cfg.TLSConfig, cfg.TLS)
	}

	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dsn, ca, want string }{
		{"u@tcp(h:3306)/d", filepath.Join(dir, "missing.pem"), "no such file"},
		{"u@tcp(h:3306)/d", notPEM, "no PEM certificate"},
		{"u@unix(/run/mysqld.sock)/d", caFile, "tcp address"},
	} {
		if _, err := mysqlstore.WithTLSCA(c.dsn, c.ca); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s with %s: %v, want %q", c.dsn, c.ca, err, c.want)
		}
	}
}

// startTLSMariaDB runs a MariaDB server of the test's own on a loopback
// port, requiring TLS with the given certificate, and returns its address.
func startTLSMariaDB(t *testing.T, dir, certFile, keyFile string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a MariaDB server")
	}
	server, err1 := lookPath("mariadbd", "mysqld")
	install, err2 := lookPath("mariadb-install-db", "mysql_install_db")
	if err1 != nil || err2 != nil {
		t.Skip("no MariaDB server binaries installed (mariadbd, mariadb-install-db)")
	}
	data := filepath.Join(dir, "data")
	var asRoot []string
	if os.Geteuid() == 0 {
		asRoot = []string{"--user=root"}
	}
	cmd := exec.Command(install, append([]string{"--no-defaults", "--datadir=" + data, "--skip-test-db", "--auth-root-authentication-method=normal"}, asRoot...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	logFile := filepath.Join(dir, "mariadb.log")
	srv := exec.Command(server, append([]string{"--no-defaults", "--datadir=" + data, "--socket=" + filepath.Join(dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(dir, "mysqld.pid"), "--bind-address=127.0.0.1", "--port=" + port,
		"--ssl-cert=" + certFile, "--ssl-key=" + keyFile, "--require-secure-transport=ON",
		"--innodb-buffer-pool-size=16M", "--skip-log-bin", "--log-error=" + logFile}, asRoot...)...)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = srv.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logFile)
			t.Fatalf("MariaDB did not listen on %s within 60s: %v\n%s", addr, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lookPath(names ...string) (string, error) {
	var err error
	for _, n := range names {
		for _, p := range []string{n, "/usr/sbin/" + n, "/usr/local/sbin/" + n} {
			var path string
			if path, err = exec.LookPath(p); err == nil {
				return path, nil
			}
		}
	}
	return "", err
}
