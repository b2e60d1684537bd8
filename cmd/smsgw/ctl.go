package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"
)

// `smsgw ctl` is a command line over the admin API and the customer API
// (REST). Its commands are grouped by what they act on: `smsgw ctl
// <group> <verb> [flags] [args]`. A new group is one more entry in
// ctlGroups; a new verb one more entry in its group.

// ctlVerb is one command of a group.
type ctlVerb struct {
	name    string
	args    string // the positional arguments, for the usage
	summary string
	// flags adds the verb's own flags; nil for none.
	flags func(fs *flag.FlagSet) func() map[string]any
	run   func(c *ctlClient, args []string, opts map[string]any) error
}

// ctlGroup is a group of commands.
type ctlGroup struct {
	name    string
	summary string
	verbs   []ctlVerb
}

// ctlShortcuts are verbs that are also commands of their own: `smsgw ctl
// usage` is `smsgw ctl traffic usage`.
var ctlShortcuts = map[string]string{
	"export": "config export",
	"import": "config import",
	"usage":  "traffic usage",
	"erase":  "numbers erase",
}

// ctlGroups are the commands of `smsgw ctl`, in the order of its usage.
var ctlGroups []ctlGroup

func init() {
	ctlGroups = []ctlGroup{
		resourceGroup("customers", "customer", "/v1/admin/customers", "customer", "customers", customerColumns,
			ctlVerb{name: "disable", args: "ID", summary: "refuse the customer's keys, binds and email", run: func(c *ctlClient, args []string, _ map[string]any) error {
				id, err := oneArg(args, "ID")
				if err != nil {
					return err
				}
				out, err := c.admin("POST", "/v1/admin/customers/"+url.PathEscape(id)+":disable", map[string]any{})
				return c.show(out, err, "customer", customerColumns)
			}},
			ctlVerb{name: "enable", args: "ID", summary: "let a disabled customer in again", run: func(c *ctlClient, args []string, _ map[string]any) error {
				id, err := oneArg(args, "ID")
				if err != nil {
					return err
				}
				out, err := c.admin("PATCH", "/v1/admin/customers/"+url.PathEscape(id), map[string]any{"disabled": false})
				return c.show(out, err, "customer", customerColumns)
			}},
		),
		{name: "keys", summary: "customers' API keys", verbs: []ctlVerb{
			{name: "create", args: "CUSTOMER", summary: "make an API key (shown this once)", run: func(c *ctlClient, args []string, _ map[string]any) error {
				id, err := oneArg(args, "CUSTOMER")
				if err != nil {
					return err
				}
				out, err := c.admin("POST", "/v1/admin/customers/"+url.PathEscape(id)+"/keys", map[string]any{})
				if err != nil || c.json {
					return c.print(out, err)
				}
				k, _ := out["apiKey"].(map[string]any)
				fmt.Fprintf(c.out, "key: %s\nid: %v\n(the key is shown this once: only its hash is kept)\n", out["key"], k["id"])
				return nil
			}},
			{name: "list", args: "CUSTOMER", summary: "list a customer's keys: ID, prefix, creation time", run: func(c *ctlClient, args []string, _ map[string]any) error {
				id, err := oneArg(args, "CUSTOMER")
				if err != nil {
					return err
				}
				out, err := c.admin("GET", "/v1/admin/customers/"+url.PathEscape(id)+"/keys", nil)
				return c.table(out, err, "apiKeys", keyColumns)
			}},
			{name: "revoke", args: "CUSTOMER KEY-ID", summary: "revoke a key (refused everywhere within 5 s)", run: func(c *ctlClient, args []string, _ map[string]any) error {
				if len(args) != 2 {
					return errors.New("usage: keys revoke CUSTOMER KEY-ID")
				}
				out, err := c.admin("DELETE", "/v1/admin/customers/"+url.PathEscape(args[0])+"/keys/"+url.PathEscape(args[1]), nil)
				return c.done(out, err, "revoked")
			}},
		}},
		resourceGroup("connectors", "connector", "/v1/admin/connectors", "connector", "connectors", connectorColumns),
		resourceGroup("routes", "route", "/v1/admin/routes", "route", "routes", routeColumns),
		pricesGroup(),
		{name: "audit", summary: "the configuration's changes", verbs: []ctlVerb{
			{name: "list", summary: "list changes, newest first",
				flags: func(fs *flag.FlagSet) func() map[string]any {
					before := fs.Int64("before", 0, "only changes before this version")
					limit := fs.Int("limit", 20, "at most this many")
					return func() map[string]any { return map[string]any{"before": *before, "limit": *limit} }
				},
				run: func(c *ctlClient, _ []string, o map[string]any) error {
					out, err := c.admin("GET", fmt.Sprintf("/v1/admin/audit?beforeVersion=%d&pageSize=%d", o["before"], o["limit"]), nil)
					return c.table(out, err, "entries", auditColumns)
				}},
		}},
		{name: "config", summary: "the whole configuration", verbs: []ctlVerb{
			{name: "export", summary: "print the configuration in force as YAML", run: ctlExport},
			{name: "import", args: "FILE", summary: "apply a configuration file as one change",
				flags: func(fs *flag.FlagSet) func() map[string]any {
					dry := fs.Bool("dry-run", false, "print the differences and change nothing")
					expected := fs.Int64("expected-version", 0, "refuse unless the configuration is at this version")
					return func() map[string]any { return map[string]any{"dryRun": *dry, "expectedVersion": *expected} }
				},
				run: ctlImport},
		}},
		{name: "messages", summary: "messages: a customer's with its API key; search and events also any customer's with an admin key", verbs: []ctlVerb{
			{name: "get", args: "ID", summary: "a message and its status", run: func(c *ctlClient, args []string, _ map[string]any) error {
				id, err := oneArg(args, "ID")
				if err != nil {
					return err
				}
				out, err := c.customer("GET", "/v1/messages/"+url.PathEscape(id), nil)
				return c.print(out, err)
			}},
			{name: "submit", summary: "submit a message",
				flags: func(fs *flag.FlagSet) func() map[string]any {
					from := fs.String("from", "", "source address")
					to := fs.String("to", "", "destination (E.164)")
					text := fs.String("text", "", "the text")
					key := fs.String("idempotency-key", "", "the request's idempotency key")
					return func() map[string]any {
						return map[string]any{"from": *from, "to": *to, "text": *text, "idempotencyKey": *key}
					}
				},
				run: func(c *ctlClient, _ []string, o map[string]any) error {
					if o["idempotencyKey"] == "" {
						delete(o, "idempotencyKey")
					}
					out, err := c.customer("POST", "/v1/messages", o)
					return c.print(out, err)
				}},
			{name: "cancel", args: "ID", summary: "withdraw a message not yet sent", run: func(c *ctlClient, args []string, _ map[string]any) error {
				id, err := oneArg(args, "ID")
				if err != nil {
					return err
				}
				out, err := c.customer("POST", "/v1/messages/"+url.PathEscape(id)+":cancel", map[string]any{})
				return c.done(out, err, "cancelled")
			}},
			searchVerb,
			eventsVerb,
		}},
		{name: "traffic", summary: "usage reports (a customer's with an API key, every customer's with an admin key)", verbs: []ctlVerb{usageVerb}},
		{name: "numbers", summary: "phone numbers", verbs: []ctlVerb{eraseVerb}},
		{name: "held", summary: "messages a rule held for review, of any customer", verbs: []ctlVerb{heldListVerb,
			reviewVerb("release", "released", "let a held message go on to be sent"),
			reviewVerb("reject", "rejected", "end a held message as REJECTED")}},
	}
}

