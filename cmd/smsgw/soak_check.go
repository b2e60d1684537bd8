package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smpptest"
	"github.com/smsgw/smsgw/segment"
)

// The checker reads what happened, from every side, and judges each
// message: the simulators' submit_sm (by destination: every message has
// its own), the customer's webhooks and deliver_sm, the gateway's API, the
// event store and the reporting database.

// verdict is the checker's finding on one accepted message.
type verdict struct {
	submission
	Final       string         `json:"final"`       // status the API gives at the end
	ErrorCode   string         `json:"errorCode"`   // from the reporting row
	Deliveries  map[string]int `json:"deliveries"`  // submit_sm upstream accepted or left in doubt, by part ("A/1")
	Sent        map[int]int    `json:"sent"`        // the same summed over carriers, by part
	Resubmitted int            `json:"resubmitted"` // parts sent again while in doubt, as the sent events record
	Resends     int            `json:"resends"`     // whole resends on another connector, as the rerouted events record
	Unexplained int            `json:"unexplained"` // part submissions beyond the first and the recorded resends
	Webhooks    int            `json:"webhooks"`    // final-status webhooks received
	WebhookDups int            `json:"webhookDups"`
	DeliverSM   int            `json:"deliverSm"` // final receipts on the receiver binds (SMPP submissions)
	DeliverDups int            `json:"deliverSmDups"`
	NoEvents    bool           `json:"noEvents"` // accepted or final event missing from the event store
	NoRow       bool           `json:"noRow"`    // reporting row missing or not final
	Problems    []string       `json:"problems,omitempty"`
}

// figures are the run's totals, the ones the report shows.
type figures struct {
	Attempts, Accepted, Refused, Rejected, Unknown, Unsent int
	UnknownStarted                                         int // unanswered submissions that made a message anyway
	Lost                                                   int // accepted, not final
	Final                                                  map[string]int
	PartsSentTwice, Unexplained, Resubmitted, Resends      int
	MissingWebhook, WebhookDups                            int
	MissingDeliverSM, DeliverSMDups                        int
	MissingStores                                          int
	RefusedStarted                                         int
	MOOffered, MOTaken, MOLost, MODups, MOReoffered        int
	ByEntry                                                map[string]int
	WebhookRefusals, BadSignatures                         int
	Settled, Released                                      int // accepted messages whose reservation was settled, released
	LedgerProblems                                         int // a message not reserved and closed once, or balances that do not add up
	BalanceProblem                                         string
}

// pass says whether the run holds the gateway's promises.
func (f figures) pass() bool {
	return f.Lost == 0 && f.Unexplained == 0 && f.MissingStores == 0 && f.RefusedStarted == 0 &&
		f.MissingWebhook == 0 && f.MissingDeliverSM == 0 && f.MOLost == 0 && f.LedgerProblems == 0
}

// checker holds what it reads from.
type checker struct {
	st     *stack
	ledger *ledger
	cust   *customer
	sims   map[string]*smpptest.SMSC // by carrier
	events *mongo.Collection         // the event store's events
	db     *sql.DB                   // the reporting database
}

// storedEvents reads the customer's events the checker looks at, by
// message, in one pass: a query per message costs a scan each on the
// MongoDB-wire development server.
func (c *checker) storedEvents(ctx context.Context) (map[string][]smsgw.Event, error) {
	cur, err := c.events.Find(ctx, bson.D{
		{Key: "customerId", Value: "soak"},
		{Key: "type", Value: bson.D{{Key: "$in", Value: bson.A{smsgw.EventAccepted, smsgw.EventFinal, smsgw.EventSent, smsgw.EventRerouted}}}},
	})
	if err != nil {
		return nil, fmt.Errorf("event store: %w", err)
	}
	defer cur.Close(ctx)
	out := map[string][]smsgw.Event{}
	for cur.Next(ctx) {
		var e smsgw.Event
		if err := cur.Decode(&e); err != nil {
			return nil, fmt.Errorf("event store: %w", err)
		}
		out[e.MessageID] = append(out[e.MessageID], e)
	}
	return out, cur.Err()
}

