package activities

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/promreg"
)

// RecentDeliveries remembers, in this process, the notifications it has
// delivered lately. A local activity runs again when the workflow task that
// ran it could not complete: an event (a timer firing, a late signal)
// arrived while it ran, or the task timed out on a starved worker. The
// task runs again on the same worker (its sticky queue), and the
// notification it already delivered must not go out twice. Only a crash of
// the process between delivery and the task's completion still repeats one
// (receivers drop repeats by messageId and seq).
type RecentDeliveries struct {
	mu      sync.Mutex
	at      map[string]time.Time
	order   []string // keys in the order they were added, for expiry
	keep    time.Duration
	max     int
	skipped prometheus.Counter
}

// NewRecentDeliveries keeps deliveries for keep, at most max of them.
func NewRecentDeliveries(keep time.Duration, max int, reg prometheus.Registerer) (*RecentDeliveries, error) {
	r := &RecentDeliveries{at: map[string]time.Time{}, keep: keep, max: max,
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smsgw_notifications_repeats_skipped_total",
			Help: "Notifications not delivered again because this process had delivered them for a workflow task that then ran again.",
		})}
	var err error
	if r.skipped, err = promreg.Register(reg, r.skipped); err != nil {
		return nil, err
	}
	return r, nil
}

// deliveryKey names one notification on one channel.
func deliveryKey(d smsgw.Delivery) string {
	id, what := d.Subject()
	seq := 0
	if d.Notification != nil {
		seq = d.Notification.Seq
	}
	return id + "\x00" + what + "\x00" + strconv.Itoa(seq) + "\x00" + d.Channel + "\x00" + d.Redelivers
}

// delivered reports whether d went out from this process lately, and
// counts the repeat it saves.
func (r *RecentDeliveries) delivered(d smsgw.Delivery, now time.Time) bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire(now)
	if _, ok := r.at[deliveryKey(d)]; ok {
		r.skipped.Inc()
		return true
	}
	return false
}

// add remembers that d went out.
func (r *RecentDeliveries) add(d smsgw.Delivery, now time.Time) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := deliveryKey(d)
	if _, ok := r.at[key]; !ok {
		r.order = append(r.order, key)
	}
	r.at[key] = now
	r.expire(now)
}

func (r *RecentDeliveries) expire(now time.Time) {
	drop := 0
	for drop < len(r.order) && (len(r.order)-drop > r.max || now.Sub(r.at[r.order[drop]]) > r.keep) {
		delete(r.at, r.order[drop])
		drop++
	}
	r.order = r.order[drop:]
}
