package main

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smsgw/smsgw/config"
)

// The supervisor binds a connector added to the configuration in force,
// drains and binds again one that changed, drains one removed, and leaves
// the others alone.
func TestConnectorSupervisorFollowsTheConfiguration(t *testing.T) {
	parse := func(connectors ...string) *config.Config {
		t.Helper()
		raw := "connectors:\n"
		for _, c := range connectors {
			raw += "  - " + c + "\n"
		}
		cfg, err := config.Parse([]byte(raw), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	var mu sync.Mutex
	var events []string
	note := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, s)
	}
	live := config.Static(parse(`{id: a, address: "h:1"}`, `{id: b, address: "h:2"}`))
	sup := &connectorSupervisor{live: live, logger: slog.New(slog.DiscardHandler), every: 10 * time.Millisecond,
		run: func(ctx context.Context, co config.Connector) error {
			note(fmt.Sprintf("bind %s %s", co.ID, co.Address))
			<-ctx.Done()
			note(fmt.Sprintf("drain %s %s", co.ID, co.Address))
			return nil
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()

	waitFor := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			got := append([]string(nil), events...)
			mu.Unlock()
			sort.Strings(got)
			sort.Strings(want)
			if strings.Join(got, "\n") == strings.Join(want, "\n") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	reset := func() {
		mu.Lock()
		defer mu.Unlock()
		events = nil
	}
	waitFor("bind a h:1", "bind b h:2")

	// b changes, c is added, a stays as it was (its position moves).
	reset()
	live.Set(parse(`{id: c, address: "h:3"}`, `{id: a, address: "h:1"}`, `{id: b, address: "h:9"}`))
	waitFor("drain b h:2", "bind b h:9", "bind c h:3")

	// a is removed.
	reset()
	live.Set(parse(`{id: c, address: "h:3"}`, `{id: b, address: "h:9"}`))
	waitFor("drain a h:1")

	// Stopping drains the rest.
	reset()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor("drain b h:9", "drain c h:3")
}
