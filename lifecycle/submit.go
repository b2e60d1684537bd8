package lifecycle

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/time/rate"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/activities"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/routing"
	"github.com/smsgw/smsgw/workflows"
)

// Counter tells how a text will be encoded and into how many parts.
type Counter interface {
	Count(text, customerID string) (encoding string, segments int, err error)
}

// Service is the gateway's smsgw.Submitter.
type Service struct {
	temporal   client.Client
	dc         converter.DataConverter
	config     *config.Live
	messages   smsgw.MessageReader
	routes     *routing.Cache
	counter    Counter
	planner    *activities.Planner
	health     *Health
	eagerStart bool
	sendHere   bool
	limits     limits
	backlog    *Backlog
	maxBacklog int
	ledger     smsgw.Ledger
	alerts     *BalanceAlerts
	admitter   smsgw.Admitter
	refusals   smsgw.RefusalCounter
	now        func() time.Time
	logger     *slog.Logger
	results    *prometheus.CounterVec
}

// Options configure a Service.
type Options struct {
	Temporal client.Client
	// DataConverter is the one Temporal's client has, to read memos back.
	// Nil: the SDK's default.
	DataConverter converter.DataConverter
	Config        *config.Live
	Counter       Counter
	// Planner, when set, routes and encodes each message once, here, and
	// its workflow takes the plan along; without it the workflow plans.
	Planner *activities.Planner
	// Messages reads a message back: its owner before it is cancelled or
	// replaced, and its state for a repeated idempotency key. Nil reads
	// only the workflow (a Reader without Reports).
	Messages smsgw.MessageReader
	Health   *Health // nil: no check before accepting
	// Backlog, when set, refuses a customer's submissions while it has
	// MaxBacklog messages (or its own maxBacklog) accepted and not yet sent.
	Backlog    *Backlog
	MaxBacklog int
	// Ledger, when set, bills the customers a price list applies to: a
	// prepaid customer's message is reserved for here, before its
	// workflow starts (billing.go).
	Ledger smsgw.Ledger
	// Alerts, when set, tells customers of low balances (billing.go).
	Alerts *BalanceAlerts
	// Admitter, when set, checks each submission against the opt-out list
	// and the rules before it is planned: it may refuse it, rewrite its
	// sender or have its workflow hold it for review.
	Admitter smsgw.Admitter
	// Refusals, when set, counts the submissions the rules or the balance
	// refuse, for the usage reports (best effort: a failure is logged).
	Refusals smsgw.RefusalCounter
	// EagerStart asks Temporal to hand the first workflow task straight to a
	// worker in this process; set it when this process also runs the worker.
	EagerStart bool
	// SendHere asks each message's workflow to send from the process that
	// runs it when that process holds the connector bound
	// (workflows.MessageInput.SendHere); set it when this process also
	// runs the worker and the connectors.
	SendHere   bool
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// New returns a Service.
func New(o Options) *Service {
	s := &Service{
		temporal: o.Temporal, dc: dataConverter(o.DataConverter), config: o.Config, messages: o.Messages, routes: routing.NewCache(o.Config), counter: o.Counter, planner: o.Planner, health: o.Health,
		eagerStart: o.EagerStart, sendHere: o.SendHere, now: time.Now, logger: o.Logger, backlog: o.Backlog, maxBacklog: o.MaxBacklog, ledger: o.Ledger, alerts: o.Alerts, admitter: o.Admitter,
		refusals: o.Refusals,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smsgw_submissions_total",
			Help: "Submissions by entry point and result (accepted, duplicate, conflict, invalid, forbidden, throttled, payment_required, unavailable, unknown, error).",
		}, []string{"entry_point", "result"}),
	}
	if s.messages == nil {
		s.messages = &Reader{Temporal: o.Temporal, DataConverter: o.DataConverter}
	}
	if o.Planner != nil {
		s.routes = o.Planner.Routes // one route table per process
	}
	o.Registerer.MustRegister(s.results)
	return s
}

