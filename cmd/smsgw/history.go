package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/erasure"
	"github.com/smsgw/smsgw/importer"
	"github.com/smsgw/smsgw/retention"
	"github.com/smsgw/smsgw/store/mongostore"
	"github.com/smsgw/smsgw/store/mysqlstore"
)

// importHistory is `smsgw import`: another gateway's message history into
// the event store and the reporting database (docs/import.md).
func importHistory(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	s.register(fs, getenv)
	sqlboxDSN := fs.String("sqlbox-dsn", "", "Kannel sqlbox database to import from (go-sql-driver DSN, such as kannel:pw@tcp(host:3306)/kannel)")
	sqlboxTable := fs.String("sqlbox-table", "sent_sms", "sqlbox's log table")
	jsonl := fs.String("jsonl", "", "JSON-lines file to import from instead (docs/import.md has the format)")
	source := fs.String("source", "", "name of the source, part of every message ID and of the checkpoint (default kannel, or jsonl)")
	customer := fs.String("customer", "", "customer every account maps to (or use -customer-map)")
	customerMap := fs.String("customer-map", "", "file of \"account customer\" lines; an account \"*\" maps the accounts not listed")
	follow := fs.Bool("follow", false, "keep importing new records until stopped (cutover from a gateway still running)")
	poll := fs.Duration("poll", 2*time.Second, "with -follow, how often to look for new records")
	batch := fs.Int("batch", 500, "records per batch (the checkpoint is saved after each)")
	restart := fs.Bool("restart", false, "ignore the checkpoint and read the source from the start (what is imported already stays as it is)")
	progress := fs.String("progress", "auto", "progress display: bar, lines or auto (a bar on a terminal)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if (*sqlboxDSN == "") == (*jsonl == "") {
		return errors.New("give one source: -sqlbox-dsn or -jsonl")
	}
	mapping, err := customerMapping(*customer, *customerMap)
	if err != nil {
		return err
	}
	if err := checkMappedCustomers(s.configPath, mapping, stderr); err != nil {
		return err
	}
	logger := s.logger(stderr)

	var src importer.Source
	if *sqlboxDSN != "" {
		sb, err := importer.OpenSQLBox(ctx, *sqlboxDSN, *sqlboxTable, *source)
		if err != nil {
			return err
		}
		defer sb.Close()
		src = sb
		missing, err := sb.UnindexedColumns(ctx)
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			fmt.Fprintf(stderr, "smsgw import: %s has no index on %s: matching each message's DLRs reads the whole table; on a large table add one first (ALTER TABLE %s ADD INDEX (%s), on a copy if the old gateway must not be touched)\n",
				sb.Table(), strings.Join(missing, ", "), sb.Table(), strings.Join(missing, "), ADD INDEX ("))
		}
	} else {
		jl, err := importer.OpenJSONLines(*jsonl, *source)
		if err != nil {
			return err
		}
		defer jl.Close()
		src = jl
	}
	events, reports, closeStores, err := s.openStores(ctx, logger)
	if err != nil {
		return err
	}
	defer closeStores()

	show := newProgressDisplay(*progress, stderr)
	started := time.Now()
	sum, err := importer.Run(ctx, src, sink{events, reports}, events, importer.Options{
		Customer: mapping.lookup, Restart: *restart, Follow: *follow, PollInterval: *poll, BatchSize: *batch,
		Progress: show.update,
	})
	show.done()
	elapsed := time.Since(started)
	records := sum.Imported + sum.Updated + sum.SkippedTotal() + sum.RefusedTotal()
	fmt.Fprintf(stdout, "source %s: imported %d messages, updated %d from delivery reports, skipped %d, refused %d; checkpoint %d\n",
		src.Name(), sum.Imported, sum.Updated, sum.SkippedTotal(), sum.RefusedTotal(), sum.Position)
	fmt.Fprintf(stdout, "  %d records in %s (%.0f a second)\n", records, elapsed.Round(time.Millisecond), float64(records)/max(elapsed.Seconds(), 0.001))
	for _, r := range importer.Reasons(sum.Skipped) {
		fmt.Fprintf(stdout, "  skipped: %s\n", r)
	}
	for _, r := range importer.Reasons(sum.Refused) {
		fmt.Fprintf(stdout, "  refused: %s\n", r)
	}
	if err != nil && errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted; run it again to resume after %d: %w", sum.Position, err)
	}
	return err
}

