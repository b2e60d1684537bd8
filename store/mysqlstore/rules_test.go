package mysqlstore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/smsgw/smsgw/store/mysqlstore"
)

func TestRuleCountersAcrossReplicas(t *testing.T) {
	t.Parallel()
	// Two stores on one database: two replicas of the gateway.
	a, dsn := open(t)
	b, err := mysqlstore.Open(ctx(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	c := ctx(t)
	bucket := time.Now().UTC().Truncate(time.Hour)

	var wg sync.WaitGroup
	counts := make(chan int64, 60)
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			n, err := s.AddVelocity(c, "acme|0|+441", bucket, bucket.Add(2*time.Hour), 1)
			if err != nil {
				t.Error(err)
			}
			counts <- n
		}()
	}
	wg.Wait()
	close(counts)
	seen := map[int64]bool{}
	for n := range counts {
		if seen[n] {
			t.Errorf("count %d returned twice: a lost update", n)
		}
		seen[n] = true
	}
	if len(seen) != 60 || !seen[1] || !seen[60] {
		t.Fatalf("counts %v, want 1…60 once each", seen)
	}
	if _, err := b.AddVelocity(c, "acme|0|+441", bucket, bucket.Add(2*time.Hour), -1); err != nil {
		t.Fatal(err)
	}
	if n, err := a.AddVelocity(c, "acme|0|+441", bucket, bucket.Add(2*time.Hour), 1); err != nil || n != 60 {
		t.Errorf("after one taken back: %d, %v; want 60", n, err)
	}
	// Another window, and another key, count from zero.
	if n, err := a.AddVelocity(c, "acme|0|+441", bucket.Add(time.Hour), bucket.Add(3*time.Hour), 1); err != nil || n != 1 {
		t.Errorf("next window: %d, %v; want 1", n, err)
	}
	if n, err := a.AddVelocity(c, "acme|0|+442", bucket, bucket.Add(2*time.Hour), 1); err != nil || n != 1 {
		t.Errorf("another key: %d, %v; want 1", n, err)
	}

	// Traffic per prefix and hour, summed over a range of hours.
	for i, p := range []string{"+44", "+44", "+88"} {
		if _, _, err := a.AddTraffic(c, "acme", p, bucket.Add(-time.Duration(i+1)*time.Hour), 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := a.AddTraffic(c, "acme", "+44", bucket, 1); err != nil {
		t.Fatal(err)
	}
	n, total, err := b.AddTraffic(c, "acme", "+88", bucket, 1)
	if err != nil || n != 1 || total != 2 {
		t.Errorf("AddTraffic this hour: %d of %d, %v; want 1 of 2", n, total, err)
	}
	// One taken back (a later step refused it) leaves the prefix and the
	// customer's total one lower.
	if _, _, err := b.AddTraffic(c, "acme", "+88", bucket, -1); err != nil {
		t.Fatal(err)
	}
	if byPrefix, total, err := a.Traffic(c, "acme", bucket, bucket.Add(time.Hour)); err != nil || total != 1 || byPrefix["+88"] != 0 || byPrefix["+44"] != 1 {
		t.Errorf("this hour after one taken back: %v of %d, %v; want +44:1 of 1", byPrefix, total, err)
	}
	if n, total, err := b.AddTraffic(c, "acme", "+88", bucket, 1); err != nil || n != 1 || total != 2 {
		t.Errorf("AddTraffic after one taken back: %d of %d, %v; want 1 of 2", n, total, err)
	}
	byPrefix, total, err := a.Traffic(c, "acme", bucket.Add(-7*24*time.Hour), bucket)
	if err != nil || total != 3 || byPrefix["+44"] != 2 || byPrefix["+88"] != 1 {
		t.Errorf("Traffic before this hour: %v of %d, %v; want +44:2 +88:1 of 3", byPrefix, total, err)
	}
	if _, total, _ := a.Traffic(c, "other", bucket.Add(-7*24*time.Hour), bucket.Add(time.Hour)); total != 0 {
		t.Errorf("another customer's traffic: %d", total)
	}

	removed, err := a.ExpireRuleCounters(c, bucket.Add(30*24*time.Hour))
	if err != nil || removed == 0 {
		t.Errorf("ExpireRuleCounters: %d, %v", removed, err)
	}
	if _, total, _ := a.Traffic(c, "acme", bucket.Add(-7*24*time.Hour), bucket.Add(time.Hour)); total != 0 {
		t.Errorf("traffic left after expiry: %d", total)
	}
}
