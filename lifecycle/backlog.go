package lifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/internal/promreg"
	"github.com/smsgw/smsgw/workflows"
)

// Admission control: each customer may have at most a bound of messages
// accepted, due and not yet handed upstream. Above it a submission is
// refused (ETHROTTLED, with a time to retry after) instead of joining a
// backlog that would only grow while the load lasts.
//
// The count is shared by every replica: it is read from Temporal's
// visibility store (running message workflows of the customer whose status
// is still ACCEPTED and whose DueAt has come, started before the last
// visibilityLag), refreshed at most once per BacklogRefresh, plus what this
// process accepted since then and has not yet handed upstream itself: a
// message of this process is counted once, by the store or by the process,
// never by both. Between two refreshes another replica's acceptances are not
// seen, so all replicas together may go over the bound by what they accept
// in one refresh interval (and in the visibility store's lag); docs/capacity.md
// has the figures.

// BacklogCounter counts a customer's messages accepted before
// startedBefore, due at now and not yet handed upstream.
type BacklogCounter interface {
	CountBacklog(ctx context.Context, customerID string, now, startedBefore time.Time) (int64, error)
}

// TemporalBacklog counts from the visibility store.
type TemporalBacklog struct {
	Client    client.Client
	Namespace string
}

// CountBacklog implements BacklogCounter.
func (t TemporalBacklog) CountBacklog(ctx context.Context, customerID string, now, startedBefore time.Time) (int64, error) {
	resp, err := t.Client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: t.Namespace,
		Query:     BacklogQuery(customerID, now, startedBefore),
	})
	if err != nil {
		return 0, fmt.Errorf("count the backlog of %s: %w", customerID, err)
	}
	return resp.GetCount(), nil
}

// BacklogQuery is the visibility query of a customer's backlog at now,
// of the messages accepted before startedBefore.
func BacklogQuery(customerID string, now, startedBefore time.Time) string {
	return fmt.Sprintf("WorkflowType = %q AND ExecutionStatus = 'Running' AND StartTime < %q AND %s = %q AND %s = %q AND %s <= %q",
		"MessageWorkflow", startedBefore.UTC().Format(time.RFC3339Nano),
		workflows.SearchCustomerID.GetName(), customerID,
		workflows.SearchMessageStatus.GetName(), string(smsgw.StatusAccepted),
		workflows.SearchDueAt.GetName(), now.UTC().Format(time.RFC3339Nano))
}

// BacklogRefresh is how often a customer's shared count is read again
// while the customer submits.
const BacklogRefresh = time.Second

// visibilityLag is how long after its start a workflow may be missing from
// the visibility store: the count leaves out workflows started that
// recently, and the process adds its own acceptances of that time (another
// replica's are not seen until the next count).
const visibilityLag = 2 * time.Second

// Backlog admits or refuses submissions by the customers' backlogs.
type Backlog struct {
	counter BacklogCounter
	now     func() time.Time
	logger  *slog.Logger

	mu        sync.Mutex
	customers map[string]*customerBacklog
	own       map[string]*admission // this process's recent admissions, by message ID

	gauge   *prometheus.GaugeVec
	refused *prometheus.CounterVec
}

// customerBacklog is what this process knows of one customer's backlog.
type customerBacklog struct {
	counted    int64        // the last shared count
	countedAt  time.Time    // when that count was asked for
	refreshing bool         // a count is being read
	own        []*admission // this process's admissions, in order, recent ones only
	waiting    int64        // of own: admitted and not yet handed upstream
}

// admission is one message this process let in.
type admission struct {
	id         string
	customer   *customerBacklog
	acceptedAt time.Time // zero while its workflow start is not answered
	handed     bool      // handed upstream by this process, or not started
}

// NewBacklog returns a Backlog counting with counter.
func NewBacklog(counter BacklogCounter, reg prometheus.Registerer, logger *slog.Logger) (*Backlog, error) {
	b := &Backlog{
		counter: counter, now: time.Now, logger: logger, customers: map[string]*customerBacklog{}, own: map[string]*admission{},
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "smsgw_customer_backlog",
			Help: "Messages of a customer accepted, due and not yet handed upstream, as this process last counted them (shared count plus its own recent acceptances).",
		}, []string{"customer"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsgw_backlog_refusals_total",
			Help: "Submissions refused because the customer's backlog was at its bound.",
		}, []string{"customer"}),
	}
	var err error
	if b.gauge, err = promreg.Register(reg, b.gauge); err != nil {
		return nil, err
	}
	if b.refused, err = promreg.Register(reg, b.refused); err != nil {
		return nil, err
	}
	return b, nil
}

