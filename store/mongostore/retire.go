package mongostore

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultRetireEvery is how often the correlations of messages that have
// ended move to the archive when no WithRetireEvery option is given.
const DefaultRetireEvery = time.Second

// retireBatch is the most message IDs one move names; more (after the
// server was away) go in several.
const retireBatch = 1000

// retireTimeout bounds one periodic retirement.
const retireTimeout = 30 * time.Second

// closeRetireTimeout bounds the retirement at Close (within closeTimeout,
// leaving the rest to the disconnect): with the server away what stays
// queued goes with the correlation TTL.
const closeRetireTimeout = 5 * time.Second

// WithRetireEvery sets how often the correlations of ended messages move
// to the archive, all of them at once (DefaultRetireEvery when not given).
func WithRetireEvery(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.retireEvery = d
		}
	}
}

// retirer moves the correlations of messages that have ended into the
// archive (retireCorrelations), for all the messages that ended since the
// last time at once.
//
// The move selects by message ID, which no server without an index on it
// (FerretDB on SQLite) answers without reading the whole collection: once
// for every message would cost as much as the rest of the message's store
// work together, and the archive entry written at the send cost an insert
// on the send's path. Deferred, a correlation stays in the collection
// for up to a period after its message ended; a receipt that finds it
// finds its message ended and is parked (upstream.Matcher), as it would be
// had the correlation gone already. Every read on the message's
// path is by _id, so the few ended ones left in the collection cost those
// reads nothing. A move that fails is tried again the next period; what
// a crash leaves is removed with the correlation TTL (ExpireCorrelations
// or the server's TTL index).
type retirer struct {
	store *Store
	every time.Duration

	mu      sync.Mutex
	pending []string // message IDs whose correlations are to go
	// flushing lets one flush run at a time, so RetireEnded returns only
	// once what was queued before it has moved (or failed).
	flushing sync.Mutex
	// ctx is cancelled at close, ending a periodic retirement under way.
	ctx     context.Context
	stop    context.CancelFunc
	done    chan struct{}
	closing sync.Once
}

func newRetirer(s *Store, every time.Duration) *retirer {
	ctx, stop := context.WithCancel(context.Background())
	r := &retirer{store: s, every: every, ctx: ctx, stop: stop, done: make(chan struct{})}
	go r.run()
	return r
}

// add queues the correlations of messages that have ended.
func (r *retirer) add(messageIDs []string) {
	r.mu.Lock()
	r.pending = append(r.pending, messageIDs...)
	r.mu.Unlock()
}

// flush retires what is queued now, and returns its error.
func (r *retirer) flush(ctx context.Context) error {
	r.flushing.Lock()
	defer r.flushing.Unlock()
	r.mu.Lock()
	ids := r.pending
	r.pending = nil
	r.mu.Unlock()
	for len(ids) > 0 {
		n := min(len(ids), retireBatch)
		if err := r.store.retireCorrelations(ctx, ids[:n]); err != nil {
			r.add(ids) // the next period tries them again
			return err
		}
		ids = ids[n:]
	}
	return nil
}

func (r *retirer) run() {
	defer close(r.done)
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(r.ctx, retireTimeout)
		if err := r.flush(ctx); err != nil && r.ctx.Err() == nil { // at close, close tries again
			r.store.log.Warn("retiring the correlations of ended messages; tried again next period", "err", err)
		}
		cancel()
	}
}

// close stops the periodic retirement, ending one under way, and retires
// what is still queued, for at most closeRetireTimeout. Calls after the
// first do nothing.
func (r *retirer) close(ctx context.Context) {
	r.closing.Do(func() {
		r.stop()
		<-r.done
		ctx, cancel := context.WithTimeout(ctx, closeRetireTimeout)
		defer cancel()
		if err := r.flush(ctx); err != nil {
			r.store.log.Warn("retiring the correlations of ended messages at close; the correlation TTL removes them", "err", err)
		}
	})
}

// RetireEnded moves now the correlations of the messages that have ended
// since the last retirement into the archive, which otherwise happens
// every period (WithRetireEvery) and at Close.
func (s *Store) RetireEnded(ctx context.Context) error {
	if err := s.retire.flush(ctx); err != nil {
		return fmt.Errorf("mongostore: %w", err)
	}
	return nil
}
