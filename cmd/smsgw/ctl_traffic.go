package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// The traffic commands of `smsgw ctl`: message search, a message's events,
// usage reports and the erasure of a number. Search, events and usage read
// the customer's own traffic with an API key; with -customer, or with
// only an admin key, they read the operators' routes under /v1/admin/,
// across customers.

var (
	foundColumns = []ctlColumn{{"ID", field("message.id")}, {"CUSTOMER", field("customerId")}, {"STATUS", statusField("message.status")},
		{"FROM", field("message.from")}, {"TO", field("message.to")}, {"CONNECTOR", field("message.connectorId")},
		{"SEGMENTS", field("message.segments")}, {"ENTRY", field("entryPoint")}, {"ACCEPTED", field("message.acceptedAt")}}
	eventColumns = []ctlColumn{{"SEQ", field("seq")}, {"TYPE", field("type")}, {"AT", field("at")}, {"DATA", jsonField("data")}}
	usageColumns = []ctlColumn{{"DAY", field("day")}, {"CUSTOMER", field("customerId")}, {"ENTRY", field("entryPoint")},
		{"CONNECTOR", field("connectorId")}, {"STATUS", statusField("status")}, {"MESSAGES", field("messages")}, {"SEGMENTS", field("segments")},
		{"CURRENCY", field("currency")}, {"COST_MICROS", field("costMicros")}}
	refusalColumns = []ctlColumn{{"DAY", field("day")}, {"CUSTOMER", field("customerId")}, {"REASON", field("reason")}, {"REFUSED", field("refusals")}}
)

// count writes a number of the API's JSON, where 0 is left out.
func count(v any) string {
	if v == nil {
		return "0"
	}
	return cell(v)
}

// statusField writes a status as DELIVERED rather than MESSAGE_STATUS_DELIVERED.
func statusField(path string) func(map[string]any) string {
	get := field(path)
	return func(m map[string]any) string { return strings.TrimPrefix(get(m), "MESSAGE_STATUS_") }
}

// jsonField writes a nested object as compact JSON.
func jsonField(name string) func(map[string]any) string {
	return func(m map[string]any) string {
		if m[name] == nil {
			return ""
		}
		raw, err := json.Marshal(m[name])
		if err != nil {
			return fmt.Sprint(m[name])
		}
		return string(raw)
	}
}

// trafficCall reads a traffic route: the customer's own (path) with an API
// key, the operators' (/v1/admin + path) with -customer or with only an
// admin key.
func (c *ctlClient) trafficCall(path string, customer string) (map[string]any, error) {
	if customer != "" || c.apiKey == "" {
		if c.adminKey == "" {
			return nil, errors.New("no key: set SMSGW_API_KEY (a customer's traffic) or SMSGW_ADMIN_KEY (every customer's)")
		}
		if customer != "" {
			path = withQuery(path, "customerId", customer)
		}
		return c.admin("GET", "/v1/admin"+path, nil)
	}
	return c.customer("GET", "/v1"+path, nil)
}

// withQuery adds one query parameter to a path.
func withQuery(path, name, value string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + name + "=" + url.QueryEscape(value)
}

var searchVerb = ctlVerb{name: "search", summary: "find messages, newest first (-all: every page)",
	flags: func(fs *flag.FlagSet) func() map[string]any {
		q := map[string]*string{
			"status":      fs.String("status", "", "the current status, such as DELIVERED"),
			"to":          fs.String("to", "", "destination, as submitted"),
			"from":        fs.String("from", "", "sender, as submitted"),
			"connectorId": fs.String("connector", "", "the connector that carried it"),
			"clientRef":   fs.String("client-ref", "", "the customer's reference"),
			"since":       fs.String("since", "", "accepted at or after: RFC 3339, or a duration back from now such as 24h"),
			"until":       fs.String("until", "", "accepted before: RFC 3339, or a duration back from now"),
			"pageToken":   fs.String("page-token", "", "continue from this page (as the previous page printed)"),
		}
		size := fs.Int("page-size", 0, "messages a page (default 100, at most 1000)")
		all := fs.Bool("all", false, "every page, not only the first")
		customer := fs.String("customer", "", "this customer's messages (admin key); without it an admin key finds every customer's")
		return func() map[string]any {
			o := map[string]any{"all": *all, "customer": *customer, "pageSize": *size}
			for k, v := range q {
				o[k] = *v
			}
			return o
		}
	},
	run: ctlSearch,
}

