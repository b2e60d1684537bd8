package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// loadtest submits messages and reports throughput, latency, and any
// message lost or notified twice. In REST mode each message carries a
// callbackUrl pointing at the tool's own webhook receiver; in SMPP mode one
// transceiver bind submits with a window and takes the receipts itself.
func loadtest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	apiURL := fs.String("url", "http://127.0.0.1:8080", "gateway REST base URL")
	key := fs.String("key", "demo-key", "API key")
	n := fs.Int("n", 1000, "messages to submit")
	rate := fs.Float64("rate", 0, "submissions per second (0: as fast as -concurrency allows)")
	conc := fs.Int("concurrency", 32, "submissions in flight")
	inFlight := fs.Int("in-flight", 0, "messages in flight end to end: a message is submitted when fewer are accepted and not yet final (0: no bound but -concurrency)")
	to := fs.String("to-prefix", "+6140", "destination prefix; each message appends its index as 7 digits")
	text := fs.String("text", "load test message", "message text")
	hookAddr := fs.String("webhook-addr", "127.0.0.1:0", "listen address of the webhook receiver")
	wait := fs.Duration("wait", 2*time.Minute, "how long to wait for the last receipt")
	mode := fs.String("mode", "rest", "rest or smpp")
	smppAddr := fs.String("smpp-addr", "127.0.0.1:2775", "SMPP server (smpp mode)")
	systemID := fs.String("system-id", "demo", "SMPP system_id (smpp mode)")
	password := fs.String("password", "demo1234", "SMPP password (smpp mode)")
	window := fs.Int("window", 32, "submit_sm outstanding at once (smpp mode)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	spec := loadSpec{
		url: *apiURL, key: *key, n: *n, rate: *rate, concurrency: *conc, inFlight: *inFlight,
		to: *to, text: *text, hookAddr: *hookAddr, wait: *wait,
	}
	var r *loadReport
	var err error
	switch *mode {
	case "rest":
		r, err = runLoad(ctx, spec)
	case "smpp":
		r, err = runSMPPLoad(ctx, spec, smppLoad{addr: *smppAddr, systemID: *systemID, password: *password, window: *window})
	default:
		return fmt.Errorf("unknown -mode %q: rest or smpp", *mode)
	}
	if err != nil {
		return err
	}
	r.print(stdout)
	if r.lost > 0 || r.duplicated > 0 || r.failed > 0 {
		return fmt.Errorf("%d lost, %d duplicated, %d submissions failed", r.lost, r.duplicated, r.failed)
	}
	return nil
}

type loadSpec struct {
	url, key, to, text, hookAddr string
	n, concurrency, inFlight     int
	rate                         float64
	wait                         time.Duration
}

type loadReport struct {
	n, accepted, failed, throttled, delivered, otherFinal, lost, duplicated int
	submitElapsed, deliverElapsed                                           time.Duration
	acceptLatency, endToEnd                                                 []time.Duration
	finalAt                                                                 []time.Duration // each final notification's time from the start
	firstError                                                              string
}

