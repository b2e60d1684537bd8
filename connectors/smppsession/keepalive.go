package smppsession

import (
	"context"
	"fmt"
	"time"

	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// keepAlive sends enquire_link once a bound session has read nothing for
// Config.EnquireLink (and again after each further interval of silence),
// and gives up on the peer when Config.MissedEnquireLinks of them in a row
// see nothing at all from it within the response timeout. It ends when the
// session begins to unbind or closes.
func (s *Session) keepAlive() {
	every := s.cfg.EnquireLink
	if every <= 0 {
		return
	}
	t := time.NewTimer(every)
	defer t.Stop()
	var lastProbe time.Time
	missed := 0
	for {
		select {
		case <-t.C:
		case <-s.stopping:
			return
		}
		quietSince := time.Unix(0, s.lastRead.Load())
		if lastProbe.After(quietSince) {
			quietSince = lastProbe
		}
		if wait := every - time.Since(quietSince); wait > 0 {
			t.Reset(wait)
			continue
		}
		if !s.Bound() {
			t.Reset(every)
			continue
		}

		lastProbe = time.Now()
		p, err := s.request(smppwire.HeaderOnly(smppwire.EnquireLink, 0, 0), false)
		if err != nil {
			return // closing
		}
		f, err := p.Wait(context.Background()) // ResponseTimeout bounds it
		if err == nil && f.CommandID == smppwire.GenericNack {
			s.log.Warn("the peer answered enquire_link with generic_nack", "status", smppstatus.Name(f.Status))
		}
		if s.lastRead.Load() >= lastProbe.UnixNano() {
			missed = 0
		} else {
			missed++
		}
		if missed >= s.cfg.MissedEnquireLinks {
			s.giveUp(missed)
			return
		}
		t.Reset(every - time.Since(lastProbe))
	}
}

// giveUp ends a session whose peer has stopped answering: it sends unbind,
// which the peer will probably never answer, and closes.
func (s *Session) giveUp(missed int) {
	s.end(fmt.Errorf("%w: %d enquire_link in a row saw nothing from it", ErrPeerSilent, missed))
	_ = s.send(smppwire.HeaderOnly(smppwire.Unbind, 0, s.nextSeq()))
	s.Close()
}