func ctlSearch(c *ctlClient, args []string, o map[string]any) error {
	if len(args) != 0 {
		return errors.New("messages search takes flags only, such as -status DELIVERED -to +61412345678")
	}
	query := url.Values{}
	for _, k := range []string{"status", "to", "from", "connectorId", "clientRef", "pageToken"} {
		if v := o[k].(string); v != "" {
			query.Set(k, v)
		}
	}
	for _, k := range []string{"since", "until"} {
		v, err := searchTime(k, o[k].(string), time.Now())
		if err != nil {
			return err
		}
		if v != "" {
			query.Set(k, v)
		}
	}
	if n := o["pageSize"].(int); n != 0 {
		query.Set("pageSize", fmt.Sprint(n))
	}
	return c.pages(query, o["all"] == true, "messages", foundColumns, func(query url.Values) (map[string]any, error) {
		return c.trafficCall("/messages?"+query.Encode(), o["customer"].(string))
	})
}

// pages prints a paged list as one table: its first page, or with all
// every page; key names the list in each answer.
func (c *ctlClient) pages(query url.Values, all bool, key string, cols []ctlColumn, get func(url.Values) (map[string]any, error)) error {
	var found []any
	for {
		out, err := get(query)
		if err != nil {
			return err
		}
		page, _ := out[key].([]any)
		found = append(found, page...)
		next, _ := out["nextPageToken"].(string)
		if next == "" || !all {
			res := map[string]any{key: found}
			if next != "" {
				res["nextPageToken"] = next
			}
			if err := c.table(res, nil, key, cols); err != nil || c.json || next == "" {
				return err
			}
			fmt.Fprintf(c.out, "(more: -page-token %s, or -all)\n", next)
			return nil
		}
		query.Set("pageToken", next)
	}
}

// searchTime is a -since or -until value as the API takes it: RFC 3339 as
// given, or a duration back from now.
func searchTime(name, v string, now time.Time) (string, error) {
	if v == "" {
		return "", nil
	}
	if _, err := time.Parse(time.RFC3339, v); err == nil {
		return v, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return "", fmt.Errorf("-%s %q is neither an RFC 3339 time nor a duration such as 24h", name, v)
	}
	return now.Add(-d).UTC().Format(time.RFC3339), nil
}

var eventsVerb = ctlVerb{name: "events", args: "ID", summary: "a message's events, in order (any customer's with an admin key)",
	run: func(c *ctlClient, args []string, _ map[string]any) error {
		id, err := oneArg(args, "ID")
		if err != nil {
			return err
		}
		out, err := c.trafficCall("/messages/"+url.PathEscape(id)+"/events", "")
		if err != nil || c.json {
			return c.print(out, err)
		}
		if owner, ok := out["customerId"]; ok {
			fmt.Fprintf(c.out, "# customer %v\n", owner)
		}
		return c.table(out, nil, "events", eventColumns)
	}}

var usageVerb = ctlVerb{name: "usage", summary: "messages and segments that reached a final status, by day (default: the last 30 days)",
	flags: func(fs *flag.FlagSet) func() map[string]any {
		from := fs.String("from", "", "the first day, YYYY-MM-DD (default 30 days ago)")
		to := fs.String("to", "", "the day after the last, YYYY-MM-DD (default tomorrow)")
		zone := fs.String("tz", "UTC", "the IANA time zone of the days, such as Europe/Berlin")
		customer := fs.String("customer", "", "this customer's usage (admin key); without it an admin key counts every customer")
		return func() map[string]any {
			return map[string]any{"from": *from, "to": *to, "timeZone": *zone, "customer": *customer}
		}
	},
	run: func(c *ctlClient, args []string, o map[string]any) error {
		if len(args) != 0 {
			return errors.New("usage takes flags only, such as -from 2026-12-01 -to 2027-01-01")
		}
		from, to, err := usageDays(o["from"].(string), o["to"].(string), o["timeZone"].(string), time.Now())
		if err != nil {
			return err
		}
		query := url.Values{"from": {from}, "to": {to}, "timeZone": {o["timeZone"].(string)}}
		out, err := c.trafficCall("/usage?"+query.Encode(), o["customer"].(string))
		if err != nil || c.json {
			return c.print(out, err)
		}
		if err := c.table(out, nil, "rows", usageColumns); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "total: %s messages, %s segments (%s to %s, %s)\n", count(out["totalMessages"]), count(out["totalSegments"]), from, to, o["timeZone"])
		if refusals, _ := out["refusals"].([]any); len(refusals) > 0 {
			fmt.Fprintln(c.out)
			if err := c.table(out, nil, "refusals", refusalColumns); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "total: %s refused submissions\n", count(out["totalRefusals"]))
		}
		return nil
	}}

