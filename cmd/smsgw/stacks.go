package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"time"
)

// keepStartingStack tries to have new goroutines start with size bytes of
// stack, until ctx ends.
//
// The Go runtime starts every new goroutine with a stack the size of the
// average it found in use at its last collection, rounded up to a power of
// two. The Temporal SDK runs each workflow and activity task on a new
// goroutine, and its payload visitor, which it runs over every request
// and response, takes 8 KiB of stack a level of the message it visits: in
// a process whose other goroutines are mostly idle, each task outgrows its
// starting stack, and the runtime copies the stack, frame by frame, again
// for every task (a tenth of smsgw's CPU under load). So once a second,
// while the starting size is below size, this parks more goroutines that
// each hold a little less than size of stack, until the average is high
// enough; a goroutine that ends keeps its stack for the next one, and one
// that needs less gives the rest back at the next collection.
//
// The parked goroutines must come to more than half of all of them. In a
// process with too many others to reach that within maxHeldStacks, they
// are let go and the runtime keeps its own starting size.
func keepStartingStack(ctx context.Context, size int, logger *slog.Logger) {
	if size <= 0 {
		return
	}
	// holdFrame(levels) takes levels+1 frames of holdFrameSize: one frame
	// short of size, so that the held stack is not doubled.
	levels := max(0, size/holdFrameSize-2)
	holds, release := context.WithCancel(ctx)
	defer release()
	sample := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	held := 0
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 && sample[0].Value.Uint64() < uint64(size) {
			if held >= maxHeldStacks {
				logger.Info("new goroutines keep the runtime's starting stack: too many goroutines to lift its average",
					"goroutine_stack", size, "starting_stack", sample[0].Value.Uint64(), "goroutines", runtime.NumGoroutine())
				return // release lets the held stacks go
			}
			more := min(max(16, (runtime.NumGoroutine()-held)/4), maxHeldStacks-held)
			for range more {
				go holdFrame(holds, levels)
			}
			held += more
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// checkGoroutineStack says whether size can be a starting stack: 0 (the
// runtime's own), or a power of two from 16 KiB to 1 MiB.
func checkGoroutineStack(size int) error {
	if size == 0 || size >= 16<<10 && size <= 1<<20 && size&(size-1) == 0 {
		return nil
	}
	return fmt.Errorf("-goroutine-stack %d: want 0 or a power of two from 16384 to 1048576", size)
}

// maxHeldStacks bounds the goroutines keepStartingStack parks (64 MiB of
// stack at the default size).
const maxHeldStacks = 1024

// holdFrameSize is about what one level of holdFrame takes.
const holdFrameSize = 8 << 10

// holdFrame takes about holdFrameSize of stack a level, depth+1 levels, and
// waits there for ctx to end.
//
//go:noinline
func holdFrame(ctx context.Context, depth int) byte {
	var frame [holdFrameSize - 256]byte
	frame[depth] = byte(depth)
	if depth == 0 {
		<-ctx.Done()
		return frame[0]
	}
	return frame[depth] + holdFrame(ctx, depth-1)
}
