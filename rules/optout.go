package rules

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/internal/promreg"
)

// Opt-out changes an MO makes.
const (
	ChangeOptOut = "opt_out"
	ChangeOptIn  = "opt_in"
)

// OptOutKeywords turns the opt-out and opt-in keywords of
// mobile-originated messages into changes of the opt-out list.
type OptOutKeywords struct {
	config  *config.Live
	list    smsgw.OptOutList
	now     func() time.Time
	changes *prometheus.CounterVec
}

// NewOptOutKeywords returns the MO keyword handler and registers its counter.
func NewOptOutKeywords(cfg *config.Live, list smsgw.OptOutList, reg prometheus.Registerer) (*OptOutKeywords, error) {
	changes, err := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smsgw_optout_changes_total",
		Help: "Changes of the opt-out list made by keywords of mobile-originated messages, by source (mo) and change (opt_out, opt_in).",
	}, []string{"source", "change"}))
	if err != nil {
		return nil, err
	}
	return &OptOutKeywords{config: cfg, list: list, now: time.Now, changes: changes}, nil
}

// Keyword is the first word of an MO's text, upper-cased, without the
// punctuation around it ("Stop." is STOP).
func Keyword(text string) string {
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return ""
	}
	return strings.ToUpper(strings.TrimFunc(fields[0], func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }))
}

// HandleMO applies an MO sent by from to the customer's number to: its
// first word, an opt-out keyword, adds from to the opt-out list (of that
// number, or of the customer as a whole, by the customer's optOutScope);
// an opt-in keyword removes it. It returns the change made, or "" for any
// other text. Applying the same MO twice changes nothing more.
func (k *OptOutKeywords) HandleMO(ctx context.Context, customerID, from, to, text string) (string, error) {
	cfg := k.config.Config()
	word := Keyword(text)
	if word == "" {
		return "", nil
	}
	stop, start := slices.Contains(cfg.Rules.StopKeywords(), word), slices.Contains(cfg.Rules.StartKeywords(), word)
	if !stop && !start {
		return "", nil
	}
	number, err := smsgw.NormalizeMSISDN(from)
	if err != nil {
		return "", nil // not a phone number: nothing to opt out
	}
	cu, _ := cfg.Customer(customerID)
	sender := ""
	if cu.Rules.OptOutScopeOf() == config.OptOutScopeSender {
		sender = smsgw.SenderDigits(strings.TrimLeft(to, "+"))
	}
	if stop {
		if _, err := k.list.AddOptOuts(ctx, []smsgw.OptOut{{
			CustomerID: customerID, Sender: sender, Number: number, Source: "mo", Keyword: word, At: k.now().UTC(),
		}}); err != nil {
			return "", fmt.Errorf("opt %s out: %w", number, err)
		}
		k.changes.WithLabelValues("mo", ChangeOptOut).Inc()
		return ChangeOptOut, nil
	}
	if _, err := k.list.RemoveOptOut(ctx, customerID, sender, number); err != nil {
		return "", fmt.Errorf("opt %s in: %w", number, err)
	}
	k.changes.WithLabelValues("mo", ChangeOptIn).Inc()
	return ChangeOptIn, nil
}
