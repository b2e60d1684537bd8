package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/api"
	"github.com/smsgw/smsgw/lifecycle"
	"github.com/smsgw/smsgw/notify/email"
	"github.com/smsgw/smsgw/store/mongostore"
	"github.com/smsgw/smsgw/workflows"
)

// wireInbound prepares notifications by email, inbound messages and failed
// notifications for every role: the email channel (it refuses, to be
// redelivered later, while no smtp relay is configured, so a relay added by a
// configuration reload needs no restart) and the event store's indexes.
func (a *app) wireInbound(ctx context.Context) error {
	a.channels[smsgw.ChannelEmail] = email.New(a.config, email.Options{})
	if err := a.events.CreateInboundIndexes(ctx); err != nil {
		return err
	}
	return nil
}

// registerInbound adds the inbound, reassembly and redelivery workflows and
// the inbound activities to the message worker, before it starts.
func (a *app) registerInbound(w workflows.Registry) error {
	acts, err := activities.NewInbound(a.config, a.events, a.events, a.logger, a.registry)
	if err != nil {
		return err
	}
	acts.OptOuts = a.optOutKeywords
	workflows.RegisterInbound(w, acts)
	return nil
}

// inboundAPI serves InboundService and NotificationService.
func (a *app) inboundAPI() *api.InboundDeps {
	return &api.InboundDeps{
		Inbound:     a.events,
		Failed:      a.events,
		Redeliverer: &lifecycle.Redeliverer{Temporal: a.temporal, Failed: a.events, Config: a.config},
	}
}

// inboundList is the operator's view of inbound messages: by default those
// no customer owns (they are kept, never dropped, until a number is
// configured for them), or one customer's.
func inboundList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inbound", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	s.register(fs, getenv)
	unrouted := fs.Bool("unrouted", false, "list the messages no customer owns (the default when -customer is not given)")
	customer := fs.String("customer", "", "list this customer's messages instead")
	since := fs.Duration("since", 7*24*time.Hour, "only messages received within this long")
	limit := fs.Int("n", 50, "at most this many messages (newest first)")
	asJSON := fs.Bool("json", false, "print JSON lines instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *unrouted && *customer != "" {
		return fmt.Errorf("-unrouted and -customer exclude each other")
	}
	store, err := mongostore.Open(ctx, s.mongoURI, s.mongoDatabase, mongostore.WithLogger(s.logger(stderr)))
	if err != nil {
		return err
	}
	defer store.Close(context.WithoutCancel(ctx))
	page, err := store.ListInbound(ctx, smsgw.InboundQuery{
		CustomerID: *customer, Since: time.Now().Add(-*since), PageSize: *limit,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, m := range page.Messages {
			if err := enc.Encode(m); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVED\tID\tCONNECTOR\tFROM\tTO\tSTATUS\tTEXT")
	for _, m := range page.Messages {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ReceivedAt.UTC().Format(time.RFC3339), m.ID, m.Connector,
			m.From, m.To, m.Status, excerpt(m.Text, 40))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.NextPageToken != "" {
		fmt.Fprintf(stdout, "(more: raise -n)\n")
	}
	return nil
}

// excerpt is the start of a text on one line.
func excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
