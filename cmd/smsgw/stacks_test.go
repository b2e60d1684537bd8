package main

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func startingStack() uint64 {
	sample := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

func TestNewGoroutinesStartWithTheStackAskedFor(t *testing.T) {
	const size = 64 << 10
	runtime.GC()
	if got := startingStack(); got >= size {
		t.Skipf("goroutines already start with %d bytes of stack", got)
	}
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { keepStartingStack(ctx, size, slog.New(slog.DiscardHandler)); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for startingStack() < size {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("new goroutines still start with %d bytes of stack, want %d", startingStack(), size)
		}
		time.Sleep(100 * time.Millisecond)
		runtime.GC()
	}
	held := runtime.NumGoroutine() - before
	cancel()
	<-done
	deadline = time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left of %d held after the context ended", runtime.NumGoroutine()-before, held)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d goroutines held the starting stack at %d bytes", held, size)
}

func TestGoroutineStackSizes(t *testing.T) {
	for size, ok := range map[int]bool{0: true, 16 << 10: true, 64 << 10: true, 1 << 20: true,
		1: false, 8 << 10: false, 100000: false, 2 << 20: false, -1: false} {
		if err := checkGoroutineStack(size); (err == nil) != ok {
			t.Errorf("checkGoroutineStack(%d) = %v, want ok %v", size, err, ok)
		}
	}
}
