package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestLoadTool runs the load tool against the gateway in both modes: every
// message accepted, finally notified once, none lost.
func TestLoadTool(t *testing.T) {
	g := startGatewayWith(t, "", smppCustomer)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, args := range [][]string{
		{"-mode", "rest", "-url", g.base, "-key", "acme-key", "-to-prefix", "+6141"},
		{"-mode", "smpp", "-smpp-addr", g.smpp, "-system-id", "smppco", "-password", "smpp-pw", "-to-prefix", "+6142"},
	} {
		var out, errOut bytes.Buffer
		err := loadtest(ctx, append(args, "-n", "40", "-concurrency", "8", "-window", "8", "-wait", "60s"), &out, &errOut)
		if err != nil {
			t.Fatalf("loadtest %v: %v\n%s%s", args, err, out.String(), errOut.String())
		}
		for _, want := range []string{"accepted 40, failed 0", "40 DELIVERED", "lost           0", "duplicated     0"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("loadtest %v: report lacks %q:\n%s", args[:2], want, out.String())
			}
		}
	}
}