// ledgerMoves reads the customer's billing ledger: for each message (its
// entry key), how many movements of each kind it has. The ledger's unique
// (entry, step) lets no step count twice; what is checked here is that
// every accepted message was reserved and closed.
func (c *checker) ledgerMoves(ctx context.Context) (map[string]map[string]int, error) {
	rows, err := c.db.QueryContext(ctx, "SELECT entry_key, kind, COUNT(*) FROM billing_ledger WHERE customer_id = ? GROUP BY entry_key, kind", "soak")
	if err != nil {
		return nil, fmt.Errorf("billing ledger: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]int{}
	for rows.Next() {
		var key, kind string
		var n int
		if err := rows.Scan(&key, &kind, &n); err != nil {
			return nil, fmt.Errorf("billing ledger: %w", err)
		}
		if out[key] == nil {
			out[key] = map[string]int{}
		}
		out[key][kind] = n
	}
	return out, rows.Err()
}

// awaitBalance waits until nothing is held on the customer's balance (every
// reservation settled or released: those of submissions whose workflow
// never started go after the reconciler's grace) and reports whether the
// balance and the held amount equal the sums of the ledger.
func (c *checker) awaitBalance(ctx context.Context, deadline time.Time) (problem string, err error) {
	for {
		var balance, held, ledgerBalance, ledgerHeld int64
		err := c.db.QueryRowContext(ctx, `SELECT b.balance_micros, b.reserved_micros,
			(SELECT COALESCE(SUM(amount_micros), 0) FROM billing_ledger l WHERE l.customer_id = b.customer_id AND l.currency = b.currency),
			(SELECT COALESCE(SUM(reserved_micros), 0) FROM billing_ledger l WHERE l.customer_id = b.customer_id AND l.currency = b.currency)
			FROM billing_balances b WHERE b.customer_id = ?`, "soak").Scan(&balance, &held, &ledgerBalance, &ledgerHeld)
		if err != nil {
			return "", fmt.Errorf("billing balance: %w", err)
		}
		switch {
		case balance != ledgerBalance || held != ledgerHeld:
			return fmt.Sprintf("balance %s held %s, the ledger adds up to %s held %s", smsgw.FormatMicros(balance), smsgw.FormatMicros(held),
				smsgw.FormatMicros(ledgerBalance), smsgw.FormatMicros(ledgerHeld)), nil
		case held == 0:
			return "", nil
		case time.Now().After(deadline):
			return fmt.Sprintf("%s still held at the end", smsgw.FormatMicros(held)), nil
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return "", err
		}
	}
}

// storedRow is what the checker reads of a reporting row.
type storedRow struct{ status, errorCode string }

// storedRows reads the customer's reporting rows in one query.
func (c *checker) storedRows(ctx context.Context) (map[string]storedRow, error) {
	rows, err := c.db.QueryContext(ctx, "SELECT id, status, error_code FROM messages WHERE customer_id = ?", "soak")
	if err != nil {
		return nil, fmt.Errorf("reporting database: %w", err)
	}
	defer rows.Close()
	out := map[string]storedRow{}
	for rows.Next() {
		var id string
		var r storedRow
		if err := rows.Scan(&id, &r.status, &r.errorCode); err != nil {
			return nil, fmt.Errorf("reporting database: %w", err)
		}
		out[id] = r
	}
	return out, rows.Err()
}

// apiStatus reads a message's status from the API, through any api replica.
func (c *checker) apiStatus(ctx context.Context, id string) (string, error) {
	var lastErr error
	for _, r := range c.st.roles["api"] {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+r.http+"/v1/messages/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+soakAPIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			lastErr = fmt.Errorf("HTTP %d %s", resp.StatusCode, raw)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return "", err
		}
		if inner, ok := m["message"].(map[string]any); ok {
			m = inner
		}
		return strings.TrimPrefix(fmt.Sprint(m["status"]), "MESSAGE_STATUS_"), nil
	}
	return "", lastErr
}

// finalStatuses are the statuses a message ends in.
var finalStatuses = []string{"DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED", "FAILED", "CANCELLED"}

// awaitFinal waits until every accepted message is final, or until deadline.
func (c *checker) awaitFinal(ctx context.Context, deadline time.Time, logf func(string, ...any)) {
	pending := map[string]bool{}
	for _, s := range c.ledger.submissions() {
		if s.Outcome == outcomeAccepted {
			pending[s.ID] = true
		}
	}
	for len(pending) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		for id := range pending {
			if st, err := c.apiStatus(ctx, id); err == nil && slices.Contains(finalStatuses, st) {
				delete(pending, id)
			}
		}
		if len(pending) > 0 {
			logf("waiting for %d messages to be final", len(pending))
			_ = sleepCtx(ctx, 10*time.Second)
		}
	}
}