func runLoad(ctx context.Context, spec loadSpec) (*loadReport, error) {
	tr := newTracker(spec.n, spec.inFlight)
	ln, err := net.Listen("tcp", spec.hookAddr)
	if err != nil {
		return nil, err
	}
	hook := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			MessageID string `json:"messageId"`
			Status    string `json:"status"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tr.final(body.MessageID, body.Status)
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = hook.Serve(ln) }()
	defer hook.Close()
	callback := "http://" + ln.Addr().String() + "/hook"

	httpc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: spec.concurrency}}
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range spec.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				body, _ := json.Marshal(map[string]string{
					"from": "LOADTEST", "to": fmt.Sprintf("%s%07d", spec.to, i+1),
					"text": spec.text, "callbackUrl": callback,
				})
				first := time.Now()
				var acc struct {
					ID string `json:"id"`
				}
				var err error
				var t0 time.Time
				for {
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, spec.url+"/v1/messages", bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+spec.key)
					req.Header.Set("Content-Type", "application/json")
					t0 = time.Now()
					var resp *http.Response
					resp, err = httpc.Do(req)
					if err != nil {
						break
					}
					retry := retryAfter(resp)
					if retry > 0 {
						resp.Body.Close()
						tr.throttled()
						if sleepCtx(ctx, retry) != nil {
							err = ctx.Err()
							break
						}
						continue
					}
					if resp.StatusCode/100 != 2 {
						msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
						err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
					} else {
						err = json.NewDecoder(resp.Body).Decode(&acc)
					}
					resp.Body.Close()
					break
				}
				switch {
				case err != nil:
					tr.failed(err.Error())
				case acc.ID == "":
					tr.failed("no message id in the answer")
				default:
					tr.accepted(acc.ID, first, time.Since(t0))
				}
			}
		}()
	}
	paced(ctx, spec, func(i int) bool {
		if !tr.enter(ctx, spec.wait) {
			return false
		}
		select {
		case jobs <- i:
			return true
		case <-ctx.Done():
			return false
		}
	})
	close(jobs)
	wg.Wait()
	submitted := time.Since(start)

	tr.wait(ctx, spec.wait)
	rep := tr.report(start, submitted, func(s string) bool { return s == "DELIVERED" || s == "MESSAGE_STATUS_DELIVERED" })
	if rep.accepted == 0 && rep.failed > 0 {
		return rep, errors.New("no submission accepted: " + rep.firstError)
	}
	return rep, nil
}

// retryAfter is how long a 429 answer asks to wait (at least a second), or
// 0 for any other answer.
func retryAfter(resp *http.Response) time.Duration {
	if resp.StatusCode != http.StatusTooManyRequests {
		return 0
	}
	secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return time.Duration(max(secs, 1)) * time.Second
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// paced calls next for each message index, at spec.rate per second when it
// is set, until next returns false or ctx is done.
func paced(ctx context.Context, spec loadSpec, next func(i int) bool) {
	var tick *time.Ticker
	if spec.rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / spec.rate))
		defer tick.Stop()
	}
	for i := range spec.n {
		if tick != nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
		if !next(i) {
			return
		}
	}
}

func (r *loadReport) print(w io.Writer) {
	perSec := func(n int, d time.Duration) float64 {
		if d <= 0 {
			return 0
		}
		return float64(n) / d.Seconds()
	}
	fmt.Fprintf(w, "submitted      %d (accepted %d, failed %d; refused for the backlog and retried %d times)\n", r.n, r.accepted, r.failed, r.throttled)
	fmt.Fprintf(w, "accepted/s     %.1f over %s\n", perSec(r.accepted, r.submitElapsed), r.submitElapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "delivered/s    %.1f (%d DELIVERED, %d other final) over %s\n", perSec(r.delivered+r.otherFinal, r.deliverElapsed), r.delivered, r.otherFinal, r.deliverElapsed.Round(time.Millisecond))
	if first, last, k := r.firstAndLast(); k > 0 {
		fmt.Fprintf(w, "first/last %d  %.1f/s / %.1f/s (final notifications of the first and the last %d; last at %.0f%% of first)\n", k, first, last, k, 100*last/first)
	}
	fmt.Fprintf(w, "accept latency p50 %s  p99 %s\n", pct(r.acceptLatency, 50), pct(r.acceptLatency, 99))
	fmt.Fprintf(w, "end to end     p50 %s  p99 %s (submission to final notification)\n", pct(r.endToEnd, 50), pct(r.endToEnd, 99))
	fmt.Fprintf(w, "lost           %d\nduplicated     %d\n", r.lost, r.duplicated)
	if r.firstError != "" {
		fmt.Fprintf(w, "first error    %s\n", r.firstError)
	}
}

// firstAndLast is the rate of the first k final notifications (from the
// start) and of the last k (from the one before them), k being 1,000 or
// half of them when there are fewer than 2,000; k is 0 below 200.
func (r *loadReport) firstAndLast() (first, last float64, k int) {
	at := slices.Clone(r.finalAt)
	slices.Sort(at)
	k = min(1000, len(at)/2)
	if k < 100 {
		return 0, 0, 0
	}
	first = float64(k) / at[k-1].Seconds()
	last = float64(k) / (at[len(at)-1] - at[len(at)-k-1]).Seconds()
	return first, last, k
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))].Round(100 * time.Microsecond)
}
