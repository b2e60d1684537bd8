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
// process accepted since then: a message of this process is counted once,
// by the store or by the process, never by both. Between two refreshes another replica's acceptances are not
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

	gauge   *prometheus.GaugeVec
	refused *prometheus.CounterVec
}

// customerBacklog is what this process knows of one customer's backlog.
type customerBacklog struct {
	counted    int64       // the last shared count
	countedAt  time.Time   // when that count was asked for
	refreshing bool        // a count is being read
	accepted   []time.Time // this process's acceptances, recent ones only
	pending    int         // admitted, workflow start not yet answered
}

// NewBacklog returns a Backlog counting with counter.
func NewBacklog(counter BacklogCounter, reg prometheus.Registerer, logger *slog.Logger) (*Backlog, error) {
	b := &Backlog{
		counter: counter, now: time.Now, logger: logger, customers: map[string]*customerBacklog{},
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

// Admit lets one submission of customerID in when the customer's backlog
// is under bound (bound <= 0: no bound). The caller must call done once
// it knows whether the message was accepted (its workflow started).
func (b *Backlog) Admit(ctx context.Context, customerID string, bound int) (done func(accepted bool), err error) {
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
	est := c.estimate(now)
	b.gauge.WithLabelValues(customerID).Set(float64(est))
	if est >= int64(bound) {
		b.refused.WithLabelValues(customerID).Inc()
		return nil, &smsgw.Error{
			Code:       smsgw.ETHROTTLED,
			Message:    fmt.Sprintf("over the account's backlog of %d messages not yet sent; retry later", bound),
			RetryAfter: BacklogRefresh,
		}
	}
	c.pending++
	return func(accepted bool) {
		b.mu.Lock()
		defer b.mu.Unlock()
		c.pending--
		if accepted {
			c.accepted = append(c.accepted, b.now())
		}
	}, nil
}

// estimate is the shared count plus what this process accepted since the
// count was taken (or shortly before, which the count may have missed), plus
// what it is admitting now.
func (c *customerBacklog) estimate(now time.Time) int64 {
	since := c.countedAt.Add(-visibilityLag)
	keep := 0
	for keep < len(c.accepted) && c.accepted[keep].Before(since) {
		keep++
	}
	c.accepted = c.accepted[keep:]
	return c.counted + int64(len(c.accepted)) + int64(c.pending)
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
	b.gauge.WithLabelValues(customerID).Set(float64(c.estimate(b.now())))
}