// A column of a table: its heading and how to write it from an item.
type ctlColumn struct {
	head string
	get  func(m map[string]any) string
}

func field(path string) func(map[string]any) string {
	return func(m map[string]any) string {
		var v any = m
		for _, p := range strings.Split(path, ".") {
			mm, ok := v.(map[string]any)
			if !ok {
				return ""
			}
			v = mm[p]
		}
		return cell(v)
	}
}

// cell writes a value in a table cell: lists joined with commas.
func cell(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			if m, ok := e.(map[string]any); ok {
				parts[i] = cell(firstOf(m, "id", "number", "name"))
				if kw, ok := m["keyword"]; ok {
					parts[i] += " " + cell(kw)
				}
				continue
			}
			parts[i] = cell(e)
		}
		return strings.Join(parts, ",")
	case float64:
		return fmt.Sprint(v)
	}
	return fmt.Sprint(v)
}

func firstOf(m map[string]any, keys ...string) any {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v
		}
	}
	return nil
}

var (
	customerColumns = []ctlColumn{{"ID", field("id")}, {"NAME", field("name")}, {"DISABLED", field("disabled")},
		{"TPS", field("tps")}, {"MAXBACKLOG", field("maxBacklog")}, {"SMPP", field("smpp.systemId")},
		{"CHANNELS", field("notify.channels")}, {"SENDERS", field("allowedSenders")}, {"NUMBERS", field("numbers")}}
	connectorColumns = []ctlColumn{{"ID", field("id")}, {"ADDRESS", field("address")}, {"SYSTEMID", field("systemId")},
		{"BINDMODE", field("bindMode")}, {"BINDS", field("binds")}, {"TPS", field("tps")}}
	routeColumns = []ctlColumn{{"NAME", field("name")}, {"PREFIXES", field("prefixes")}, {"CONNECTORS", field("connectors")},
		{"CUSTOMERS", field("customers")}, {"GROUPS", field("groups")}}
	keyColumns   = []ctlColumn{{"ID", field("id")}, {"PREFIX", field("prefix")}, {"CREATED", field("createTime")}}
	auditColumns = []ctlColumn{{"VERSION", field("version")}, {"TIME", field("time")}, {"WHO", field("who")},
		{"ACTION", field("action")}, {"CHANGES", field("changes")}}
)

