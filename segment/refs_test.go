package segment

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestMemoryAllocatorSequence(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryAllocator(0)
	first, err := m.Next(ctx, "c1", "+61400000001")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 300; i++ {
		ref, err := m.Next(ctx, "c1", "+61400000001")
		if err != nil {
			t.Fatal(err)
		}
		if want := first + uint16(i); ref != want {
			t.Fatalf("call %d: ref %d, want %d", i, ref, want)
		}
	}
	// Another destination or connector has its own counter.
	other, _ := m.Next(ctx, "c1", "+61400000002")
	again, _ := m.Next(ctx, "c1", "+61400000002")
	if again != other+1 {
		t.Fatalf("second destination: %d then %d", other, again)
	}
	c2a, _ := m.Next(ctx, "c2", "+61400000001")
	c2b, _ := m.Next(ctx, "c2", "+61400000001")
	if c2b != c2a+1 {
		t.Fatalf("second connector: %d then %d", c2a, c2b)
	}
	if m.Len() != 3 {
		t.Fatalf("Len = %d", m.Len())
	}
}

func TestMemoryAllocatorBounded(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryAllocator(10)
	for i := 0; i < 100; i++ {
		if _, err := m.Next(ctx, "c", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if m.Len() != 10 {
		t.Fatalf("Len = %d, want 10", m.Len())
	}
}

func TestMemoryAllocatorConcurrent(t *testing.T) {
	ctx := context.Background()
	var alloc ReferenceAllocator = NewMemoryAllocator(0)
	const workers, each = 8, 500
	var mu sync.Mutex
	seen := make(map[uint16]bool)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ref, err := alloc.Next(ctx, "c", "+1555")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[ref] {
					t.Errorf("reference %d handed out twice", ref)
				}
				seen[ref] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != workers*each {
		t.Fatalf("%d distinct references", len(seen))
	}
}

func TestMemoryAllocatorCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewMemoryAllocator(0).Next(ctx, "c", "d"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}