// partOf finds the part a submit_sm carried: its UDH or SAR sequence, else 1.
func partOf(s smpptest.Submitted) int {
	if s.SAR != nil {
		return int(s.SAR.Seq)
	}
	if s.ESMClass&0x40 != 0 {
		if u, _, err := segment.ParseUDH(s.ShortMessage); err == nil && u.Concat != nil {
			return u.Concat.Seq
		}
	}
	return 1
}

// check judges every message and returns the verdicts and the figures.
func (c *checker) check(ctx context.Context) ([]verdict, figures, error) {
	// Upstream, by destination: what each carrier got, per part.
	type delivery struct {
		carrier string
		part    int
	}
	byDest := map[string][]delivery{}
	for carrier, sim := range c.sims {
		for _, s := range sim.Submits() {
			if s.Status != 0 {
				continue // refused upstream: it reached no handset
			}
			byDest["+"+s.DestAddr] = append(byDest["+"+s.DestAddr], delivery{carrier, partOf(s)})
		}
	}
	stored, err := c.storedEvents(ctx)
	if err != nil {
		return nil, figures{}, err
	}
	rows, err := c.storedRows(ctx)
	if err != nil {
		return nil, figures{}, err
	}
	moves, err := c.ledgerMoves(ctx)
	if err != nil {
		return nil, figures{}, err
	}
	c.cust.mu.Lock()
	defer c.cust.mu.Unlock()

	f := figures{Final: map[string]int{}, ByEntry: map[string]int{}, WebhookRefusals: c.cust.refused, BadSignatures: c.cust.badSigs}
	var out []verdict
	for _, s := range c.ledger.submissions() {
		f.Attempts++
		f.ByEntry[s.Entry+" "+s.Outcome]++
		switch s.Outcome {
		case outcomeRefused, outcomeRejected:
			if s.Outcome == outcomeRefused {
				f.Refused++
			} else {
				f.Rejected++
			}
			started, err := c.startedAnyway(ctx, s.Dest, len(byDest[s.Dest]) > 0)
			if err != nil {
				return nil, f, err
			}
			if started {
				f.RefusedStarted++
				out = append(out, verdict{submission: s, Problems: []string{"refused (" + s.Detail + ") but a message was started"}})
			}
			continue
		case outcomeUnknown:
			f.Unknown++
			if started, err := c.startedAnyway(ctx, s.Dest, len(byDest[s.Dest]) > 0); err != nil {
				return nil, f, err
			} else if started {
				f.UnknownStarted++
			}
			continue
		case outcomeUnsent:
			f.Unsent++
			continue
		}
		f.Accepted++
		v := verdict{submission: s, Deliveries: map[string]int{}, Sent: map[int]int{}}
		st, err := c.apiStatus(ctx, s.ID)
		if err != nil {
			v.Problems = append(v.Problems, "API: "+err.Error())
		}
		v.Final = st
		if !slices.Contains(finalStatuses, st) {
			f.Lost++
			v.Problems = append(v.Problems, "not final: "+st)
		}
		m := moves[s.ID]
		switch {
		case m[smsgw.MoveReserve] != 1 || m[smsgw.MoveSettle]+m[smsgw.MoveRelease] != 1:
			f.LedgerProblems++
			v.Problems = append(v.Problems, fmt.Sprintf("ledger: %v, want one reservation and one settlement or release", m))
		case st == string(smsgw.StatusDelivered) && m[smsgw.MoveSettle] != 1:
			f.LedgerProblems++
			v.Problems = append(v.Problems, fmt.Sprintf("ledger: delivered but %v", m))
		case m[smsgw.MoveSettle] == 1:
			f.Settled++
		default:
			f.Released++
		}
		f.Final[st]++

		// The stores: the acceptance and the end in the event store, a
		// final row in the reporting database.
		has := map[string]bool{}
		resubmitted := map[int]int{}
		for _, e := range stored[s.ID] {
			has[e.Type] = true
			switch e.Type {
			case smsgw.EventSent:
				// Stored as BSON and read back as whatever array type the
				// driver picks: JSON gives it one form.
				var parts []int
				if raw, err := json.Marshal(e.Data["resubmitted"]); err == nil {
					_ = json.Unmarshal(raw, &parts)
				}
				for _, p := range parts {
					resubmitted[p]++
					v.Resubmitted++
				}
			case smsgw.EventRerouted:
				if e.Data["resend"] == true {
					v.Resends++
				}
			}
		}
		if !has[smsgw.EventAccepted] || !has[smsgw.EventFinal] {
			v.NoEvents = true
			v.Problems = append(v.Problems, fmt.Sprintf("event store: accepted %v, final %v", has[smsgw.EventAccepted], has[smsgw.EventFinal]))
		}
		row, ok := rows[s.ID]
		switch {
		case !ok:
			v.NoRow = true
			v.Problems = append(v.Problems, "no reporting row")
		case !smsgw.Status(row.status).Final():
			v.NoRow = true
			v.Problems = append(v.Problems, "reporting row not final: "+row.status)
		}
		v.ErrorCode = row.errorCode
		if v.NoEvents || v.NoRow {
			f.MissingStores++
		}

		// Upstream: each part once, unless a resend was recorded.
		for _, d := range byDest[s.Dest] {
			v.Deliveries[fmt.Sprintf("%s/%d", d.carrier, d.part)]++
			v.Sent[d.part]++
		}
		for part, n := range v.Sent {
			if n > 1 {
				f.PartsSentTwice += n - 1
			}
			if extra := n - 1 - resubmitted[part] - v.Resends; extra > 0 {
				v.Unexplained += extra
			}
		}
		f.Unexplained += v.Unexplained
		f.Resubmitted += v.Resubmitted
		f.Resends += v.Resends
		if v.Unexplained > 0 {
			v.Problems = append(v.Problems, fmt.Sprintf("%d part submissions upstream that no recorded resend explains: %v", v.Unexplained, v.Deliveries))
		}

		// The customer's channels: the final status on the webhook, and on
		// the receiver binds for an SMPP submission that asked for receipts.
		if slices.Contains(finalStatuses, st) {
			seen := map[note]int{}
			for _, n := range c.cust.webhooks[s.ID] {
				if n.Status == st {
					v.Webhooks++
				}
				seen[n]++
			}
			for _, k := range seen {
				v.WebhookDups += k - 1
			}
			if v.Webhooks == 0 {
				f.MissingWebhook++
				v.Problems = append(v.Problems, "no "+st+" webhook")
			}
			f.WebhookDups += v.WebhookDups
			if s.Entry == "smpp" {
				stats := map[string]int{}
				for _, stat := range c.cust.deliverSM[s.ID] {
					stats[stat]++
				}
				for _, k := range stats {
					v.DeliverSM++
					v.DeliverDups += k - 1
				}
				if v.DeliverSM == 0 {
					f.MissingDeliverSM++
					v.Problems = append(v.Problems, "no receipt deliver_sm")
				}
				f.DeliverSMDups += v.DeliverDups
			}
		}
		out = append(out, v)
	}

	// MO: every one the gateway answered ESME_ROK reaches the customer once.
	c.ledger.mu.Lock()
	for _, mo := range c.ledger.mos {
		f.MOOffered++
		if mo.Offers > 1 {
			f.MOReoffered++
		}
		ids := map[string]bool{}
		for _, id := range c.cust.inbound[mo.Text] {
			ids[id] = true
		}
		if mo.Taken {
			f.MOTaken++
			if len(ids) == 0 {
				f.MOLost++
			}
		}
		if len(ids) > 1 {
			f.MODups += len(ids) - 1
		}
	}
	c.ledger.mu.Unlock()
	return out, f, nil
}