var priceColumns = []ctlColumn{{"ID", field("id")}, {"CURRENCY", field("currency")}, {"CUSTOMERS", field("customers")},
	{"GROUPS", field("groups")}, {"DEFAULT", field("default")}, {"RATES", rateCells}}

// rateCells writes a price list's rates as prefix=price, with their
// times when they have any.
func rateCells(m map[string]any) string {
	rates, _ := m["rates"].([]any)
	parts := make([]string, 0, len(rates))
	for _, r := range rates {
		rate, _ := r.(map[string]any)
		p := cell(rate["prefix"]) + "=" + cell(rate["price"])
		if from, ok := rate["from"]; ok {
			p += " from " + cell(from)
		}
		if until, ok := rate["until"]; ok {
			p += " until " + cell(until)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ",")
}

// pricesGroup lists, reads, puts (creates or replaces whole) and deletes
// price lists.
func pricesGroup() ctlGroup {
	const path = "/v1/admin/price-lists"
	g := resourceGroup("prices", "price list", path, "priceList", "priceLists", priceColumns)
	var verbs []ctlVerb
	for _, v := range g.verbs {
		switch v.name {
		case "list", "get", "delete":
			verbs = append(verbs, v)
		}
	}
	put := ctlVerb{name: "put", args: "ID [SPEC]", summary: "create a price list or replace it whole (SPEC: its fields as JSON or YAML, or -f FILE)",
		flags: func(fs *flag.FlagSet) func() map[string]any {
			file := fs.String("f", "", "read the price list from this file (JSON or YAML; - for stdin)")
			expected := fs.Int64("expected-version", 0, "refuse unless the configuration is at this version")
			return func() map[string]any { return map[string]any{"file": *file, "expectedVersion": *expected} }
		},
		run: func(c *ctlClient, args []string, o map[string]any) error {
			if len(args) < 1 || args[0] == "" {
				return errors.New("usage: prices put ID [SPEC]")
			}
			spec, err := readSpec(args[1:], o["file"].(string))
			if err != nil {
				return err
			}
			p := path + "/" + url.PathEscape(args[0])
			if v, _ := o["expectedVersion"].(int64); v != 0 {
				p = fmt.Sprintf("%s?expectedVersion=%d", p, v)
			}
			out, err := c.admin("PUT", p, spec)
			return c.show(out, err, "priceList", priceColumns)
		}}
	g.verbs = append(verbs[:2:2], append([]ctlVerb{put}, verbs[2:]...)...)
	g.summary = "price lists (docs/billing.md)"
	return g
}

// resourceGroup is the list, get, create, update and delete of a kind of
// the configuration, and more verbs.
func resourceGroup(group, kind, path, one, many string, cols []ctlColumn, more ...ctlVerb) ctlGroup {
	specFlags := func(fs *flag.FlagSet) func() map[string]any {
		file := fs.String("f", "", "read the "+kind+" from this file (JSON or YAML; - for stdin)")
		expected := fs.Int64("expected-version", 0, "refuse unless the configuration is at this version")
		return func() map[string]any { return map[string]any{"file": *file, "expectedVersion": *expected} }
	}
	withVersion := func(p string, o map[string]any) string {
		if v, _ := o["expectedVersion"].(int64); v != 0 {
			return fmt.Sprintf("%s?expectedVersion=%d", p, v)
		}
		return p
	}
	verbs := []ctlVerb{
		{name: "list", summary: "list the " + group, run: func(c *ctlClient, _ []string, _ map[string]any) error {
			out, err := c.admin("GET", path, nil)
			return c.table(out, err, many, cols)
		}},
		{name: "get", args: "ID", summary: "one " + kind, run: func(c *ctlClient, args []string, _ map[string]any) error {
			id, err := oneArg(args, "ID")
			if err != nil {
				return err
			}
			out, err := c.admin("GET", path+"/"+url.PathEscape(id), nil)
			return c.show(out, err, one, cols)
		}},
		{name: "create", args: "[SPEC]", summary: "add a " + kind + " (SPEC: its fields as JSON or YAML, or -f FILE)", flags: specFlags,
			run: func(c *ctlClient, args []string, o map[string]any) error {
				spec, err := readSpec(args, o["file"].(string))
				if err != nil {
					return err
				}
				out, err := c.admin("POST", withVersion(path, o), spec)
				return c.show(out, err, one, cols)
			}},
		{name: "update", args: "ID [PATCH]", summary: "change a " + kind + " (PATCH: the fields to change; null removes one)", flags: specFlags,
			run: func(c *ctlClient, args []string, o map[string]any) error {
				if len(args) < 1 {
					return errors.New("usage: " + group + " update ID [PATCH]")
				}
				spec, err := readSpec(args[1:], o["file"].(string))
				if err != nil {
					return err
				}
				out, err := c.admin("PATCH", withVersion(path+"/"+url.PathEscape(args[0]), o), spec)
				return c.show(out, err, one, cols)
			}},
	}
	if kind != "customer" {
		verbs = append(verbs, ctlVerb{name: "delete", args: "ID", summary: "remove a " + kind,
			flags: specFlags,
			run: func(c *ctlClient, args []string, o map[string]any) error {
				id, err := oneArg(args, "ID")
				if err != nil {
					return err
				}
				out, err := c.admin("DELETE", withVersion(path+"/"+url.PathEscape(id), o), nil)
				return c.done(out, err, "deleted")
			}})
	}
	return ctlGroup{name: group, summary: "the configuration's " + group, verbs: append(verbs, more...)}
}

// readSpec reads a resource from the arguments or a file, as JSON or YAML.
func readSpec(args []string, file string) (map[string]any, error) {
	var raw []byte
	switch {
	case file == "-":
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return nil, err
		}
		raw = b
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		raw = b
	case len(args) == 1:
		raw = []byte(args[0])
	default:
		return nil, errors.New("give the fields as one argument (JSON or YAML) or with -f FILE")
	}
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("the fields are not a JSON or YAML object: %w", err)
	}
	if m == nil {
		return nil, errors.New("the fields are empty")
	}
	return m, nil
}

