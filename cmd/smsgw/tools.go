package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
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
	mysqlDSN, err := s.reportingDSN()
	if err != nil {
		return err
	}
	reports, err := mysqlstore.Open(ctx, mysqlDSN)
	if err != nil {
		return err
	}
	defer reports.Close()
	logger.Info("reporting database migrated")
	tc, err := s.dialTemporal(ctx, logger)
	if err != nil {
		return err
	}
	defer tc.Close()
	if err := worker.RegisterSearchAttributes(ctx, tc, s.temporalNamespace); err != nil {
		// Temporal Cloud refuses this call from namespace clients: there the
		// attributes are added once with tcld or the Cloud UI.
		logger.Warn("search attributes not registered; add them to the namespace by hand (see docs/operations.md)", "err", err)
		return nil
	}
	logger.Info("search attributes registered", "namespace", s.temporalNamespace)
	return nil
}

// smscSim runs the SMSC simulator: binds, submit_sm, receipts after a delay,
// and on request the faults of real SMSCs.
func smscSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("smsc-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:2776", "listen address")
	systemID := fs.String("system-id", "", "system_id to accept (empty: any)")
	password := fs.String("password", "", "password to accept (empty: any)")
	delay := fs.Duration("receipt-delay", 200*time.Millisecond, "delay before the delivery receipt")
	idFormat := fs.String("id-format", "hex", "message ID format in receipts: hex, decimal, or empty for the submit_sm_resp form")
	throttleEvery := fs.Int("throttle-every", 0, "answer every Nth submit_sm with ESME_RTHROTTLED (0: never)")
	respDelay := fs.Duration("resp-delay", 0, "delay each submit_sm_resp")
	dropAfter := fs.Int("drop-after", 0, "close the connection at the Nth submit_sm without answering it or the ones awaiting a delayed response, once (0: never)")
	receiptFirst := fs.Bool("receipt-before-resp", false, "send each receipt before its submit_sm_resp")
	otherBind := fs.Bool("receipt-other-bind", false, "deliver receipts on another session of the same system_id when there is one")
	duplicates := fs.Bool("duplicate-receipts", false, "deliver every receipt twice")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := smsgw.CheckUpstreamIDFormat(*idFormat); err != nil {
		return fmt.Errorf("-id-format: %w", err)
	}
	if *throttleEvery < 0 || *dropAfter < 0 || *respDelay < 0 || *delay < 0 {
		return errors.New("-throttle-every, -drop-after, -resp-delay and -receipt-delay must not be negative")
	}
	var s settings
	s.logLevel, s.logFormat = "info", "text"
	sim := smpptest.New(smpptest.Config{
		SystemID: *systemID, Password: *password, ReceiptDelay: *delay, IDFormat: *idFormat,
		ThrottleEvery: *throttleEvery, RespDelay: *respDelay, DropAfter: *dropAfter,
		ReceiptBeforeResp: *receiptFirst, ReceiptOtherBind: *otherBind, DuplicateReceipts: *duplicates,
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

// checkConfig loads configuration files the way the gateway does and reports
// every problem, for CI and for operators before they roll out a change.
// With -manifests the files are rendered Kubernetes manifests, and the
// config.yaml of each ConfigMap in them is checked.
func checkConfig(args []string, getenv func(string) string, stdout io.Writer) error {
	manifests := len(args) > 0 && args[0] == "-manifests"
	if manifests {
		args = args[1:]
	}
	if len(args) == 0 {
		return errors.New("usage: smsgw check-config [-manifests] <file>...")
	}
	// Secrets are not at hand here: any ${NAME} stands for a value.
	lookup := func(name string) (string, bool) {
		if v := getenv(name); v != "" {
			return v, true
		}
		return "secret", true
	}
	var failed bool
	report := func(name string, err error) {
		if err != nil {
			failed = true
			fmt.Fprintf(stdout, "%s: %v\n", name, err)
			return
		}
		fmt.Fprintf(stdout, "%s: ok\n", name)
	}
	for _, path := range args {
		raw, err := os.ReadFile(path)
		if err != nil {
			report(path, err)
			continue
		}
		if !manifests {
			_, err = config.Parse(raw, lookup)
			report(path, err)
			continue
		}
		found := 0
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var doc struct {
				Kind     string                `yaml:"kind"`
				Metadata struct{ Name string } `yaml:"metadata"`
				Data     map[string]string     `yaml:"data"`
			}
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				report(path, err)
				break
			}
			if cfg, ok := doc.Data["config.yaml"]; ok && doc.Kind == "ConfigMap" {
				found++
				_, err := config.Parse([]byte(cfg), lookup)
				report(path+": ConfigMap "+doc.Metadata.Name, err)
			}
		}
		if found == 0 {
			report(path, errors.New("no ConfigMap with a config.yaml"))
		}
	}
	if failed {
		return errors.New("configuration refused")
	}
	return nil
}
