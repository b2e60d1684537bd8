package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppserver"
	"github.com/smsgw/smsgw/lifecycle"
)

// wireSMPP adds the smpp notification channel, which every role with the
// event store has: the worker writes receipts and MO into the outbox. When
// serving is set it also runs the smpp role, the customers' SMSC, which
// drains the outbox to their binds: plain SMPP on -smpp-addr, and SMPP over
// TLS on -smpp-tls-addr when -smpp-tls-cert and -smpp-tls-key are set.
func (a *app) wireSMPP(ctx context.Context, serving bool) error {
	outbox, err := a.events.Outbox(ctx)
	if err != nil {
		return fmt.Errorf("smpp outbox: %w", err)
	}
	channel := &smppserver.Channel{Outbox: outbox, Config: a.config, TTL: a.settings.smppOutboxTTL}
	a.channels[smsgw.ChannelSMPP] = channel
	if !serving {
		return nil
	}

	srv, err := smppserver.New(a.settings.smppEntry, smppserver.Deps{
		Config:     a.config,
		Submitter:  a.submitter,
		Canceller:  a.submitter,
		Replacer:   a.submitter,
		Messages:   &lifecycle.Reader{Reports: a.reports, Temporal: a.temporal},
		Outbox:     outbox,
		Logger:     a.logger,
		Registerer: a.registry,
	})
	if err != nil {
		return err
	}
	channel.Wake = srv.Wake
	channel.Direct = srv
	ln, err := net.Listen("tcp", a.settings.smppAddr)
	if err != nil {
		return fmt.Errorf("smpp: listen: %w", err)
	}
	a.logger.Info("SMPP server listening", "addr", ln.Addr().String(), "replica", srv.ReplicaID())
	a.spawn("smpp", func(ctx context.Context) error { return srv.Serve(ctx, ln) })
	if a.settings.smppTLSCert != "" || a.settings.smppTLSKey != "" {
		certs, err := newCertReloader(a.settings.smppTLSCert, a.settings.smppTLSKey, a.settings.smppTLSReload)
		if err != nil {
			return fmt.Errorf("smpp TLS: %w", err)
		}
		tln, err := net.Listen("tcp", a.settings.smppTLSAddr)
		if err != nil {
			return fmt.Errorf("smpp TLS: listen: %w", err)
		}
		a.logger.Info("SMPP server listening for TLS", "addr", tln.Addr().String())
		tlsLn := tls.NewListener(tln, &tls.Config{GetCertificate: certs.get, MinVersion: tls.VersionTLS12})
		a.spawn("smpp-tls", func(ctx context.Context) error { return srv.Serve(ctx, tlsLn) })
	}
	a.spawn("smpp-outbox", func(ctx context.Context) error { srv.Maintain(ctx, a.settings.smppOutboxSweep); return nil })
	return nil
}

// certReloader serves a certificate and key from files, reading them again
// when they change, so a renewed certificate is used without a restart.
type certReloader struct {
	certFile, keyFile string
	every             time.Duration // how often the files are looked at

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

func newCertReloader(certFile, keyFile string, every time.Duration) (*certReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("-smpp-tls-cert and -smpp-tls-key go together")
	}
	if every <= 0 {
		every = time.Minute
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile, every: every}
	if _, err := r.get(nil); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cert != nil && time.Since(r.checked) < r.every {
		return r.cert, nil
	}
	r.checked = time.Now()
	info, err := os.Stat(r.certFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil
		}
		return nil, err
	}
	if r.cert != nil && info.ModTime().Equal(r.modTime) {
		return r.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil // a half-written renewal: keep the old one
		}
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	r.cert, r.modTime = &cert, info.ModTime()
	return r.cert, nil
}
