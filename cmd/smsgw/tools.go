package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smpptest"
	"github.com/smsgw/smsgw/store/mongostore"
	"github.com/smsgw/smsgw/store/mysqlstore"
	"github.com/smsgw/smsgw/worker"
)

// migrate prepares the databases and Temporal namespace, then exits. Every
// step is idempotent; a Helm hook runs it before each release.
func migrate(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	s.register(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := s.logger(stderr)
	events, err := mongostore.Open(ctx, s.mongoURI, s.mongoDatabase, mongostore.WithLogger(logger))
	if err != nil {
		return err
	}
	defer events.Close(context.WithoutCancel(ctx))
	logger.Info("event store indexes in place")
	reports, err := mysqlstore.Open(ctx, s.mysqlDSN)
	if err != nil {
		return err
	}
	defer reports.Close()
	logger.Info("reporting database migrated")
	tc, err := client.DialContext(ctx, client.Options{HostPort: s.temporalAddress, Namespace: s.temporalNamespace, Logger: tlog.NewStructuredLogger(logger)})
	if err != nil {
		return fmt.Errorf("temporal: %w", err)
	}
	defer tc.Close()
	if err := worker.RegisterSearchAttributes(ctx, tc, s.temporalNamespace); err != nil {
		return err
	}
	logger.Info("search attributes registered", "namespace", s.temporalNamespace)
	return nil
}

// smscSim runs the SMSC simulator: binds, submit_sm, receipts after a delay.
func smscSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("smsc-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:2776", "listen address")
	systemID := fs.String("system-id", "", "system_id to accept (empty: any)")
	password := fs.String("password", "", "password to accept (empty: any)")
	delay := fs.Duration("receipt-delay", 200*time.Millisecond, "delay before the delivery receipt")
	idFormat := fs.String("id-format", "hex", "message ID format: hex or decimal")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var s settings
	s.logLevel, s.logFormat = "info", "text"
	sim := smpptest.New(smpptest.Config{
		SystemID: *systemID, Password: *password, ReceiptDelay: *delay, IDFormat: *idFormat,
		Logger: s.logger(stderr).With("role", "smsc-sim"),
	})
	fmt.Fprintf(stdout, "SMSC simulator listening on %s (receipts after %s)\n", *addr, *delay)
	err := sim.ListenAndServe(ctx, *addr)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// hashKey prints the configuration form of an API key.
func hashKey(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: smsgw hash-key <api key>")
	}
	fmt.Fprintf(stdout, "sha256:%s\n", smsgw.HashAPIKey(args[0]))
	return nil
}
