package segment

import (
	"context"
	"math/rand/v2"
	"sync"
)

// ReferenceAllocator hands out concatenation references. Consecutive long
// messages to the same destination over the same connector must get
// different references, or the handset may merge their parts. Split uses
// the low octet of the reference for an 8-bit header and all of it for a
// 16-bit header or SAR.
type ReferenceAllocator interface {
	Next(ctx context.Context, connector, destination string) (uint16, error)
}

// DefaultMaxReferenceKeys is how many (connector, destination) pairs a
// MemoryAllocator remembers when built with 0.
const DefaultMaxReferenceKeys = 100_000

// MemoryAllocator is a ReferenceAllocator in memory, safe for concurrent
// use. Each (connector, destination) pair counts up from a random start.
// When it holds maxKeys pairs, a new pair evicts an arbitrary one, whose
// next reference then starts again at random: across processes and after an
// eviction a reference may repeat, as with any 8-bit reference.
type MemoryAllocator struct {
	mu      sync.Mutex
	next    map[refKey]uint16
	maxKeys int
}

type refKey struct{ connector, destination string }

// NewMemoryAllocator returns an allocator that remembers up to maxKeys
// pairs (DefaultMaxReferenceKeys when maxKeys <= 0).
func NewMemoryAllocator(maxKeys int) *MemoryAllocator {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxReferenceKeys
	}
	return &MemoryAllocator{next: make(map[refKey]uint16), maxKeys: maxKeys}
}

// Next returns the next reference for the pair. It fails only when ctx is
// already done.
func (m *MemoryAllocator) Next(ctx context.Context, connector, destination string) (uint16, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	k := refKey{connector, destination}
	m.mu.Lock()
	defer m.mu.Unlock()
	ref, ok := m.next[k]
	if !ok {
		if len(m.next) >= m.maxKeys {
			for old := range m.next {
				delete(m.next, old)
				break
			}
		}
		ref = uint16(rand.Uint32())
	}
	m.next[k] = ref + 1
	return ref, nil
}

// Len returns how many pairs the allocator remembers.
func (m *MemoryAllocator) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.next)
}