// Admit lets message messageID of customerID in when the customer's
// backlog is under bound (bound <= 0: no bound). The caller must call done
// once it knows whether the message was accepted (its workflow started).
func (b *Backlog) Admit(ctx context.Context, customerID, messageID string, bound int) (done func(accepted bool), err error) {
	if bound <= 0 {
		return func(bool) {}, nil
	}
	b.mu.Lock()
	c := b.customers[customerID]
	if c == nil {
		c = &customerBacklog{}
		b.customers[customerID] = c
	}
	first := c.countedAt.IsZero() && !c.refreshing
	b.mu.Unlock()

	if first {
		b.refresh(ctx, customerID, c) // the first submission waits for a count
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if !c.refreshing && now.Sub(c.countedAt) >= BacklogRefresh {
		c.refreshing = true
		go b.refresh(context.WithoutCancel(ctx), customerID, c)
	}
	est := b.estimate(c, now)
	b.gauge.WithLabelValues(customerID).Set(float64(est))
	if est >= int64(bound) {
		b.refused.WithLabelValues(customerID).Inc()
		return nil, &smsgw.Error{
			Code:       smsgw.ETHROTTLED,
			Message:    fmt.Sprintf("over the account's backlog of %d messages not yet sent; retry later", bound),
			RetryAfter: BacklogRefresh,
		}
	}
	a := &admission{id: messageID, customer: c}
	c.own = append(c.own, a)
	c.waiting++
	if messageID != "" {
		b.own[messageID] = a
	}
	return func(accepted bool) {
		b.mu.Lock()
		defer b.mu.Unlock()
		a.acceptedAt = b.now()
		if !accepted {
			b.leave(a) // nothing was accepted; trimmed with the rest
		}
	}, nil
}

// Handed tells the backlog that this process handed message messageID
// upstream: it leaves the process's own count at once instead of when the
// shared count takes it over (where it stays until its status moves on).
// A message this process did not admit, or admitted long ago, is ignored.
func (b *Backlog) Handed(messageID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a := b.own[messageID]; a != nil {
		b.leave(a)
	}
}

// leave takes a out of the own count. b.mu is held.
func (b *Backlog) leave(a *admission) {
	if !a.handed {
		a.handed = true
		a.customer.waiting--
	}
}

// estimate is the shared count plus what this process admitted since the
// count was taken (or shortly before, which the count may have missed) and
// has not handed upstream. b.mu is held.
func (b *Backlog) estimate(c *customerBacklog, now time.Time) int64 {
	since := c.countedAt.Add(-visibilityLag)
	keep := 0
	for keep < len(c.own) {
		a := c.own[keep]
		if a.acceptedAt.IsZero() || !a.acceptedAt.Before(since) {
			break // still starting, or recent enough for the count to miss it
		}
		b.leave(a)
		if b.own[a.id] == a {
			delete(b.own, a.id)
		}
		keep++
	}
	clear(c.own[:keep])
	c.own = c.own[keep:]
	return c.counted + c.waiting
}

// refresh reads the shared count. A failed read keeps the last count: a
// Temporal that cannot count cannot start workflows either, and the
// submission answers EUNAVAILABLE for that.
func (b *Backlog) refresh(ctx context.Context, customerID string, c *customerBacklog) {
	b.mu.Lock()
	c.refreshing = true
	b.mu.Unlock()
	at := b.now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := b.counter.CountBacklog(ctx, customerID, at, at.Add(-visibilityLag))

	b.mu.Lock()
	defer b.mu.Unlock()
	c.refreshing = false
	if err != nil {
		b.logger.Warn("backlog not counted", "customer", customerID, "err", err)
		if c.countedAt.IsZero() {
			c.countedAt = at // retried after BacklogRefresh, not on every submission
		}
		return
	}
	c.counted, c.countedAt = n, at
	b.gauge.WithLabelValues(customerID).Set(float64(b.estimate(c, b.now())))
}