// sink writes imported messages to both stores.
type sink struct {
	events  *mongostore.Store
	reports *mysqlstore.Store
}

func (s sink) AppendEvents(ctx context.Context, evs ...smsgw.Event) error {
	return s.events.AppendEvents(ctx, evs...)
}

func (s sink) UpsertMessage(ctx context.Context, r smsgw.MessageRecord) error {
	return s.reports.UpsertMessage(ctx, r)
}

// mapping maps source accounts to customers.
type mapping struct {
	all      string            // -customer: every account
	accounts map[string]string // -customer-map
}

func (m mapping) lookup(account string) (string, bool) {
	if m.all != "" {
		return m.all, true
	}
	if c, ok := m.accounts[account]; ok {
		return c, true
	}
	c, ok := m.accounts["*"]
	return c, ok
}

func (m mapping) customers() []string {
	if m.all != "" {
		return []string{m.all}
	}
	var out []string
	for _, c := range m.accounts {
		out = append(out, c)
	}
	return out
}

// customerMapping reads -customer or -customer-map.
func customerMapping(all, path string) (mapping, error) {
	switch {
	case all != "" && path != "":
		return mapping{}, errors.New("-customer and -customer-map exclude each other")
	case all != "":
		return mapping{all: all}, nil
	case path == "":
		return mapping{}, errors.New("say which customer the messages belong to: -customer or -customer-map")
	}
	f, err := os.Open(path)
	if err != nil {
		return mapping{}, fmt.Errorf("-customer-map: %w", err)
	}
	defer f.Close()
	m := mapping{accounts: map[string]string{}}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(strings.Replace(line, "=", " ", 1))
		if len(fields) != 2 {
			return mapping{}, fmt.Errorf("-customer-map %s line %d: want \"account customer\"", path, n)
		}
		if _, dup := m.accounts[fields[0]]; dup {
			return mapping{}, fmt.Errorf("-customer-map %s line %d: account %q is mapped twice", path, n, fields[0])
		}
		m.accounts[fields[0]] = fields[1]
	}
	if err := sc.Err(); err != nil {
		return mapping{}, fmt.Errorf("-customer-map: %w", err)
	}
	if len(m.accounts) == 0 {
		return mapping{}, fmt.Errorf("-customer-map %s maps no account", path)
	}
	return m, nil
}

// checkMappedCustomers refuses a mapping to a customer the configuration
// does not have, when the configuration file is there to ask.
func checkMappedCustomers(path string, m mapping, stderr io.Writer) error {
	cfg, err := config.Load(path)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stderr, "smsgw import: no configuration at %s; the customers mapped to are not checked\n", path)
		return nil
	}
	if err != nil {
		return err
	}
	for _, c := range m.customers() {
		if _, ok := cfg.Customer(c); !ok {
			return fmt.Errorf("customer %q is not in %s", c, path)
		}
	}
	return nil
}

// progressDisplay shows an import's progress: a bar redrawn in place on a
// terminal, else a line every few seconds.
type progressDisplay struct {
	w        io.Writer
	bar      bool
	last     time.Time
	lastLine importer.Progress
	drawn    bool
}

func newProgressDisplay(mode string, w io.Writer) *progressDisplay {
	bar := mode == "bar"
	if mode == "auto" {
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				bar = true
			}
		}
	}
	return &progressDisplay{w: w, bar: bar}
}