// Submit implements smsgw.Submitter.
func (s *Service) Submit(ctx context.Context, m smsgw.Message) (smsgw.Accepted, error) {
	acc, err := s.submit(ctx, m)
	result := "accepted"
	switch {
	case err != nil && smsgw.ErrorCode(err) == smsgw.EINVALID:
		result = "invalid"
	case err != nil && smsgw.ErrorCode(err) == smsgw.EUNAVAILABLE:
		result = "unavailable"
	case err != nil && smsgw.ErrorCode(err) == smsgw.ETHROTTLED:
		result = "throttled"
	case err != nil && smsgw.ErrorCode(err) == smsgw.ECONFLICT:
		result = "conflict"
	case err != nil && smsgw.ErrorCode(err) == smsgw.EUNKNOWN:
		result = "unknown"
	case err != nil && smsgw.ErrorCode(err) == smsgw.EPAYMENT:
		result = "payment_required"
	case err != nil && smsgw.ErrorCode(err) == smsgw.EFORBIDDEN:
		result = "forbidden"
	case err != nil:
		result = "error"
	case acc.Existing:
		result = "duplicate"
	}
	s.results.WithLabelValues(string(m.EntryPoint), result).Inc()
	return acc, err
}

func (s *Service) submit(ctx context.Context, m smsgw.Message) (smsgw.Accepted, error) {
	customer, ok := s.config.Customer(m.CustomerID)
	if !ok {
		return smsgw.Accepted{}, smsgw.Errorf(smsgw.EUNAUTHORIZED, "unknown customer")
	}
	if err := m.Validate(); err != nil {
		return smsgw.Accepted{}, err
	}
	// A callback URL that could never be posted to is refused now, not
	// found out when the first notification fails.
	if m.CallbackURL != "" {
		if err := s.config.Config().WebhookPolicy().CheckURL(m.CallbackURL); err != nil {
			return smsgw.Accepted{}, smsgw.Errorf(smsgw.EINVALID, "callbackUrl %v", err)
		}
	}
	cfg, _ := s.customerConfig(customer.ID)
	if !cfg.SenderAllowed(m.From) {
		return smsgw.Accepted{}, smsgw.Errorf(smsgw.EINVALID, "from %q is not one of the customer's allowed senders", m.From)
	}
	if !s.limits.allow(customer.ID, cfg.TPS) {
		return smsgw.Accepted{}, smsgw.Errorf(smsgw.ETHROTTLED, "over the account's limit of %g submissions per second", cfg.TPS)
	}
	m.To, _ = smsgw.NormalizeMSISDN(m.To)
	// The request as the customer sent it, before defaults are filled in:
	// a retry without a validity is the same request even if the
	// customer's default has changed meanwhile.
	key := m.IdempotencyKey
	if key == "" && m.SubmissionRef != "" {
		key = "submission\x00" + m.SubmissionRef
	}
	var fp string
	if key != "" {
		fp = fingerprint(m, key)
	}
	if m.Validity == 0 {
		m.Validity = smsgw.DefaultValidity
		if cv := s.customerValidity(customer.ID); cv > 0 {
			m.Validity = cv
		}
	}
	m.AcceptedAt = s.now().UTC()
	if key != "" {
		m.ID = idempotentID(m.CustomerID, key)
	} else {
		m.ID = newID(m.AcceptedAt)
	}
	// A submission repeated under the customer's idempotency key (a retry
	// after a lost answer, an SMTP retry after a 451) is answered with the
	// message the first one made, before the rules or the balance judge it
	// as a new one and before anything is counted. It costs a keyed
	// submission one look-up of its workflow; the others (SMPP's, whose
	// key only names a submit_sm, and those without a key) none.
	lookedUp := false
	if m.IdempotencyKey != "" {
		acc, found, err := s.existing(ctx, m, fp, true)
		switch {
		case found:
			return acc, err
		case err != nil:
			// Not told: the start below finds the message if it exists.
			s.logger.Debug("repeat not looked up before the rules", "customer", m.CustomerID, "message", m.ID, "err", err)
		default:
			lookedUp = true
		}
	}
	admission, undo, err := s.admitRules(ctx, m)
	if err != nil {
		// A refused submission under a key that was not looked up may
		// still repeat an accepted message: it is answered with it.
		if key != "" && !lookedUp && smsgw.ErrorReason(err) != "" {
			if acc, found, lerr := s.existing(ctx, m, fp, false); found {
				return acc, lerr
			}
		}
		s.countRefusal(ctx, m, smsgw.ErrorReason(err))
		return smsgw.Accepted{}, err
	}
	// Whatever refuses the message from here on, or finds it a repeat,
	// takes it back from the rules' counts.
	counted := false
	defer func() {
		if !counted {
			undo()
		}
	}()
	if admission != nil && admission.From != "" {
		m.From = admission.From
	}
	plan, encoding, segments, err := s.plan(m)
	if err != nil {
		return smsgw.Accepted{}, err
	}
	if s.health != nil {
		if err := s.health.Check(ctx); err != nil {
			return smsgw.Accepted{}, err
		}
	}

	if !m.ScheduleAt.IsZero() && !m.ScheduleAt.Before(m.AcceptedAt.Add(m.Validity)) {
		return smsgw.Accepted{}, smsgw.Errorf(smsgw.EINVALID, "scheduled delivery %s is not before the end of validity %s",
			m.ScheduleAt.UTC().Format(time.RFC3339), m.AcceptedAt.Add(m.Validity).Format(time.RFC3339))
	}
	if !m.ScheduleAt.IsZero() {
		plan = nil // its workflow plans it, and records it as accepted while it waits
	}
	charge, err := s.charge(m, cfg, segments)
	if err != nil {
		return smsgw.Accepted{}, err
	}
	admitted, err := s.admit(ctx, m.CustomerID, m.ID, cfg.MaxBacklog)
	if err != nil {
		return smsgw.Accepted{}, err
	}
	reserved, err := s.reserve(ctx, m, charge)
	if err != nil {
		admitted(false)
		return smsgw.Accepted{}, err
	}
	acc := smsgw.Accepted{ID: m.ID, Status: smsgw.StatusAccepted, Segments: segments, Encoding: encoding}
	memo := workflows.SubmissionMemo{Fingerprint: fp, Encoding: encoding, Segments: segments, ClientRef: m.ClientRef}
	start := func(ctx context.Context) error {
		_, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                    m.ID,
			TaskQueue:             workflows.TaskQueue,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
			// An ID seen before (a repeated idempotency key) answers with the first message.
			WorkflowExecutionErrorWhenAlreadyStarted: true,
			TypedSearchAttributes:                    workflows.StartAttributes(m),
			Memo:                                     map[string]any{workflows.MemoSubmission: memo},
			EnableEagerStart:                         s.eagerStart,
			StaticSummary:                            "message from " + m.CustomerID + " via " + string(m.EntryPoint),
		}, workflows.MessageWorkflow, workflows.MessageInput{Message: m, Plan: plan, Charge: charge, Admission: admission, SendHere: s.sendHere})
		return err
	}
	// The message's ID is its own (random, or derived from the key), so a
	// start tried again finds the workflow a lost answer started.
	unsure, err := startAgainIfUnsure(ctx, start, key != "")
	admitted(err == nil)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &already) && key == "":
		counted = true
		return acc, nil // started by a try whose answer was lost
	case errors.As(err, &already):
		// Another submission's message, unless a try of this one, whose
		// answer was lost, started it: then it stays counted.
		counted = unsure
		return s.repeated(ctx, m, fp)
	case err != nil && unsure:
		// A refusal would be a lie: a try may have started the message,
		// and it stays counted.
		counted = true
		s.logger.Warn("message may have been accepted: its workflow start was not answered", "customer", m.CustomerID, "message", m.ID, "err", err)
		return smsgw.Accepted{ID: m.ID}, &smsgw.Error{Code: smsgw.EUNKNOWN, Err: err, Message: fmt.Sprintf(
			"the workflow engine did not answer in time: message %s may have been accepted; look it up (GET /v1/messages/%s) before submitting it again", m.ID, m.ID)}
	case err != nil:
		s.logger.Error("message not accepted: workflow start failed", "customer", m.CustomerID, "err", err)
		s.unreserve(ctx, m, charge, reserved)
		return smsgw.Accepted{}, smsgw.Unavailable("workflow engine", err)
	}
	counted = true
	return acc, nil
}

