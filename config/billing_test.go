package config

import (
	"strings"
	"testing"
	"time"
)

const billingYAML = `customers:
  - id: acme
    group: retail
    billing: {mode: prepaid, lowBalance: ["5", "1.50"]}
  - id: beta
    group: retail
  - id: gamma
    group: wholesale
  - id: vip
    group: retail
    billing: {mode: postpaid, chargeExpired: true}
priceLists:
  - id: retail
    currency: EUR
    groups: [retail]
    default: 0.10
    rates:
      - {prefix: "+49", price: 0.07}
      - {prefix: "+4915", price: 0.065}
      - {prefix: "+49", price: 0.08, from: 2027-01-01T00:00:00Z}
      - {prefix: "+33", price: 0.05, until: 2026-06-01T00:00:00Z}
  - id: vip
    currency: USD
    customers: [vip]
    rates:
      - {prefix: "+1", price: "0.004"}
`

func parseBilling(t *testing.T) *Config {
	t.Helper()
	cfg, err := Parse([]byte(billingYAML), noEnv)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

func TestQuoteLongestPrefixEffectiveDatesAndDefault(t *testing.T) {
	cfg := parseBilling(t)
	in2026 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	in2027 := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		customer, to string
		at           time.Time
		list, prefix string
		micros       int64
	}{
		{"acme", "+4915112345678", in2026, "retail", "+4915", 65_000}, // longest prefix wins
		{"acme", "+4930123456", in2026, "retail", "+49", 70_000},
		{"acme", "+4930123456", in2027, "retail", "+49", 80_000},      // the later rate took effect
		{"acme", "+4915112345678", in2027, "retail", "+4915", 65_000}, // still the longer prefix
		{"acme", "+33612345678", in2026, "retail", "+33", 50_000},
		{"acme", "+33612345678", in2027, "retail", "", 100_000}, // the +33 rate ended: default
		{"beta", "+61412345678", in2026, "retail", "", 100_000}, // no rate: default, by group
		{"vip", "+14155550100", in2026, "vip", "+1", 4_000},     // by name, before its group's
	} {
		q, ok, err := cfg.Quote(tc.customer, tc.to, tc.at)
		if err != nil || !ok {
			t.Errorf("Quote(%s, %s, %s) = %v, %v", tc.customer, tc.to, tc.at.Format(time.DateOnly), ok, err)
			continue
		}
		if q.PriceList != tc.list || q.Prefix != tc.prefix || q.Micros != tc.micros {
			t.Errorf("Quote(%s, %s, %s) = %+v, want list %s prefix %q micros %d", tc.customer, tc.to, tc.at.Format(time.DateOnly), q, tc.list, tc.prefix, tc.micros)
		}
	}
	if _, ok, err := cfg.Quote("gamma", "+4930123456", in2026); ok || err != nil {
		t.Errorf("gamma is on no price list: got ok %v, err %v", ok, err)
	}
	if _, ok, err := cfg.Quote("vip", "+4930123456", in2026); !ok || err == nil || !strings.HasPrefix(err.Error(), "invalid: to +4930123456: no price") {
		t.Errorf("a destination with no rate and no default: got ok %v, err %v", ok, err)
	}
	acme, _ := cfg.Customer("acme")
	if !acme.Billing.Prepaid() || len(acme.Billing.LowBalance) != 2 || acme.Billing.LowBalance[1].Micros != 1_500_000 {
		t.Errorf("acme's billing = %+v", acme.Billing)
	}
}

const badBilling = `customers:
  - id: a
    billing: {mode: prepay}
  - id: b
    billing: {mode: prepaid}
priceLists:
  - id: l1
    currency: euro
    customers: [a, ghost]
    rates:
      - {prefix: "49", price: 0.1}
      - {prefix: "+1", price: 0.1, from: 2026-02-01T00:00:00Z, until: 2026-01-01T00:00:00Z}
      - {prefix: "+1", price: 0.2, from: 2026-02-01T00:00:00Z}
  - id: l2
    currency: EUR
    customers: [a]
    groups: [nobody]
`

func TestBillingValidationNamesEveryProblem(t *testing.T) {
	_, err := Parse([]byte(badBilling+`  - id: l3
    currency: EUR
    customers: [b]
    default: 0.1234567
`), noEnv)
	if err == nil || !strings.Contains(err.Error(), `price "0.1234567" is not an amount`) {
		t.Fatalf("a price with seven decimals: %v", err)
	}

	_, err = Parse([]byte(badBilling), noEnv)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{
		`line 2: customer "a": billing.mode must be prepaid or postpaid, not "prepay"`,
		`line 4: customer "b": billing.mode prepaid needs a price list`,
		`line 7: price list l1: currency "euro" must be an ISO 4217 code`,
		`price list l1: unknown customer "ghost"`,
		`price list l1: rates[0]: prefix "49" must be '+' followed by digits`,
		`price list l1: rates[1] (+1): until 2026-01-01T00:00:00Z is not after from 2026-02-01T00:00:00Z`,
		`price list l1: rates[1] and rates[2] both price +1 from the same time`,
		`line 14: price list l2: customer "a" is already on price list l1`,
		`price list l2: no customer is in group "nobody"`,
		`price list l2: needs rates, a default, or both`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