func oneArg(args []string, name string) (string, error) {
	if len(args) != 1 || args[0] == "" {
		return "", fmt.Errorf("expected one argument: %s", name)
	}
	return args[0], nil
}

func ctlExport(c *ctlClient, _ []string, _ map[string]any) error {
	out, err := c.admin("GET", "/v1/admin/config", nil)
	if err != nil || c.json {
		return c.print(out, err)
	}
	fmt.Fprintf(c.out, "# configuration version %v\n%s", out["version"], out["yaml"])
	return nil
}

func ctlImport(c *ctlClient, args []string, o map[string]any) error {
	file, err := oneArg(args, "FILE")
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	out, err := c.admin("POST", "/v1/admin/config:import", map[string]any{
		"yaml": string(raw), "dryRun": o["dryRun"], "expectedVersion": fmt.Sprint(o["expectedVersion"]),
	})
	if err != nil || c.json {
		return c.print(out, err)
	}
	changes, _ := out["changes"].([]any)
	for _, ch := range changes {
		fmt.Fprintln(c.out, ch)
	}
	switch {
	case len(changes) == 0:
		fmt.Fprintf(c.out, "no differences (version %v)\n", out["version"])
	case o["dryRun"] == true:
		fmt.Fprintf(c.out, "(dry run: nothing changed; the configuration is at version %v)\n", out["version"])
	default:
		fmt.Fprintf(c.out, "imported as version %v\n", out["version"])
	}
	return nil
}

