package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppserver"
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
		Messages:   a.reader,
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
		certs, err := newCertReloader("-smpp-tls-cert", a.settings.smppTLSCert, "-smpp-tls-key", a.settings.smppTLSKey, a.settings.smppTLSReload)
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
