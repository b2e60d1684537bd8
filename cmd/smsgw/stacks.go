package main

import (
	"context"
	"runtime"
	"runtime/metrics"
	"time"
)

// keepStartingStack keeps the stack that new goroutines start with at size
// bytes or more, until ctx ends.
//
// The Go runtime starts every new goroutine with a stack the size of the
// average it found in use at its last collection. The Temporal SDK runs
// each workflow and activity task on a new goroutine, and its payload
// visitor, which it runs over every request and response, takes 8 KiB of
// stack a level of the message it visits: in a process whose other
// goroutines are mostly idle, each task outgrows its starting stack, and
// the runtime copies the stack, frame by frame, again for every task (a
// tenth of smsgw's CPU under load). So once a second, while the starting
// size is below size, this parks more goroutines that each hold a little
// less than size of stack, until the average is high enough; a goroutine
// that ends keeps its stack for the next one, and a goroutine that needs
// less gives the rest back at the next collection.
func keepStartingStack(ctx context.Context, size int) {
	if size <= 0 {
		return
	}
	levels := size/holdFrameSize - 2 // a little less than size, so it is not doubled
	sample := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	held := 0
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 && sample[0].Value.Uint64() < uint64(size) && held < maxHeldStacks {
			more := max(16, (runtime.NumGoroutine()-held)/4)
			for range more {
				go holdFrame(ctx, levels)
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

// maxHeldStacks bounds the goroutines keepStartingStack parks (64 MiB of
// stack at the default size): a process with many more goroutines than
// that keeps the runtime's own starting size.
const maxHeldStacks = 1024

// holdFrameSize is about what one level of holdFrame takes.
const holdFrameSize = 8 << 10

// holdFrame takes about holdFrameSize of stack a level, depth levels deep,
// and waits there for ctx to end.
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