// ctlClient calls the gateway's REST API.
type ctlClient struct {
	addr, adminKey, apiKey string
	json                   bool
	out                    io.Writer
	http                   *http.Client
}

func (c *ctlClient) admin(method, path string, body any) (map[string]any, error) {
	if c.adminKey == "" {
		return nil, errors.New("no admin key: set SMSGW_ADMIN_KEY or -admin-key")
	}
	return c.call(method, path, c.adminKey, body)
}

func (c *ctlClient) customer(method, path string, body any) (map[string]any, error) {
	if c.apiKey == "" {
		return nil, errors.New("no API key: set SMSGW_API_KEY or -api-key")
	}
	return c.call(method, path, c.apiKey, body)
}

// call makes one request; an answer other than 2xx is an error with the
// server's reason.
func (c *ctlClient) call(method, path, key string, body any) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, strings.TrimSuffix(c.addr, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode/100 != 2 {
		reason := strings.TrimSpace(string(raw))
		if msg, ok := out["message"].(string); ok {
			reason = msg
		}
		return nil, fmt.Errorf("HTTP %d %s: %s", resp.StatusCode, http.StatusText(resp.StatusCode), reason)
	}
	if out == nil {
		out = map[string]any{}
	}
	return out, nil
}

// print writes an answer as JSON, or for people as YAML.
func (c *ctlClient) print(v any, err error) error {
	if err != nil {
		return err
	}
	if c.json {
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	raw, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = c.out.Write(raw)
	return err
}

// show writes one resource of an answer, with its version.
func (c *ctlClient) show(out map[string]any, err error, one string, _ []ctlColumn) error {
	if err != nil || c.json {
		return c.print(out, err)
	}
	fmt.Fprintf(c.out, "# configuration version %v\n", out["version"])
	return c.print(out[one], nil)
}

// done reports a change that returns only the new version.
func (c *ctlClient) done(out map[string]any, err error, what string) error {
	if err != nil || c.json {
		return c.print(out, err)
	}
	if v, ok := out["version"]; ok {
		fmt.Fprintf(c.out, "%s (configuration version %v)\n", what, v)
	} else {
		fmt.Fprintln(c.out, what)
	}
	return nil
}

// table writes the items of an answer as a table.
func (c *ctlClient) table(out map[string]any, err error, items string, cols []ctlColumn) error {
	if err != nil || c.json {
		return c.print(out, err)
	}
	tw := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
	heads := make([]string, len(cols))
	for i, col := range cols {
		heads[i] = col.head
	}
	fmt.Fprintln(tw, strings.Join(heads, "\t"))
	list, _ := out[items].([]any)
	for _, it := range list {
		m, _ := it.(map[string]any)
		row := make([]string, len(cols))
		for i, col := range cols {
			row[i] = strings.ReplaceAll(col.get(m), "\n", " ")
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// ctlFlags are the flags every command takes, before or after its name.
type ctlFlags struct {
	addr, adminKey, apiKey, output string
}

func (f *ctlFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "addr", f.addr, "the gateway's REST address (env SMSGW_ADDR)")
	fs.StringVar(&f.adminKey, "admin-key", f.adminKey, "an admin API key (env SMSGW_ADMIN_KEY)")
	fs.StringVar(&f.apiKey, "api-key", f.apiKey, "a customer's API key, for messages (env SMSGW_API_KEY)")
	fs.StringVar(&f.output, "o", f.output, `output: "table" for people, "json" for scripts`)
}

// ctl runs `smsgw ctl`.
func ctl(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := ctlFlags{addr: getenv("SMSGW_ADDR"), adminKey: getenv("SMSGW_ADMIN_KEY"), apiKey: getenv("SMSGW_API_KEY"), output: "table"}
	if f.addr == "" {
		f.addr = "http://127.0.0.1:8080"
	}
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.register(fs)
	fs.Usage = func() { ctlUsage(stderr, fs) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		ctlUsage(stderr, fs)
		return errors.New("no command")
	}
	// Some verbs are also commands of their own.
	if full, ok := ctlShortcuts[rest[0]]; ok {
		rest = append(strings.Fields(full), rest[1:]...)
	}
	var group *ctlGroup
	for i := range ctlGroups {
		if ctlGroups[i].name == rest[0] {
			group = &ctlGroups[i]
		}
	}
	if group == nil {
		ctlUsage(stderr, fs)
		return fmt.Errorf("unknown command %q", rest[0])
	}
	if len(rest) < 2 {
		return fmt.Errorf("%s: which? %s", group.name, verbNames(group))
	}
	var verb *ctlVerb
	for i := range group.verbs {
		if group.verbs[i].name == rest[1] {
			verb = &group.verbs[i]
		}
	}
	if verb == nil {
		return fmt.Errorf("%s: unknown command %q: %s", group.name, rest[1], verbNames(group))
	}
	vfs := flag.NewFlagSet(group.name+" "+verb.name, flag.ContinueOnError)
	vfs.SetOutput(stderr)
	f.register(vfs)
	opts := func() map[string]any { return map[string]any{} }
	if verb.flags != nil {
		opts = verb.flags(vfs)
	}
	if err := vfs.Parse(interleaved(vfs, rest[2:])); err != nil {
		return err
	}
	if f.output != "table" && f.output != "json" {
		return fmt.Errorf(`-o must be "table" or "json", not %q`, f.output)
	}
	c := &ctlClient{addr: f.addr, adminKey: f.adminKey, apiKey: f.apiKey, json: f.output == "json", out: stdout,
		http: &http.Client{Timeout: 30 * time.Second}}
	return verb.run(c, vfs.Args(), opts())
}

// interleaved moves the flags among args before the positional arguments,
// so that `keys list acme -o json` works as `keys list -o json acme`.
func interleaved(fs *flag.FlagSet, args []string) []string {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if fl := fs.Lookup(name); fl != nil {
			if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				continue
			}
			if i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		}
	}
	return append(flags, positional...)
}

func verbNames(g *ctlGroup) string {
	names := make([]string, len(g.verbs))
	for i, v := range g.verbs {
		names[i] = v.name
	}
	return strings.Join(names, ", ")
}

func ctlUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, "usage: smsgw ctl [flags] <command> <verb> [flags] [args]\n\ncommands:\n")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, g := range ctlGroups {
		for _, v := range g.verbs {
			fmt.Fprintf(tw, "  %s %s %s\t%s\n", g.name, v.name, v.args, v.summary)
		}
	}
	for _, short := range slices.Sorted(maps.Keys(ctlShortcuts)) {
		fmt.Fprintf(tw, "  %s\tas %s\n", short, ctlShortcuts[short])
	}
	tw.Flush()
	fmt.Fprint(w, "\nflags:\n")
	fs.PrintDefaults()
}
