package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

// billing runs an operator's billing command against the ledger in the
// reporting database:
//
//	smsgw billing topup -customer acme -amount 25.00 -reference INV-1042
//	smsgw billing balance -customer acme
//	smsgw billing reconcile
//
// The customer's currency is its price list's, from the configuration.
func billing(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: smsgw billing topup|balance|reconcile [flags]")
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("billing "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	s.register(fs, getenv)
	customer := fs.String("customer", "", "customer ID (topup, balance)")
	amount := fs.String("amount", "", "amount to add, a decimal of the customer's currency (topup)")
	reference := fs.String("reference", "", "the operator's reference, an invoice or payment ID: a top-up is applied once per reference (topup)")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	var currency string
	if cmd != "reconcile" {
		cfg, err := config.Load(s.configPath)
		if err != nil {
			return err
		}
		pl, ok := cfg.PriceListFor(*customer)
		if !ok {
			return fmt.Errorf("customer %q is not on a price list in %s", *customer, s.configPath)
		}
		currency = pl.Currency
	}
	dsn, err := s.reportingDSN()
	if err != nil {
		return err
	}
	store, err := mysqlstore.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer store.Close()

	switch cmd {
	case "topup":
		micros, err := smsgw.ParseMicros(*amount)
		if err != nil {
			return fmt.Errorf("-amount: %w", err)
		}
		m, err := store.TopUp(ctx, *customer, currency, *reference, micros, time.Now().UTC())
		if err != nil {
			return err
		}
		if !m.New {
			fmt.Fprintf(stdout, "reference %q was applied before (%s %s at %s): nothing added\n", *reference, smsgw.FormatMicros(m.Amount), m.Currency, m.At.Format(time.RFC3339))
		}
		return printBalance(ctx, store, *customer, currency, stdout)
	case "balance":
		return printBalance(ctx, store, *customer, currency, stdout)
	case "reconcile":
		ds, err := store.Reconcile(ctx)
		if err != nil {
			return err
		}
		for _, d := range ds {
			fmt.Fprintf(stdout, "%s %s: balances row %s held %s, ledger %s held %s\n", d.CustomerID, d.Currency,
				smsgw.FormatMicros(d.Balance.Balance), smsgw.FormatMicros(d.Reserved), smsgw.FormatMicros(d.LedgerBalance), smsgw.FormatMicros(d.LedgerReserved))
		}
		if len(ds) > 0 {
			return fmt.Errorf("%d balances differ from their ledger", len(ds))
		}
		fmt.Fprintln(stdout, "every balance equals the sum of its ledger")
		return nil
	}
	return fmt.Errorf("unknown billing command %q (topup, balance, reconcile)", cmd)
}

func printBalance(ctx context.Context, store *mysqlstore.Store, customer, currency string, stdout io.Writer) error {
	b, err := store.Balance(ctx, customer, currency)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: balance %s %s, reserved %s, available %s\n", customer,
		smsgw.FormatMicros(b.Balance), currency, smsgw.FormatMicros(b.Reserved), smsgw.FormatMicros(b.Available()))
	return nil
}

// operatorKeyHash reads -billing-operator-key into the hash the API
// compares with; "" when top-ups over the API are off.
func operatorKeyHash(key string) (string, error) {
	if key == "" {
		return "", nil
	}
	h, err := config.APIKeyHash(key)
	if err != nil {
		return "", fmt.Errorf("-billing-operator-key: %w", err)
	}
	return h, nil
}