// admitRules is the one place where the admission rules see a submission,
// before it is planned and before it costs anything. The decision goes to
// the workflow only when a rule matched, so a message no rule touches
// starts as it always has. undo takes the submission back from the rules'
// counts; it is never nil when err is nil.
func (s *Service) admitRules(ctx context.Context, m smsgw.Message) (adm *smsgw.Admission, undo func(), err error) {
	if s.admitter == nil {
		return nil, func() {}, nil
	}
	a, undo, err := s.admitter.Admit(ctx, m)
	if err != nil {
		return nil, nil, err
	}
	if undo == nil {
		undo = func() {}
	}
	if len(a.Matches) == 0 && a.Hold == nil && a.From == "" {
		return nil, undo, nil
	}
	return &a, undo, nil
}

// countRefusal counts a refusal of m for the usage reports, when the
// refusal has a reason (a rule's, or the balance's): the count is best
// effort, so a failure to write it is logged and the refusal answered
// all the same.
func (s *Service) countRefusal(ctx context.Context, m smsgw.Message, reason string) {
	if s.refusals == nil || reason == "" {
		return
	}
	if err := s.refusals.CountRefusal(ctx, m.CustomerID, reason, m.AcceptedAt); err != nil {
		s.logger.Warn("refusal not counted in the usage reports", "customer", m.CustomerID, "reason", reason, "err", err)
	}
}

