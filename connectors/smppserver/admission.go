package smppserver

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
)

// admission caps the connections that have not bound yet: in all, and per
// source (an IPv4 address, or an IPv6 /64, which one client usually holds
// whole). Bound sessions do not count: a customer's binds are limited by
// its maxBinds instead.
//
// When a cap is reached, the newcomer takes the place of the oldest
// connection, from the same source for the per-source cap, that has not
// sent a PDU yet: an idle connection has had the longest to bind and
// has not tried, while a client that means to bind sends its bind at
// once. So a flood of idle connections from an address costs the server
// at most the cap, and a customer binding from that address is still
// served. When every connection in the way has sent something (binds in
// progress), the newcomer is refused: it is closed at once.
type admission struct {
	maxTotal, maxPerSource int // <= 0: no cap

	mu       sync.Mutex
	all      list.List                // *waiting, oldest first
	bySource map[sourceKey]*list.List // *waiting, oldest first
}

// waiting is a connection that has not bound yet.
type waiting struct {
	sess            *session
	source          sourceKey
	inAll, inSource *list.Element
}

// sourceKey is who a connection comes from, as the caps and the failed
// bind limits count it.
type sourceKey string

// sourceOf returns the source of a remote address: its IPv4 address, or
// its IPv6 /64; for an address that is not IP (a pipe in tests), its text.
func sourceOf(remote net.Addr) sourceKey {
	ap, err := netip.ParseAddrPort(remote.String())
	if err != nil {
		return sourceKey(remote.String())
	}
	ip := ap.Addr().Unmap()
	if ip.Is4() {
		return sourceKey(ip.String())
	}
	p, _ := ip.Prefix(64)
	return sourceKey(p.String())
}

// admitOutcome is what admit did.
type admitOutcome uint8

const (
	admitted      admitOutcome = iota
	evictedSource              // admitted, in place of an idle connection of the same source
	evictedTotal               // admitted, in place of the oldest idle connection of all
	refusedSource              // refused: the source's connections are all busy binding
	refusedTotal               // refused: every connection is busy binding
)

func newAdmission(maxTotal, maxPerSource int) *admission {
	return &admission{maxTotal: maxTotal, maxPerSource: maxPerSource, bySource: map[sourceKey]*list.List{}}
}

// admit registers sess as waiting to bind. It returns the session whose
// place it took, if any, which the caller closes.
func (a *admission) admit(sess *session) (outcome admitOutcome, evicted *session) {
	src := sess.source
	a.mu.Lock()
	defer a.mu.Unlock()
	mine := a.bySource[src]
	if a.maxPerSource > 0 && mine != nil && mine.Len() >= a.maxPerSource {
		w := oldestIdle(mine)
		if w == nil {
			return refusedSource, nil
		}
		a.remove(w)
		outcome, evicted = evictedSource, w.sess
	} else if a.maxTotal > 0 && a.all.Len() >= a.maxTotal {
		w := oldestIdle(&a.all)
		if w == nil {
			return refusedTotal, nil
		}
		a.remove(w)
		outcome, evicted = evictedTotal, w.sess
	}
	if mine = a.bySource[src]; mine == nil {
		mine = list.New()
		a.bySource[src] = mine
	}
	w := &waiting{sess: sess, source: src}
	w.inAll, w.inSource = a.all.PushBack(w), mine.PushBack(w)
	sess.waiting = w
	return outcome, evicted
}

// leave forgets a connection that bound or closed; it may be called more
// than once.
func (a *admission) leave(sess *session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if sess.waiting != nil {
		a.remove(sess.waiting)
	}
}

// remove takes w off both lists; a.mu is held.
func (a *admission) remove(w *waiting) {
	a.all.Remove(w.inAll)
	if l := a.bySource[w.source]; l != nil {
		l.Remove(w.inSource)
		if l.Len() == 0 {
			delete(a.bySource, w.source)
		}
	}
	w.sess.waiting = nil
}

// count is the number of connections waiting to bind.
func (a *admission) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.all.Len()
}

// oldestIdle returns the oldest connection of l that has sent no PDU.
func oldestIdle(l *list.List) *waiting {
	for e := l.Front(); e != nil; e = e.Next() {
		if w := e.Value.(*waiting); !w.sess.heard.Load() {
			return w
		}
	}
	return nil
}
