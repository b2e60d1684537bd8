package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"

	emailingress "github.com/smsgw/smsgw/connectors/email"
)

// startEmail runs the email role: the SMTP ingress on -smtp-addr, where
// mail to <msisdn>@<configured domain> becomes an SMS through the Submitter.
// With -smtp-tls-cert and -smtp-tls-key it offers STARTTLS, and AUTH only
// after it (unless -smtp-insecure-auth).
func (a *app) startEmail() error {
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "localhost"
	}
	opts := emailingress.Options{Hostname: hostname, InsecureAuth: a.settings.smtpInsecureAuth, MaxAuthAttempts: a.settings.smtpMaxAuth}
	if s := a.settings; s.smtpTLSCert != "" || s.smtpTLSKey != "" {
		certs, err := newCertReloader("-smtp-tls-cert", s.smtpTLSCert, "-smtp-tls-key", s.smtpTLSKey, s.smtpTLSReload)
		if err != nil {
			return fmt.Errorf("email TLS: %w", err)
		}
		opts.TLS = &tls.Config{GetCertificate: certs.get, MinVersion: tls.VersionTLS12}
	}
	srv, err := emailingress.New(a.config, a.submitter, opts, a.logger.With("component", "email"), a.registry)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.settings.smtpAddr)
	if err != nil {
		return fmt.Errorf("email: listen: %w", err)
	}
	if len(a.config.Config().Email.Domains) == 0 {
		a.logger.Warn("no email.domains configured: the SMTP ingress refuses every recipient")
	}
	a.logger.Info("SMTP ingress listening", "addr", ln.Addr().String())
	a.spawn("email", func(ctx context.Context) error { return srv.Serve(ctx, ln) })
	return nil
}
