package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The stack's servers get ports no other of them got, even when the
// system would hand the same free port out again.
func TestFreePortNeverTwice(t *testing.T) {
	seen := map[int]bool{}
	for range 300 {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

// A server that exits while the soak waits for its port fails the wait at
// once, instead of leaving it to the timeout (or to whatever else answers
// on that port).
func TestWaitUpFailsWhenTheServerExits(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{name: "gone", path: "/bin/sh", args: []string{"-c", "exit 1"}, log: filepath.Join(t.TempDir(), "gone.log")}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = waitUp(context.Background(), p, fmt.Sprintf("127.0.0.1:%d", port), time.Minute)
	if err == nil || !strings.Contains(err.Error(), "exited while starting") {
		t.Fatalf("waitUp = %v, want the exit reported", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("waitUp took %s to see the exit", took)
	}
}
