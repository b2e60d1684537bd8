package smppserver_test

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smppserver"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// BenchmarkSessionSubmit measures one session's submit_sm throughput over
// TCP loopback with a Submitter that accepts at once (no workflow engine),
// and an ESME keeping 128 submit_sm outstanding.
func BenchmarkSessionSubmit(b *testing.B) {
	f := start(b, smppserver.Config{Window: 256}, smppserver.Deps{Submitter: &submitter{noop: true}})
	cl := f.bound(b, smppwire.BindTransceiver, "acme", "secret")
	raw := smppserver.EncodeMessage(smppwire.SubmitSM, 0, text("benchmark message"))
	const window = 128
	slots := make(chan struct{}, window)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	b.ReportAllocs()
	b.ResetTimer()
	begin := time.Now()
	for range b.N {
		slots <- struct{}{}
		ch, err := cl.Start(bytes.Clone(raw))
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r, ok := <-ch; !ok || r.Status != 0 {
				mu.Lock()
				failed++
				mu.Unlock()
			}
			<-slots
		}()
	}
	wg.Wait()
	elapsed := time.Since(begin)
	b.StopTimer()
	if failed > 0 {
		b.Fatalf("%d of %d submits failed", failed, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "submits/s")
}