// startedAnyway tells whether a submission the customer was not told was
// accepted made a message: the carriers got something for its destination,
// or the reporting database has a row for it.
func (c *checker) startedAnyway(ctx context.Context, dest string, upstream bool) (bool, error) {
	if upstream {
		return true, nil
	}
	var n int
	if err := c.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM messages WHERE dst = ?", dest).Scan(&n); err != nil {
		return false, fmt.Errorf("reporting database: %w", err)
	}
	return n > 0, nil
}

// faultRecord is one fault of the schedule as it happened.
type faultRecord struct {
	At     time.Duration // since the load began
	What   string
	Took   time.Duration // to stop, or how long it lasted
	Detail string

	started time.Time // when it began, while it runs
}

// report writes the run's report in Markdown: the figures, the final
// statuses, the faults with their times, and the messages with problems.
func report(w io.Writer, p soakProfile, started time.Time, faults []faultRecord, f figures, vs []verdict, mysqlOwn bool) {
	fmt.Fprintf(w, "## Soak run %s (profile %s)\n\n", started.UTC().Format(time.RFC3339), p.name)
	verdict := "PASS"
	if !f.pass() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "Result: **%s**. Load %.1f submissions/s for %s over REST, gRPC, SMPP and email (in turn), MO every %s; validity %s.\n\n",
		verdict, p.rate, p.load, p.moEvery, p.validity)
	if p.measured != "" {
		fmt.Fprintf(w, "The rate is %s.\n\n", p.measured)
	}
	row := func(name string, v any, want string) { fmt.Fprintf(w, "| %s | %v | %s |\n", name, v, want) }
	fmt.Fprintf(w, "| figure | value | must be |\n|---|---|---|\n")
	row("submissions attempted", f.Attempts, "")
	row("accepted (202, submit_sm_resp OK, SMTP 250)", f.Accepted, "")
	row("refused (429/503, ESME_RTHROTTLED/RSYSERR/RMSGQFUL, SMTP 451)", f.Refused, "")
	row("rejected (4xx, other command_status, SMTP 5xx)", f.Rejected, "")
	row("unanswered (timeout, connection lost): may or may not exist", f.Unknown, "")
	row("… of which a message exists", f.UnknownStarted, "")
	row("not sent (no connection to the replica)", f.Unsent, "")
	row("**lost** (accepted, not final at the end)", f.Lost, "0")
	row("**part submissions upstream beyond the first**", f.PartsSentTwice, "")
	row("… explained by recorded resends (in-doubt resubmits, whole resends)", f.PartsSentTwice-f.Unexplained, "")
	row("… **not explained**", f.Unexplained, "0")
	row("parts resubmitted in doubt (recorded)", f.Resubmitted, "")
	row("whole resends on failover (recorded)", f.Resends, "")
	row("prepaid reservations settled / released", fmt.Sprintf("%d / %d", f.Settled, f.Released), "")
	row("**ledger problems** (a message not reserved and closed once; balance not the ledger's sum; still held)", f.LedgerProblems, "0")
	if f.BalanceProblem != "" {
		row("… the balance", f.BalanceProblem, "")
	}
	row("**final status missing on the webhook**", f.MissingWebhook, "0")
	row("duplicate webhooks (same messageId and seq)", f.WebhookDups, "goal 0")
	row("**final receipt missing on the SMPP receiver binds** (SMPP submissions)", f.MissingDeliverSM, "0")
	row("duplicate receipt deliver_sm", f.DeliverSMDups, "goal 0")
	row("**accepted but missing from the event store or the reporting database**", f.MissingStores, "0")
	row("**refused or rejected, yet a message was started**", f.RefusedStarted, "0")
	row("MO offered / answered ESME_ROK / offered more than once", fmt.Sprintf("%d / %d / %d", f.MOOffered, f.MOTaken, f.MOReoffered), "")
	row("**MO answered but not delivered**", f.MOLost, "0")
	row("MO delivered more than once", f.MODups, "goal 0")
	row("webhook calls answered 500 (the endpoint-down fault) / bad signatures", fmt.Sprintf("%d / %d", f.WebhookRefusals, f.BadSignatures), "")
	fmt.Fprintln(w)

	fmt.Fprintf(w, "Final statuses of the accepted messages:\n\n")
	countTable(w, "status", "messages", f.Final)
	codes := map[string]int{}
	for _, v := range vs {
		if v.Final != "" && v.Final != "DELIVERED" {
			codes[v.Final+" "+v.ErrorCode]++
		}
	}
	if len(codes) > 0 {
		fmt.Fprintln(w)
		countTable(w, "not delivered: status and error code", "messages", codes)
	}
	fmt.Fprintf(w, "\nSubmissions by entry point and outcome:\n\n")
	countTable(w, "entry point and outcome", "submissions", f.ByEntry)
	fmt.Fprintf(w, "\nFaults (time since the load began):\n\n| at | fault | took | detail |\n|---|---|---|---|\n")
	for _, fr := range faults {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", fr.At.Round(time.Second), fr.What, fr.Took.Round(100*time.Millisecond), fr.Detail)
	}
	if !mysqlOwn {
		fmt.Fprintf(w, "\nMariaDB was the machine's own server, not restarted (no mariadbd to run one for the soak).\n")
	}
	problems := 0
	for _, v := range vs {
		if len(v.Problems) > 0 {
			if problems == 0 {
				fmt.Fprintf(w, "\nMessages with problems:\n\n| # | entry | message | final | problems |\n|---|---|---|---|---|\n")
			}
			problems++
			if problems <= 50 {
				fmt.Fprintf(w, "| %d | %s | %s | %s | %s |\n", v.N, v.Entry, v.ID, v.Final, strings.Join(v.Problems, "; "))
			}
		}
	}
	if problems > 50 {
		fmt.Fprintf(w, "\n… and %d more (messages.jsonl has all).\n", problems-50)
	}
}

// countTable writes counts as a Markdown table, in the order of their keys.
func countTable(w io.Writer, what, counted string, counts map[string]int) {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "| %s | %s |\n|---|---|\n", what, counted)
	for _, k := range keys {
		fmt.Fprintf(w, "| %s | %d |\n", k, counts[k])
	}
}

// writeRecords keeps the raw material of the check in the run's directory:
// every verdict, every submit_sm the carriers got, and the customer's side.
func writeRecords(dir string, vs []verdict, sims map[string]*smpptest.SMSC, l *ledger) error {
	write := func(name string, items func(enc *json.Encoder) error) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		defer f.Close()
		return items(json.NewEncoder(f))
	}
	if err := write("messages.jsonl", func(enc *json.Encoder) error {
		for _, v := range vs {
			if err := enc.Encode(v); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	for carrier, sim := range sims {
		if err := write("submits-"+carrier+".jsonl", func(enc *json.Encoder) error {
			for _, s := range sim.Submits() {
				if err := enc.Encode(s); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return write("submissions.jsonl", func(enc *json.Encoder) error {
		for _, s := range l.submissions() {
			if err := enc.Encode(s); err != nil {
				return err
			}
		}
		return nil
	})
}
