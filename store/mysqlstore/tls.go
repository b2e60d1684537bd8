package mysqlstore

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/go-sql-driver/mysql"
)

// WithTLSCA returns dsn made to connect over TLS, verifying the server's
// certificate against the CA certificates in the PEM file caFile (for
// example Amazon RDS's global-bundle.pem) and its name against the DSN's
// host. Whatever tls= the DSN had is replaced. The TLS configuration is
// registered with the driver under a name derived from the CA and the host,
// which the returned DSN carries as its tls= parameter.
func WithTLSCA(dsn, caFile string) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("mysqlstore: dsn: %w", err)
	}
	if cfg.Net != "tcp" {
		return "", fmt.Errorf("mysqlstore: a TLS CA needs a tcp address in the DSN, not %q", cfg.Net)
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		host = cfg.Addr // no port: the driver adds 3306
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return "", fmt.Errorf("mysqlstore: TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return "", errors.New("mysqlstore: TLS CA " + caFile + " holds no PEM certificate")
	}
	sum := sha256.Sum256(append(append(pem, 0), host...))
	name := "smsgw-" + hex.EncodeToString(sum[:8])
	if err := mysql.RegisterTLSConfig(name, &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
		return "", fmt.Errorf("mysqlstore: register TLS configuration: %w", err)
	}
	cfg.TLSConfig = name
	cfg.TLS = nil
	return cfg.FormatDSN(), nil
}