func (d *progressDisplay) update(p importer.Progress) {
	d.lastLine = p
	if d.bar {
		const width = 30
		filled := width
		if p.Total > 0 {
			filled = int(int64(width) * p.Done / p.Total)
		}
		fmt.Fprintf(d.w, "\r[%s%s] %d/%d  imported %d  updated %d  skipped %d  refused %d ",
			strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.Done, p.Total,
			p.Imported, p.Updated, p.SkippedTotal(), p.RefusedTotal())
		d.drawn = true
		return
	}
	if time.Since(d.last) < 2*time.Second {
		return
	}
	d.last = time.Now()
	d.line(p)
}

func (d *progressDisplay) line(p importer.Progress) {
	fmt.Fprintf(d.w, "progress: %d of %d records, imported %d, updated %d, skipped %d, refused %d, at %d\n",
		p.Done, p.Total, p.Imported, p.Updated, p.SkippedTotal(), p.RefusedTotal(), p.Position)
}

func (d *progressDisplay) done() {
	if d.bar && d.drawn {
		fmt.Fprintln(d.w)
		return
	}
	if !d.bar && d.lastLine.Done > 0 {
		d.line(d.lastLine)
	}
}

// erase is `smsgw erase <number>`: every message to or from the number
// leaves the stores and Temporal (docs/retention.md).
func erase(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("erase", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	s.register(fs, getenv)
	terminate := fs.Bool("terminate", false, "terminate the number's messages still in flight, then erase them (without it, they are a refusal)")
	by := fs.String("requested-by", "", "who asked for the erasure, for the audit record")
	reason := fs.String("reason", "", "why, for the audit record (a ticket number, say)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: smsgw erase [flags] <phone number>")
	}
	logger := s.logger(stderr)
	events, reports, closeStores, err := s.openStores(ctx, logger)
	if err != nil {
		return err
	}
	defer closeStores()
	tc, err := s.dialTemporal(ctx, logger)
	if err != nil {
		return err
	}
	defer tc.Close()
	e := &erasure.Eraser{Reports: reports, Events: events, Temporal: tc, Namespace: s.temporalNamespace, Logger: logger}
	rep, err := e.Erase(ctx, fs.Arg(0), erasure.Options{TerminateRunning: *terminate, RequestedBy: *by, Reason: *reason})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprintf(stdout, "erasure %s: %d messages, %d workflow executions deleted (%d terminated first)\n",
		rep.ID, rep.Messages, rep.Workflows, rep.Terminated)
	for _, k := range sortedKeys(rep.Deleted) {
		fmt.Fprintf(stdout, "  %-36s %d\n", k, rep.Deleted[k])
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// retentionPurger is the worker role's purge of messages past their
// customer's retention (docs/retention.md).
func retentionPurger(live *config.Live, events *mongostore.Store, reports *mysqlstore.Store, batch int, reg prometheus.Registerer, logger *slog.Logger) (*retention.Purger, error) {
	p, err := retention.NewPurger([]retention.Target{
		{Name: "events", Customers: events.HistoryCustomers, Purge: events.PurgeHistory},
		{Name: "reporting", Customers: reports.ReportCustomers, Purge: reports.PurgeMessages},
	}, func(customerID string) (time.Duration, bool) { return live.Config().RetentionFor(customerID) }, reg, logger.With("component", "retention"))
	if err != nil {
		return nil, err
	}
	p.Batch = batch
	return p, nil
}

// apiEraser serves the admin API's erasures (POST /v1/admin/erasures) with
// an erasure.Eraser, in the api process.
type apiEraser struct{ *erasure.Eraser }

func (e apiEraser) EraseNumber(ctx context.Context, number string, terminateRunning bool, requestedBy, reason string) (smsgw.ErasureRecord, error) {
	rep, err := e.Erase(ctx, number, erasure.Options{TerminateRunning: terminateRunning, RequestedBy: requestedBy, Reason: reason})
	if err != nil {
		return smsgw.ErasureRecord{}, err
	}
	return smsgw.ErasureRecord{
		ID: rep.ID, NumberHash: rep.NumberHash, Messages: rep.Messages, Workflows: rep.Workflows,
		Terminated: rep.Terminated, Deleted: rep.Deleted,
	}, nil
}
