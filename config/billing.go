package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppstatus"
)

// PriceList prices the segments of the customers (or groups of customers)
// it names, by destination prefix: of the rates in effect when a message is
// accepted, the one with the longest prefix matching its destination wins
// (of equally long ones, the one that took effect last); with none, the
// default price.
type PriceList struct {
	ID string `yaml:"id"`
	// Currency is an ISO 4217 code (EUR, USD); balances are kept in it.
	Currency string `yaml:"currency"`
	// Customers and Groups are who pays by this list. A list naming a
	// customer wins over one naming its group.
	Customers []string `yaml:"customers"`
	Groups    []string `yaml:"groups"`
	// Default, when set, is the price of a segment to a destination no
	// rate matches; without it such a message is refused.
	Default *Price `yaml:"default"`
	Rates   []Rate `yaml:"rates"`

	line int
}

// Rate is the price of a segment to destinations starting with Prefix,
// in effect from From (inclusive; empty: always) until Until (exclusive;
// empty: no end).
type Rate struct {
	Prefix string    `yaml:"prefix"`
	Price  Price     `yaml:"price"`
	From   time.Time `yaml:"from"`
	Until  time.Time `yaml:"until"`
}

// Price is an amount of a currency, written as a decimal ("0.065") and kept
// exactly, in micro-units.
type Price struct {
	Micros int64
}

// UnmarshalYAML reads the decimal as written, not as a float.
func (p *Price) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a price is a decimal amount, like 0.065", n.Line)
	}
	v, err := smsgw.ParseMicros(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: price %w", n.Line, err)
	}
	p.Micros = v
	return nil
}

// MarshalYAML writes the decimal back, as UnmarshalYAML reads it (the
// stored configuration and `smsgw ctl export`).
func (p Price) MarshalYAML() (any, error) { return smsgw.FormatMicros(p.Micros), nil }

// Billing is how a customer pays.
type Billing struct {
	// Mode is "postpaid" (the default: messages are charged when sent and
	// the balance may go below zero) or "prepaid" (each message is
	// reserved for when accepted, and refused when the balance cannot
	// cover it).
	Mode string `yaml:"mode"`
	// ChargeExpired charges a message that was sent but expired without a
	// final receipt; by default its reservation is released.
	ChargeExpired bool `yaml:"chargeExpired"`
	// LowBalance are amounts of the available balance that, when it falls
	// below one of them, notify the customer on its notification channels
	// (those of its inbound messages), once per crossing.
	LowBalance []Price `yaml:"lowBalance"`
	// LowBalanceFrom is the source address of the low-balance notice sent
	// as a deliver_sm to the customer's receiver bind (notify channel
	// smpp); default smsgw.DefaultBalanceAlertFrom ("BILLING").
	LowBalanceFrom string `yaml:"lowBalanceFrom"`
	// SMPPStatus is the command_status of an SMPP submission the balance
	// cannot cover (default ESME_RSUBMITFAIL, 0x45); for example 0x58
	// (ESME_RTHROTTLED) for clients that retry those later.
	SMPPStatus uint32 `yaml:"smppStatus"`
}

// Billing modes.
const (
	BillingPostpaid = "postpaid"
	BillingPrepaid  = "prepaid"
)

// Prepaid says the customer's messages are reserved for when accepted.
func (b Billing) Prepaid() bool { return b.Mode == BillingPrepaid }

// Quote is the price of one segment of a message.
type Quote struct {
	PriceList string
	Currency  string
	Prefix    string // the matching rate's prefix; "" for the default
	Micros    int64
}

// PriceListFor is the price list the customer pays by: the one naming it,
// else the one naming its group.
func (c *Config) PriceListFor(customerID string) (PriceList, bool) {
	cu, ok := c.Customer(customerID)
	if !ok {
		return PriceList{}, false
	}
	for _, pl := range c.PriceLists {
		if slices.Contains(pl.Customers, customerID) {
			return pl, true
		}
	}
	if cu.Group != "" {
		for _, pl := range c.PriceLists {
			if slices.Contains(pl.Groups, cu.Group) {
				return pl, true
			}
		}
	}
	return PriceList{}, false
}

// Billed says whether a price list applies to the customer.
func (c *Config) Billed(customerID string) bool {
	_, ok := c.PriceListFor(customerID)
	return ok
}

// Quote prices one segment to the destination to at time at. It fails
// (EINVALID) when the customer's list has no rate for the destination and
// no default; ok is false when the customer is not billed at all.
func (c *Config) Quote(customerID, to string, at time.Time) (q Quote, ok bool, err error) {
	pl, ok := c.PriceListFor(customerID)
	if !ok {
		return Quote{}, false, nil
	}
	q, found := pl.Price(to, at)
	if !found {
		return Quote{}, true, smsgw.Errorf(smsgw.EINVALID, "to %s: no price for this destination", to)
	}
	return q, true, nil
}