// usageDays fills in the default days: from 30 days ago to tomorrow, in
// the report's zone (the server checks the zone and the days).
func usageDays(from, to, zone string, now time.Time) (string, string, error) {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return "", "", fmt.Errorf("-tz %q is not an IANA time zone (such as Europe/Berlin)", zone)
	}
	today := now.In(loc)
	if from == "" {
		from = today.AddDate(0, 0, -30).Format(time.DateOnly)
	}
	if to == "" {
		to = today.AddDate(0, 0, 1).Format(time.DateOnly)
	}
	return from, to, nil
}

// eraseTimeout is how long `ctl erase` waits for the answer: the erasure
// waits up to 3 minutes for Temporal's deletions.
const eraseTimeout = 5 * time.Minute

var eraseVerb = ctlVerb{name: "erase", args: "NUMBER", summary: "erase every message to or from a phone number, in every store",
	flags: func(fs *flag.FlagSet) func() map[string]any {
		terminate := fs.Bool("terminate", false, "terminate the number's messages still running, then erase them")
		reason := fs.String("reason", "", "why, for the erasure's audit record (a ticket number, say)")
		return func() map[string]any { return map[string]any{"terminateRunning": *terminate, "reason": *reason} }
	},
	run: func(c *ctlClient, args []string, o map[string]any) error {
		number, err := oneArg(args, "NUMBER")
		if err != nil {
			return err
		}
		o["number"] = number
		// The erasure answers when done, after Temporal has deleted the
		// number's workflow executions: up to minutes.
		c.http.Timeout = eraseTimeout
		out, err := c.admin("POST", "/v1/admin/erasures", o)
		if err != nil || c.json {
			return c.print(out, err)
		}
		fmt.Fprintf(c.out, "erasure %v: %s messages, %s workflow executions deleted (%s terminated first)\n",
			out["id"], count(out["messages"]), count(out["workflows"]), count(out["terminated"]))
		deleted, _ := out["deleted"].(map[string]any)
		for _, k := range sortedKeys(deleted) {
			fmt.Fprintf(c.out, "  %-36s %v\n", k, deleted[k])
		}
		return nil
	}}

// reviewVerb releases or rejects (action; done in the past tense) a held
// message with an admin key.
func reviewVerb(action, done, summary string) ctlVerb {
	return ctlVerb{name: action, args: "ID", summary: summary,
		flags: func(fs *flag.FlagSet) func() map[string]any {
			reason := fs.String("reason", "", "why, for the message's review event")
			return func() map[string]any { return map[string]any{"reason": *reason} }
		},
		run: func(c *ctlClient, args []string, o map[string]any) error {
			id, err := oneArg(args, "ID")
			if err != nil {
				return err
			}
			out, err := c.admin("POST", "/v1/admin/messages/"+url.PathEscape(id)+":"+action, o)
			if err != nil || c.json {
				return c.print(out, err)
			}
			fmt.Fprintf(c.out, "%s %s (customer %v)\n", id, done, out["customerId"])
			return nil
		}}
}

var heldColumns = []ctlColumn{{"ID", field("id")}, {"CUSTOMER", field("customerId")}, {"FROM", field("from")}, {"TO", field("to")},
	{"RULE", field("rule")}, {"HELD", field("heldAt")}, {"TIMEOUT", field("holdUntil")}, {"REASON", field("reason")}}

var heldListVerb = ctlVerb{name: "list", summary: "list the held messages, oldest hold first (-all: every page)",
	flags: func(fs *flag.FlagSet) func() map[string]any {
		customer := fs.String("customer", "", "only this customer's")
		size := fs.Int("page-size", 0, "messages a page (default 100, at most 1000)")
		token := fs.String("page-token", "", "continue from this page (as the previous page printed)")
		all := fs.Bool("all", false, "every page, not only the first")
		return func() map[string]any {
			return map[string]any{"customer": *customer, "pageSize": *size, "pageToken": *token, "all": *all}
		}
	},
	run: func(c *ctlClient, args []string, o map[string]any) error {
		if len(args) != 0 {
			return errors.New("held list takes flags only, such as -customer shop")
		}
		query := url.Values{}
		if v := o["customer"].(string); v != "" {
			query.Set("customerId", v)
		}
		if v := o["pageToken"].(string); v != "" {
			query.Set("pageToken", v)
		}
		if n := o["pageSize"].(int); n != 0 {
			query.Set("pageSize", fmt.Sprint(n))
		}
		return c.pages(query, o["all"] == true, "messages", heldColumns, func(query url.Values) (map[string]any, error) {
			return c.admin("GET", "/v1/admin/held-messages?"+query.Encode(), nil)
		})
	}}
