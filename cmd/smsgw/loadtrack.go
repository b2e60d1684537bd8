package main

import (
	"context"
	"sync"
	"time"
)

// tracker follows the messages of a load run from their acceptance to their
// final notification, whichever comes first, and tallies the report.
type tracker struct {
	mu    sync.Mutex
	rep   *loadReport
	byID  map[string]*outcome
	early map[string][]string // final notifications that beat their acceptance
	// inFlight, when set, holds a token for each message submitted and not
	// yet final (or failed): the closed loop end to end of -in-flight.
	inFlight chan struct{}
}

type outcome struct {
	submitted time.Time
	finals    int
	status    string
	at        time.Time
}

func newTracker(n, inFlight int) *tracker {
	t := &tracker{rep: &loadReport{n: n}, byID: map[string]*outcome{}, early: map[string][]string{}}
	if inFlight > 0 {
		t.inFlight = make(chan struct{}, inFlight)
	}
	return t
}

// enter waits until fewer than -in-flight messages are submitted and not
// yet final, then counts one more. It gives up waiting after patience (a
// message lost holds its place for ever), and returns false only when ctx
// is done.
func (t *tracker) enter(ctx context.Context, patience time.Duration) bool {
	if t.inFlight == nil {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(patience)
	defer timer.Stop()
	select {
	case t.inFlight <- struct{}{}:
	case <-timer.C:
	case <-ctx.Done():
		return false
	}
	return true
}

// leave gives back the place of a message that is final or failed.
func (t *tracker) leave() {
	if t.inFlight == nil {
		return
	}
	select {
	case <-t.inFlight:
	default:
	}
}

// final records a final notification (status as the channel wrote it).
func (t *tracker) final(id, status string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if o, ok := t.byID[id]; ok {
		o.finals++
		o.status, o.at = status, time.Now()
		if o.finals == 1 {
			t.leave()
		}
		return
	}
	t.early[id] = append(t.early[id], status)
}

// accepted records a message accepted after latency, submitted at t0.
func (t *tracker) accepted(id string, t0 time.Time, latency time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rep.accepted++
	t.rep.acceptLatency = append(t.rep.acceptLatency, latency)
	o := &outcome{submitted: t0}
	if st, ok := t.early[id]; ok {
		o.finals, o.status, o.at = len(st), st[len(st)-1], time.Now()
		delete(t.early, id)
		t.leave()
	}
	t.byID[id] = o
}

// failed records a submission that was not accepted.
func (t *tracker) failed(reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rep.failed++
	t.leave()
	if t.rep.firstError == "" {
		t.rep.firstError = reason
	}
}

// throttled records a submission refused for the moment (429,
// ESME_RTHROTTLED) that the tool tries again.
func (t *tracker) throttled() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rep.throttled++
}

// wait waits until every accepted message has its final notification or
// the time is up, then a little longer for late duplicates.
func (t *tracker) wait(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil && !t.allFinal() {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
}

func (t *tracker) allFinal() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range t.byID {
		if o.finals == 0 {
			return false
		}
	}
	return true
}

// report tallies the run that started at start; delivered says which final
// statuses count as delivered.
func (t *tracker) report(start time.Time, submitElapsed time.Duration, delivered func(status string) bool) *loadReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	rep := t.rep
	rep.submitElapsed = submitElapsed
	var last time.Time
	for _, o := range t.byID {
		switch {
		case o.finals == 0:
			rep.lost++
			continue
		case o.finals > 1:
			rep.duplicated++
		}
		if delivered(o.status) {
			rep.delivered++
		} else {
			rep.otherFinal++
		}
		rep.endToEnd = append(rep.endToEnd, o.at.Sub(o.submitted))
		rep.finalAt = append(rep.finalAt, o.at.Sub(start))
		if o.at.After(last) {
			last = o.at
		}
	}
	if !last.IsZero() {
		rep.deliverElapsed = last.Sub(start)
	}
	return rep
}
