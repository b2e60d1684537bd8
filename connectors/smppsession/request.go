package smppsession

import (
	"context"
	"fmt"
	"time"

	"github.com/smsgw/smsgw/connectors/smppwire"
)

// Pending is a request of ours awaiting its response.
type Pending struct {
	s        *Session
	seq      uint32
	inWindow bool
	timer    *time.Timer
	result   chan result // receives exactly one result
}

type result struct {
	f   smppwire.Frame
	err error
}

// Call sends a request and waits for its response (see Start and Wait).
func (s *Session) Call(ctx context.Context, raw []byte) (smppwire.Frame, error) {
	p, err := s.Start(ctx, raw)
	if err != nil {
		return smppwire.Frame{}, err
	}
	return p.Wait(ctx)
}

// Start sends a request: a complete PDU, into which it writes the session's
// next sequence number. It waits for room in the window first; ctx bounds
// only that wait. It returns ErrClosed, with nothing sent, when the session
// is closed or begins to unbind first.
func (s *Session) Start(ctx context.Context, raw []byte) (*Pending, error) {
	if s.window != nil {
		select {
		case <-s.stopping:
			return nil, ErrClosed
		default:
		}
		select {
		case s.window <- struct{}{}:
		case <-s.stopping:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, fmt.Errorf("smppsession: waiting for room in the window: %w", ctx.Err())
		}
	}
	s.outstanding.Add(1)
	if s.cfg.OnWindow != nil {
		s.cfg.OnWindow(1)
	}
	// From here the request gives its room back exactly once: request does
	// when it refuses it, complete when it ends (a failed send ends it).
	return s.request(raw, true)
}

// leaveWindow gives back a request's room in the window.
func (s *Session) leaveWindow() {
	if s.window != nil {
		<-s.window
	}
	s.outstanding.Add(-1)
	if s.cfg.OnWindow != nil {
		s.cfg.OnWindow(-1)
	}
}

// Wait waits for the response, which may be generic_nack. It fails with
// ErrTimeout after Config.ResponseTimeout, with ErrConnectionLost when the
// session ends first, and with ctx's error when ctx ends first; then the
// request is given up and leaves the window, though the peer may still act
// on it. Call it once.
func (p *Pending) Wait(ctx context.Context) (smppwire.Frame, error) {
	select {
	case r := <-p.result:
		return r.f, r.err
	case <-ctx.Done():
		if p.s.complete(p, result{err: ctx.Err()}) {
			<-p.result
			return smppwire.Frame{}, fmt.Errorf("smppsession: stopped waiting for the response: %w", ctx.Err())
		}
		r := <-p.result // the response came meanwhile
		return r.f, r.err
	}
}

// request registers a request under the next sequence number and queues
// it. user says whether it is the user's (in the window, refused once
// unbinding) or the session's own (enquire_link, unbind). A user's request
// has taken room in the window (Start); it leaves it when refused here, or
// through complete once registered, a failed send included.
func (s *Session) request(raw []byte, user bool) (*Pending, error) {
	seq := s.nextSeq()
	smppwire.SetSeq(raw, seq)
	p := &Pending{s: s, seq: seq, inWindow: user, result: make(chan result, 1)}
	s.mu.Lock()
	if s.closed || user && s.draining {
		s.mu.Unlock()
		if p.inWindow {
			s.leaveWindow()
		}
		return nil, ErrClosed
	}
	s.pending[seq] = p
	s.addInFlight(1)
	p.timer = time.AfterFunc(s.cfg.ResponseTimeout, func() { s.complete(p, result{err: ErrTimeout}) })
	s.mu.Unlock()
	if err := s.send(raw); err != nil {
		s.complete(p, result{err: err})
		return nil, err
	}
	return p, nil
}

func (s *Session) nextSeq() uint32 {
	for {
		if seq := s.seq.Add(1) & 0x7FFFFFFF; seq != 0 {
			return seq
		}
	}
}

// receiveResponse hands a response to the request it answers.
func (s *Session) receiveResponse(f smppwire.Frame) {
	if isBindResp(f.CommandID) && f.Status == 0 {
		s.bound.Store(true)
	}
	s.mu.Lock()
	p := s.pending[f.Seq]
	s.mu.Unlock()
	if p == nil || !s.complete(p, result{f: f}) {
		s.log.Debug("response to no request of ours, perhaps after its timeout",
			"command", smppwire.CommandName(f.CommandID), "seq", f.Seq)
	}
}

// complete ends a request with r, unless it has ended already; it reports
// whether it did.
func (s *Session) complete(p *Pending, r result) bool {
	s.mu.Lock()
	if s.pending[p.seq] != p {
		s.mu.Unlock()
		return false
	}
	delete(s.pending, p.seq)
	s.addInFlight(-1)
	s.mu.Unlock()
	p.timer.Stop()
	if p.inWindow {
		s.leaveWindow()
	}
	p.result <- r
	return true
}

// failPending ends every request still waiting, once the connection has
// closed, and takes no more.
func (s *Session) failPending() {
	s.mu.Lock()
	s.closed = true
	pending := make([]*Pending, 0, len(s.pending))
	for _, p := range s.pending {
		pending = append(pending, p)
	}
	cause := s.err
	s.mu.Unlock()
	err := ErrConnectionLost
	if cause != nil {
		err = fmt.Errorf("%w: %w", ErrConnectionLost, cause)
	}
	for _, p := range pending {
		s.complete(p, result{err: err})
	}
}