// Price is the price of one segment to to at time at.
func (pl PriceList) Price(to string, at time.Time) (Quote, bool) {
	best := -1
	for i, r := range pl.Rates {
		if !r.inEffect(at) || !strings.HasPrefix(to, r.Prefix) {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		b := pl.Rates[best]
		if len(r.Prefix) > len(b.Prefix) || (len(r.Prefix) == len(b.Prefix) && r.From.After(b.From)) {
			best = i
		}
	}
	if best >= 0 {
		r := pl.Rates[best]
		return Quote{PriceList: pl.ID, Currency: pl.Currency, Prefix: r.Prefix, Micros: r.Price.Micros}, true
	}
	if pl.Default != nil {
		return Quote{PriceList: pl.ID, Currency: pl.Currency, Micros: pl.Default.Micros}, true
	}
	return Quote{}, false
}

func (r Rate) inEffect(at time.Time) bool {
	return (r.From.IsZero() || !at.Before(r.From)) && (r.Until.IsZero() || at.Before(r.Until))
}

// validateBilling checks the price lists and the customers' billing.
func (c *Config) validateBilling(customers map[string]bool) []error {
	var errs problems
	bad := errs.add
	groups := map[string]bool{}
	for _, cu := range c.Customers {
		if cu.Group != "" {
			groups[cu.Group] = true
		}
	}
	ids := map[string]bool{}
	byCustomer := map[string]string{} // customer: the price list that names it
	byGroup := map[string]string{}
	// claim gives a list's customers (or groups) to it, reporting those
	// that do not exist and those another list has.
	claim := func(line int, list, kind string, names []string, known map[string]bool, taken map[string]string) {
		for _, n := range names {
			switch other, dup := taken[n]; {
			case !known[n] && kind == "group":
				bad(line, "price list %s: no customer is in group %q", list, n)
			case !known[n]:
				bad(line, "price list %s: unknown %s %q", list, kind, n)
			case dup:
				bad(line, "price list %s: %s %q is already on price list %s", list, kind, n, other)
			}
			taken[n] = list
		}
	}
	for i, pl := range c.PriceLists {
		name := pl.ID
		switch {
		case pl.ID == "":
			name = fmt.Sprintf("priceLists[%d]", i)
			bad(pl.line, "%s: id is required", name)
		case !validName(pl.ID):
			bad(pl.line, "price list %q: id must be letters, digits, '-' and '_'", pl.ID)
		case ids[pl.ID]:
			bad(pl.line, "price list %q: duplicate id", pl.ID)
		}
		ids[pl.ID] = true
		if !validCurrency(pl.Currency) {
			bad(pl.line, "price list %s: currency %q must be an ISO 4217 code of three capital letters (EUR, USD)", name, pl.Currency)
		}
		if len(pl.Customers) == 0 && len(pl.Groups) == 0 {
			bad(pl.line, "price list %s: name the customers or groups that pay by it", name)
		}
		claim(pl.line, name, "customer", pl.Customers, customers, byCustomer)
		claim(pl.line, name, "group", pl.Groups, groups, byGroup)
		if pl.Default == nil && len(pl.Rates) == 0 {
			bad(pl.line, "price list %s: needs rates, a default, or both", name)
		}
		if pl.Default != nil && pl.Default.Micros < 0 {
			bad(pl.line, "price list %s: default must not be negative", name)
		}
		for j, r := range pl.Rates {
			if !validPrefix(r.Prefix) {
				bad(pl.line, "price list %s: rates[%d]: prefix %q must be '+' followed by digits", name, j, r.Prefix)
			}
			if r.Price.Micros < 0 {
				bad(pl.line, "price list %s: rates[%d] (%s): price must not be negative", name, j, r.Prefix)
			}
			if !r.Until.IsZero() && !r.Until.After(r.From) {
				bad(pl.line, "price list %s: rates[%d] (%s): until %s is not after from %s", name, j, r.Prefix,
					r.Until.Format(time.RFC3339), r.From.Format(time.RFC3339))
			}
			for k := range j {
				o := pl.Rates[k]
				if o.Prefix == r.Prefix && o.From.Equal(r.From) {
					bad(pl.line, "price list %s: rates[%d] and rates[%d] both price %s from the same time; give the newer one a later from", name, k, j, r.Prefix)
				}
			}
		}
	}
	for _, cu := range c.Customers {
		b := cu.Billing
		switch b.Mode {
		case "", BillingPostpaid, BillingPrepaid:
		default:
			bad(cu.line, "customer %q: billing.mode must be prepaid or postpaid, not %q", cu.ID, b.Mode)
		}
		_, named := byCustomer[cu.ID]
		_, inGroup := byGroup[cu.Group]
		priced := named || (cu.Group != "" && inGroup)
		if b.Mode != "" && !priced {
			bad(cu.line, "customer %q: billing.mode %s needs a price list naming the customer or its group", cu.ID, b.Mode)
		}
		if b.SMPPStatus != 0 && (b.SMPPStatus == smppstatus.ESME_ROK || b.SMPPStatus > 0x4FF) {
			bad(cu.line, "customer %q: billing.smppStatus must be an error command_status (0x1 to 0x4FF), like 0x45", cu.ID)
		}
		if len(b.LowBalance) > 0 && !priced {
			bad(cu.line, "customer %q: billing.lowBalance needs a price list naming the customer or its group", cu.ID)
		}
		if b.LowBalanceFrom != "" && !smsgw.ValidSender(b.LowBalanceFrom) {
			bad(cu.line, "customer %q: billing.lowBalanceFrom %q must be up to 15 digits or up to 11 letters and digits", cu.ID, b.LowBalanceFrom)
		}
	}
	return errs
}

func validCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// BillingAccount is the currency of the customer's price list and whether
// it is prepaid; ok is false when no price list applies to it.
func (l *Live) BillingAccount(customerID string) (currency string, prepaid, ok bool) {
	cfg := l.Config()
	pl, ok := cfg.PriceListFor(customerID)
	if !ok {
		return "", false, false
	}
	cu, _ := cfg.Customer(customerID)
	return pl.Currency, cu.Billing.Prepaid(), true
}
