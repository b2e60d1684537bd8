// Command deploy-check validates the deployment artefacts of smsgw offline:
// rendered Helm manifests, Prometheus alert rules and the Grafana dashboard.
//
//	deploy-check manifests FILE...   multi-document YAML from `helm template` ("-" reads stdin)
//	deploy-check rules FILE...       Prometheus rule files (groups: ...)
//	deploy-check dashboard FILE...   Grafana dashboard JSON
//	deploy-check terraform DIR...    Terraform root modules (and the local modules they call)
//
// Manifests are decoded strictly into the Kubernetes API types
// (k8s.io/api v0.37) and the Prometheus Operator types, so a misspelt or
// misplaced field, a wrong type or an unknown kind is an error; then the
// objects are checked against each other and against the gateway's rules
// (selectors that select, ports that exist, pods that run as non-root, no
// secret in a ConfigMap). PromQL expressions are parsed and may name only the
// gateway's metrics. Terraform is checked as far as it can be without its
// providers (see terraform.go). Every problem is printed; the exit status is 1 if there
// was any, 2 on bad usage.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

const usage = `usage:
  deploy-check manifests FILE...   rendered Kubernetes manifests ("-" for stdin)
  deploy-check rules FILE...       Prometheus rule files
  deploy-check dashboard FILE...   Grafana dashboard JSON
  deploy-check terraform DIR...    Terraform root modules
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var check func(name string, data []byte) (string, []error)
	switch args[0] {
	case "manifests":
		check = checkManifests
	case "rules":
		check = checkRulesFile
	case "dashboard":
		check = checkDashboard
	case "terraform":
		check = checkTerraform
	default:
		fmt.Fprintf(stderr, "unknown command %q\n%s", args[0], usage)
		return 2
	}

	failed := false
	for _, name := range args[1:] {
		var data []byte
		if args[0] != "terraform" { // a directory, read by the check itself
			var err error
			if data, err = readInput(name, stdin); err != nil {
				fmt.Fprintln(stderr, err)
				failed = true
				continue
			}
		}
		summary, problems := check(name, data)
		for _, p := range problems {
			fmt.Fprintf(stderr, "%s: %v\n", name, p)
		}
		if len(problems) > 0 {
			failed = true
			fmt.Fprintf(stderr, "%s: %d problem(s)\n", name, len(problems))
			continue
		}
		fmt.Fprintf(stdout, "%s: ok (%s)\n", name, summary)
	}
	if failed {
		return 1
	}
	return 0
}

func readInput(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading stdin: %w", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading input: %w", err)
	}
	if len(data) == 0 {
		return nil, errors.New(name + ": empty file")
	}
	return data, nil
}
