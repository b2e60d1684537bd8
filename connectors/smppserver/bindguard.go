package smppserver

import (
	"sync"
	"time"
)

// BindFailures is how the server answers repeated failed binds (an unknown
// system_id, a wrong password, an address not in allowedIps, an unreadable
// bind). Failures are counted per source (as the unbound caps count it) and
// per system_id. After SlowAfter of them, each further bind waits before its
// password is even checked, Delay doubling with each failure; a source is
// then locked out after LockoutAfter failures, but a system_id never is:
// anyone may name it, so locking it would let anyone lock its customer out.
// Zero values take the defaults named.
type BindFailures struct {
	// Window is how long a failure counts. Default 10m.
	Window time.Duration
	// SlowAfter is how many failures within Window go unhindered. Default
	// 5; negative: binds never wait.
	SlowAfter int
	// Delay is the wait after SlowAfter failures. Default 500ms.
	Delay time.Duration
	// MaxDelay caps the wait of the binds of a source. Default 10s.
	MaxDelay time.Duration
	// MaxSystemIDDelay caps the wait of the binds that name a system_id,
	// from wherever they come. Default 2s.
	MaxSystemIDDelay time.Duration
	// LockoutAfter is how many failures within Window lock a source out.
	// Default 20; negative: never.
	LockoutAfter int
	// Lockout is how long a locked-out source's binds are refused without
	// a password check. Default 10m.
	Lockout time.Duration
}

func (b *BindFailures) setDefaults() {
	def(&b.Window, 10*time.Minute)
	def(&b.Delay, 500*time.Millisecond)
	def(&b.MaxDelay, 10*time.Second)
	def(&b.MaxSystemIDDelay, 2*time.Second)
	def(&b.Lockout, 10*time.Minute)
	if b.SlowAfter == 0 {
		b.SlowAfter = 5
	}
	if b.LockoutAfter == 0 {
		b.LockoutAfter = 20
	}
}

// maxTracked bounds how many sources and how many system_ids the guard
// remembers, so that binds naming ever new system_ids cannot grow it.
const maxTracked = 10000

// bindGuard counts failed binds.
type bindGuard struct {
	policy BindFailures
	now    func() time.Time

	mu      sync.Mutex
	sources map[string]*failures
	systems map[string]*failures
}

// failures are the recent failed binds of one source or system_id.
type failures struct {
	n           int
	last        time.Time
	lockedUntil time.Time
}

func newBindGuard(p BindFailures, now func() time.Time) *bindGuard {
	return &bindGuard{policy: p, now: now, sources: map[string]*failures{}, systems: map[string]*failures{}}
}

// hold says what a bind must go through before its password is checked:
// until when its source is locked out (zero when it is not), else how long
// it waits, and whether the wait is its source's (rather than its
// system_id's).
func (g *bindGuard) hold(source sourceKey, systemID string) (lockedUntil time.Time, wait time.Duration, bySource bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	src := g.recent(g.sources, string(source), now)
	if now.Before(src.lockedUntil) {
		return src.lockedUntil, 0, false
	}
	sys := g.recent(g.systems, systemID, now)
	srcWait := g.delay(src.n, g.policy.MaxDelay)
	sysWait := g.delay(sys.n, g.policy.MaxSystemIDDelay)
	if srcWait >= sysWait {
		return time.Time{}, srcWait, srcWait > 0
	}
	return time.Time{}, sysWait, false
}

// failed counts a failed bind. It returns the source's failures within the
// window, and whether this one locked the source out.
func (g *bindGuard) failed(source sourceKey, systemID string) (n int, lockedOut bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	src := g.track(g.sources, string(source), now)
	sys := g.track(g.systems, systemID, now)
	src.n, src.last = src.n+1, now
	sys.n, sys.last = sys.n+1, now
	if g.policy.LockoutAfter > 0 && src.n >= g.policy.LockoutAfter && !now.Before(src.lockedUntil) {
		src.lockedUntil = now.Add(g.policy.Lockout)
		return src.n, true
	}
	return src.n, false
}

// succeeded forgets the failures of a system_id whose password was given:
// its customer is not made to wait for someone else's guesses any longer.
// Its source's failures stand.
func (g *bindGuard) succeeded(systemID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.systems, systemID)
}

// delay is the wait after n failures.
func (g *bindGuard) delay(n int, ceiling time.Duration) time.Duration {
	over := n - g.policy.SlowAfter
	if g.policy.SlowAfter < 0 || over < 0 {
		return 0
	}
	d := g.policy.Delay
	for ; over > 0 && d < ceiling; over-- {
		d *= 2
	}
	return min(d, ceiling)
}

// recent returns the failures of key within the window (a zero value,
// not stored, when there are none); g.mu is held.
func (g *bindGuard) recent(m map[string]*failures, key string, now time.Time) failures {
	f := m[key]
	if f == nil {
		return failures{}
	}
	if g.stale(f, now) {
		delete(m, key)
		return failures{}
	}
	return *f
}

// track returns the stored failures of key, making room for it when the
// map is full; g.mu is held.
func (g *bindGuard) track(m map[string]*failures, key string, now time.Time) *failures {
	if f := m[key]; f != nil && !g.stale(f, now) {
		return f
	}
	if len(m) >= maxTracked {
		for k, f := range m {
			if g.stale(f, now) {
				delete(m, k)
			}
		}
	}
	if len(m) >= maxTracked {
		for k := range m { // any one: the map is full of live entries
			delete(m, k)
			break
		}
	}
	f := &failures{}
	m[key] = f
	return f
}

// stale reports whether f is older than the window and not locked out.
func (g *bindGuard) stale(f *failures, now time.Time) bool {
	return now.Sub(f.last) > g.policy.Window && !now.Before(f.lockedUntil)
}