// admit asks the backlog to let one more message of the customer in: its
// own bound when set (-1: none), else the gateway's.
func (s *Service) admit(ctx context.Context, customerID, messageID string, bound int) (done func(accepted bool), err error) {
	if s.backlog == nil || bound < 0 {
		return func(bool) {}, nil
	}
	if bound == 0 {
		bound = s.maxBacklog
	}
	return s.backlog.Admit(ctx, customerID, messageID, bound)
}

// startAgainIfUnsure runs the start of a workflow whose ID belongs to the
// submission, and runs it again when it failed without saying whether the
// workflow exists (its answer timed out or was lost with the connection):
// the workflow may have been started. Each try leaves a share of ctx's
// time for the next, which starts the workflow or finds it
// (WorkflowExecutionAlreadyStarted), so the submission is answered with
// the message it made instead of an error. unsure reports that a try
// ended without an answer: when every try failed, the workflow may exist.
//
// Only a try that was not answered is tried again, unless everyError: a
// submission with an idempotency key, whose customer would retry it
// anyway, is also tried again after a refusal (Temporal unreachable), until
// ctx ends; one without is refused at once.
func startAgainIfUnsure(ctx context.Context, start func(context.Context) error, everyError bool) (unsure bool, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTriesFor)
		defer cancel()
	}
	wait := 100 * time.Millisecond
	for {
		tryCtx, cancel := ctx, context.CancelFunc(func() {})
		if deadline, ok := ctx.Deadline(); ok {
			if left := time.Until(deadline); left > time.Second {
				tryCtx, cancel = context.WithTimeout(ctx, left-min(left/3, 3*time.Second))
			}
		}
		err = start(tryCtx)
		cancel()
		unsure = unsure || unanswered(err)
		var already *serviceerror.WorkflowExecutionAlreadyStarted
		var invalid *serviceerror.InvalidArgument
		if err == nil || errors.As(err, &already) || errors.As(err, &invalid) || ctx.Err() != nil || !everyError && !unanswered(err) {
			return unsure, err
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait+100*time.Millisecond {
			return unsure, err
		}
		select {
		case <-ctx.Done():
			return unsure, err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// startTriesFor bounds the tries of a start whose caller set no deadline.
const startTriesFor = 10 * time.Second

// unanswered tells an error that leaves a request's outcome unknown (its
// answer did not come in time, or its connection went while it waited)
// from a refusal.
func unanswered(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var deadline *serviceerror.DeadlineExceeded
	var canceled *serviceerror.Canceled
	return errors.As(err, &deadline) || errors.As(err, &canceled)
}

// existing looks up the message a keyed submission's ID names, by its
// workflow (the message exists from the moment its workflow does). found
// says it exists: then acc and err are repeated's answer. found false with
// err nil says there is no such message; with an error, that the look-up
// failed and cannot tell. A bounded look-up takes at most a third of ctx's
// time, and at most lookUpFor, so the submission keeps time to start its
// message should the look-up not be answered.
func (s *Service) existing(ctx context.Context, m smsgw.Message, fp string, bounded bool) (acc smsgw.Accepted, found bool, err error) {
	lookCtx, cancel := ctx, context.CancelFunc(func() {})
	if bounded {
		limit := lookUpFor
		if deadline, ok := ctx.Deadline(); ok {
			limit = min(limit, time.Until(deadline)/3)
		}
		lookCtx, cancel = context.WithTimeout(ctx, limit)
	}
	desc, err := s.temporal.DescribeWorkflowExecution(lookCtx, m.ID, "")
	cancel()
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return smsgw.Accepted{}, false, nil
	case err != nil:
		return smsgw.Accepted{}, false, fmt.Errorf("look up message %s: %w", m.ID, err)
	}
	acc, err = s.answerRepeat(ctx, m, fp, desc)
	return acc, true, err
}

// lookUpFor bounds the look-up of a keyed submission's message before its
// rules.
const lookUpFor = 2 * time.Second

// repeated answers a submission whose idempotency key names a message that
// exists: with that message as it is now, if the request is the one that
// created it, and with ECONFLICT if the key was used for another request.
func (s *Service) repeated(ctx context.Context, m smsgw.Message, fp string) (smsgw.Accepted, error) {
	desc, err := s.temporal.DescribeWorkflowExecution(ctx, m.ID, "")
	if err != nil {
		return smsgw.Accepted{}, smsgw.Unavailable("workflow engine", err)
	}
	return s.answerRepeat(ctx, m, fp, desc)
}

// answerRepeat is repeated's answer, from the message's workflow as
// described.
func (s *Service) answerRepeat(ctx context.Context, m smsgw.Message, fp string, desc *workflowservice.DescribeWorkflowExecutionResponse) (smsgw.Accepted, error) {
	// A message accepted before fingerprints were kept has none, and is
	// taken to be the same request.
	memo, err := submissionMemo(s.dc, desc.GetWorkflowExecutionInfo())
	if err != nil {
		return smsgw.Accepted{}, smsgw.Unavailable("workflow engine", err)
	}
	if stored := memo.Fingerprint; stored != "" && stored != fp {
		return smsgw.Accepted{}, smsgw.Errorf(smsgw.ECONFLICT,
			"the idempotency key %q was already used for message %s with another request (from, to, text, callbackUrl, validity, schedule or clientRef differ); send a new message under a new key",
			m.IdempotencyKey, m.ID)
	}
	rec, err := s.messages.GetMessage(ctx, m.ID)
	if err != nil {
		return smsgw.Accepted{}, err
	}
	if rec.CustomerID != m.CustomerID {
		return smsgw.Accepted{}, smsgw.Errorf(smsgw.ECONFLICT, "the idempotency key %q names another customer's message", m.IdempotencyKey)
	}
	return smsgw.Accepted{ID: m.ID, Status: rec.Status, Segments: rec.Segments, Encoding: rec.Encoding, Existing: true}, nil
}

// fingerprint is a hash of the request an idempotency key names, as
// normalised by Submit (destination in E.164, validity as requested),
// keyed with the customer and the key, so the memo it is kept in does not
// let anyone test guesses at a message's number or text. The entry point
// is left out: the same request retried over gRPC instead of REST is the
// same message.
func fingerprint(m smsgw.Message, key string) string {
	canonical, _ := json.Marshal(struct {
		From, To, Text, CallbackURL string
		Validity                    time.Duration
		ScheduleAt                  int64
		Receipt, FailureOnly        bool
		ClientRef                   string `json:",omitempty"` // left out when empty: older fingerprints stand
	}{
		m.From, m.To, m.Text, m.CallbackURL, m.Validity, scheduleNanos(m.ScheduleAt),
		m.ReceiptRequested, m.ReceiptOnFailureOnly, m.ClientRef,
	})
	mac := hmac.New(sha256.New, []byte(m.CustomerID+"\x00"+key))
	mac.Write(canonical)
	return "v1:" + hex.EncodeToString(mac.Sum(nil))
}

func scheduleNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// plan routes and encodes a message as its workflow will send it, once:
// the workflow takes the plan along. A message that has no route or cannot
// be encoded is refused (EINVALID). Without a Planner the message is only
// checked, and its workflow plans it.
func (s *Service) plan(m smsgw.Message) (plan *activities.PrepareResult, encoding string, segments int, err error) {
	if s.planner == nil {
		if _, err := s.routes.Match(routing.Request{MessageID: m.ID, CustomerID: m.CustomerID, From: m.From, To: m.To, At: s.now()}); err != nil {
			return nil, "", 0, err
		}
		encoding, segments, err := s.counter.Count(m.Text, m.CustomerID)
		if err != nil {
			return nil, "", 0, smsgw.Errorf(smsgw.EINVALID, "text: %v", err)
		}
		return nil, encoding, segments, nil
	}
	p, err := s.planner.Plan(m)
	var pe *activities.PlanError
	switch {
	case errors.As(err, &pe) && pe.Type == activities.ErrTypeNoRoute:
		return nil, "", 0, pe.Err
	case err != nil:
		return nil, "", 0, smsgw.Errorf(smsgw.EINVALID, "text: %v", err)
	}
	return &p, p.Encoding, len(p.Parts), nil
}

func (s *Service) customerValidity(id string) time.Duration {
	c, _ := s.customerConfig(id)
	return c.Validity
}

func (s *Service) customerConfig(id string) (config.Customer, bool) {
	return s.config.Config().Customer(id)
}

// limits holds a token bucket per customer, for the customer's tps across
// every entry point of this process. A changed tps takes effect at once.
type limits struct {
	mu sync.Mutex
	by map[string]*rate.Limiter
}

func (l *limits) allow(customerID string, tps float64) bool {
	if tps <= 0 {
		return true
	}
	l.mu.Lock()
	lim := l.by[customerID]
	if lim == nil || float64(lim.Limit()) != tps {
		lim = rate.NewLimiter(rate.Limit(tps), max(1, int(tps)))
		if l.by == nil {
			l.by = map[string]*rate.Limiter{}
		}
		l.by[customerID] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}

// newID returns a time-ordered message ID: 48 bits of milliseconds and 80
// random bits, in 32 hex digits.
func newID(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	_, _ = rand.Read(b[6:])
	return hex.EncodeToString(b[:])
}

// idempotentID derives a message ID from a customer's idempotency key, so the
// same key from the same customer always names the same message.
func idempotentID(customerID, key string) string {
	h := sha256.Sum256([]byte(customerID + "\x00" + key))
	return hex.EncodeToString(h[:16])
}

// Health checks the stores a message will need before it is accepted, so the
// API answers 503 instead of accepting what it cannot keep. Results are cached
// for a short time to keep the check off the hot path.
type Health struct {
	checks map[string]func(context.Context) error
	names  []string
	ttl    time.Duration

	mu      sync.Mutex
	checked time.Time
	last    error
}

// NewHealth returns a Health over named checks (for example "event store").
func NewHealth(ttl time.Duration) *Health {
	return &Health{checks: map[string]func(context.Context) error{}, ttl: ttl}
}

// Add registers a named check.
func (h *Health) Add(name string, check func(context.Context) error) {
	h.checks[name] = check
	h.names = append(h.names, name)
}

// Check returns an EUNAVAILABLE error naming the first failing dependency.
func (h *Health) Check(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.checked) < h.ttl {
		return h.last
	}
	h.last = nil
	for _, name := range h.names {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := h.checks[name](cctx)
		cancel()
		if err != nil {
			h.last = smsgw.Unavailable(name, err)
			break
		}
	}
	h.checked = time.Now()
	return h.last
}

// Cancel implements smsgw.Canceller: it asks the message's workflow to
// withdraw it, which the workflow refuses once the message is on its way.
func (s *Service) Cancel(ctx context.Context, customerID, messageID string) error {
	rec, err := s.owned(ctx, customerID, messageID)
	if err != nil {
		return err
	}
	return s.update(ctx, rec, workflows.UpdateCancel)
}

// Replace implements smsgw.Replacer. An empty text keeps the message's
// own, for a new schedule alone. A new text is checked as it would be
// in a submission of the message being replaced: its sender and
// destination, its customer's encoding options and segment limit. Then the
// message's workflow takes it, unless the message is already on its way or
// the new schedule falls after the end of the message's validity.
func (s *Service) Replace(ctx context.Context, customerID, messageID, text string, scheduleAt time.Time) error {
	rec, err := s.owned(ctx, customerID, messageID)
	if err != nil {
		return err
	}
	if text == "" && scheduleAt.IsZero() {
		return smsgw.Errorf(smsgw.EINVALID, "a new text or a new schedule is required")
	}
	if text != "" { // empty: the message keeps its text and takes the new schedule
		m := smsgw.Message{
			ID: rec.ID, CustomerID: rec.CustomerID, EntryPoint: rec.EntryPoint,
			From: rec.From, To: rec.To, Text: text, ScheduleAt: scheduleAt,
		}
		if err := m.Validate(); err != nil {
			return err
		}
		if _, _, err := s.counter.Count(text, rec.CustomerID); err != nil {
			return smsgw.Errorf(smsgw.EINVALID, "text: %v", err)
		}
	}
	return s.update(ctx, rec, workflows.UpdateReplace, workflows.ReplaceRequest{Text: text, ScheduleAt: scheduleAt})
}

// Review implements smsgw.Reviewer: it releases or rejects a message held
// for review, through its workflow.
func (s *Service) Review(ctx context.Context, customerID, messageID string, release bool, reason string) error {
	rec, err := s.owned(ctx, customerID, messageID)
	if err != nil {
		return err
	}
	return s.update(ctx, rec, workflows.UpdateReview, workflows.ReviewRequest{Release: release, Reason: reason})
}

// ReviewAny implements smsgw.OperatorReviewer: Review for the operators,
// whoever the message's customer is.
func (s *Service) ReviewAny(ctx context.Context, messageID string, release bool, reason string) (string, error) {
	rec, err := s.messages.GetMessage(ctx, messageID)
	if err != nil {
		return "", err
	}
	return rec.CustomerID, s.update(ctx, rec, workflows.UpdateReview, workflows.ReviewRequest{Release: release, Reason: reason})
}

// owned reads a message that must be the customer's: another customer's is
// answered as absent.
func (s *Service) owned(ctx context.Context, customerID, messageID string) (smsgw.MessageRecord, error) {
	rec, err := s.messages.GetMessage(ctx, messageID)
	if err != nil {
		return smsgw.MessageRecord{}, err
	}
	if rec.CustomerID != customerID {
		return smsgw.MessageRecord{}, smsgw.Errorf(smsgw.ENOTFOUND, "no message %s", messageID)
	}
	return rec, nil
}

// update runs an update on a message's workflow.
func (s *Service) update(ctx context.Context, rec smsgw.MessageRecord, update string, args ...any) error {
	h, err := s.temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   rec.ID,
		UpdateName:   update,
		Args:         args,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	var appErr *temporal.ApplicationError
	var notFound *serviceerror.NotFound
	switch {
	case err == nil:
		return nil
	case errors.As(err, &appErr) && appErr.Type() == workflows.ErrCannotChange:
		return smsgw.Errorf(smsgw.ECONFLICT, "%s", appErr.Message())
	case errors.As(err, &appErr) && appErr.Type() == workflows.ErrInvalidChange:
		return smsgw.Errorf(smsgw.EINVALID, "%s", appErr.Message())
	case errors.As(err, &notFound), strings.Contains(err.Error(), "already completed"):
		return smsgw.Errorf(smsgw.ECONFLICT, "the message is already final (%s)", rec.Status)
	}
	return smsgw.Unavailable("workflow engine", err)
}
