// Command smsgw is the SMS gateway. One binary, many roles:
//
//	smsgw api        gRPC and REST API (grpc-gateway), metrics, probes
//	smsgw worker     Temporal workflows and the activities that need no bind
//	smsgw connector  binds to upstream SMSCs; sends, receives receipts and MO
//	smsgw email      SMTP ingress: mail to <msisdn>@<domain> becomes an SMS
//	smsgw smpp       the customers' SMSC: SMPP binds, submit_sm in, deliver_sm out
//	smsgw all        every role in one process
//	smsgw migrate    applies database migrations and registers search attributes
//	smsgw smsc-sim   an SMSC simulator to develop and test against
//	smsgw loadtest   submits messages over REST and measures the gateway
//	smsgw soak       runs the stack under load and faults and checks every message
//	smsgw webhook-sink   prints the webhooks it receives, checking signatures
//	smsgw hash-key   prints the configuration form of an API key
//	smsgw hash-password  prints the configuration form of an SMPP or SMTP password
//	smsgw inbound    lists inbound messages, such as those no customer owns
//	smsgw codec-server   opens sealed payloads for the Temporal UI and CLI
//	smsgw payload-keys   counts the payloads each payload key sealed
//	smsgw ctl        the admin API and the customer API from the command line
//	smsgw import     brings another gateway's message history in (Kannel sqlbox, JSON lines)
//	smsgw erase      removes every message to or from a phone number, everywhere
//	smsgw billing    tops up, shows and reconciles customers' balances
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

const usage = `usage: smsgw <role> [flags]

roles:
  api        gRPC and REST API, metrics and probes
  worker     Temporal workflows and activities
  connector  binds to upstream SMSCs
  email      SMTP ingress: mail to <msisdn>@<domain> becomes an SMS
  smpp       the customers' SMSC: SMPP 3.4 binds on :2775 (TLS :3550)
  all        every role in one process
  migrate    apply database migrations, create indexes, register search attributes
  smsc-sim   run an SMSC simulator
  loadtest   submit messages over REST and report throughput and latency
  soak       run two replicas of every role under load and faults, and check every message
  hash-key   print the configuration form of an API key
  hash-password  print the configuration form of a password (bcrypt)
  inbound    list inbound messages (-unrouted: those no customer owns)
  codec-server   serve the codec protocol of the Temporal UI and CLI (opens sealed payloads)
  payload-keys   count the payloads each payload key sealed in recent histories
  ctl        customers, keys, connectors, routes, audit, export/import and messages over the API
  import     bring another gateway's message history in (Kannel sqlbox, JSON lines)
  erase      remove every message to or from a phone number from the stores and Temporal
  billing    topup, balance or reconcile: customers' balances in the billing ledger
  temporal-dev-args  print the arguments make dev gives the Temporal dev server, one a line

Run "smsgw <role> -h" for the flags of a role.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	role, rest := args[0], args[1:]
	var err error
	switch role {
	case "api", "worker", "connector", "all", "email", "smpp":
		err = serve(ctx, role, rest, getenv, stdout, stderr)
	case "migrate":
		err = migrate(ctx, rest, getenv, stderr)
	case "smsc-sim":
		err = smscSim(ctx, rest, stdout, stderr)
	case "loadtest":
		err = loadtest(ctx, rest, stdout, stderr)
	case "soak":
		err = soak(ctx, rest, stdout, stderr)
	case "webhook-sink":
		err = webhookSink(ctx, rest, stdout, stderr)
	case "hash-key":
		err = hashKey(rest, stdout)
	case "hash-password":
		err = hashPassword(rest, os.Stdin, stdout)
	case "inbound":
		err = inboundList(ctx, rest, getenv, stdout, stderr)
	case "codec-server":
		err = codecServer(ctx, rest, getenv, stderr)
	case "payload-keys":
		err = payloadKeysReport(ctx, rest, getenv, stdout, stderr)
	case "ctl":
		err = ctl(rest, getenv, stdout, stderr)
	case "import":
		err = importHistory(ctx, rest, getenv, stdout, stderr)
	case "erase":
		err = erase(ctx, rest, getenv, stdout, stderr)
	case "billing":
		err = billing(ctx, rest, getenv, stdout, stderr)
	case "check-config":
		err = checkConfig(rest, getenv, stdout)
	case "temporal-dev-args":
		err = printTemporalDevArgs(rest, stdout)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "smsgw: unknown role %q\n\n%s", role, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "smsgw %s: %v\n", role, err)
		return 1
	}
	return 0
}
