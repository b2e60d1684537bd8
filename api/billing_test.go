package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	smsgw "github.com/smsgw/smsgw"
)

// till is a ledger of top-ups by reference, for the API's tests.
type till struct {
	mu      sync.Mutex
	balance int64
	refs    map[string]int64
}

func (l *till) Reserve(context.Context, string, string, string, int64, int, time.Time) (smsgw.Movement, error) {
	return smsgw.Movement{}, nil
}

func (l *till) CloseMessage(context.Context, string, string, string, string, int64, int, time.Time) (smsgw.Movement, error) {
	return smsgw.Movement{}, nil
}

func (l *till) TopUp(_ context.Context, customerID, currency, ref string, amount int64, at time.Time) (smsgw.Movement, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.refs[ref]; ok {
		return smsgw.Movement{CustomerID: customerID, Currency: currency, Amount: prev, At: at}, nil
	}
	l.refs[ref] = amount
	l.balance += amount
	return smsgw.Movement{CustomerID: customerID, Currency: currency, Amount: amount, At: at, New: true}, nil
}

func (l *till) Balance(_ context.Context, customerID, currency string) (smsgw.Balance, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return smsgw.Balance{CustomerID: customerID, Currency: currency, Balance: l.balance, Reserved: 50_000}, nil
}

// accounts bills alice, prepaid in EUR; bob is not billed.
type accounts struct{}

func (accounts) BillingAccount(id string) (string, bool, bool) { return "EUR", true, id == "alice" }

func TestBalanceAndTopUp(t *testing.T) {
	const operatorKey = "op-secret"
	l := &till{refs: map[string]int64{}}
	ts := startServerWith(t, Config{}, nil, &recordingSubmitter{}, func(d *Deps) {
		d.Billing = &BillingDeps{Ledger: l, Accounts: accounts{}, OperatorKeyHash: smsgw.HashAPIKey(operatorKey)}
	})
	topUp := func(key, body string) (int, map[string]any) {
		return ts.do(t, "POST", "/v1/billing/customers/alice:topUp", key, strings.NewReader(body), nil)
	}
	for _, tc := range []struct {
		key, body string
		code      int
		message   string
	}{
		{aliceKey, `{"amount":"5","reference":"r1"}`, http.StatusUnauthorized, "invalid operator key"},
		{"", `{"amount":"5","reference":"r1"}`, http.StatusUnauthorized, "missing operator key: send the header Authorization: Bearer <key>"},
		{operatorKey, `{"amount":"5.1234567","reference":"r1"}`, http.StatusBadRequest, `amount: "5.1234567" is not an amount: write units and at most six decimals, like 0.065`},
		{operatorKey, `{"amount":"-5","reference":"r1"}`, http.StatusBadRequest, "amount must be positive"},
		{operatorKey, `{"amount":"5"}`, http.StatusBadRequest, "reference is required (an invoice or payment ID): a top-up is applied once per reference"},
		{operatorKey, `{"amount":"5","reference":"r1","currency":"USD"}`, http.StatusBadRequest, `currency "USD" is not the customer's (EUR)`},
	} {
		if code, body := topUp(tc.key, tc.body); code != tc.code || body["message"] != tc.message {
			t.Errorf("top-up %s with key %q: %d %v, want %d %q", tc.body, tc.key, code, body, tc.code, tc.message)
		}
	}
	for i, applied := range []bool{true, false} {
		code, body := topUp(operatorKey, `{"amount":"12.5","reference":"r1"}`)
		b, _ := body["balance"].(map[string]any)
		if code != http.StatusOK || body["applied"] != applied || b["balance"] != "12.50" || b["available"] != "12.45" {
			t.Errorf("top-up %d: %d %v, want applied %v and 12.50 with 12.45 available", i+1, code, body, applied)
		}
	}
	if code, body := topUp(operatorKey, `{"amount":"20","reference":"r1"}`); code != http.StatusConflict {
		t.Errorf("a reference used for another amount: %d %v, want 409", code, body)
	}
	if code, body := ts.do(t, "POST", "/v1/billing/customers/bob:topUp", operatorKey, strings.NewReader(`{"amount":"1","reference":"r2"}`), nil); code != http.StatusNotFound {
		t.Errorf("top-up of a customer not billed: %d %v, want 404", code, body)
	}

	code, body := ts.do(t, "GET", "/v1/balance", aliceKey, nil, nil)
	b, _ := body["balance"].(map[string]any)
	if code != http.StatusOK || b["customerId"] != "alice" || b["balanceMicros"] != "12500000" || b["reserved"] != "0.05" || b["prepaid"] != true {
		t.Errorf("GET /v1/balance: %d %v", code, body)
	}
	if code, body := ts.do(t, "GET", "/v1/balance", bobKey, nil, nil); code != http.StatusConflict {
		t.Errorf("balance of a customer not billed: %d %v, want 409", code, body)
	}
	if code, _ := ts.do(t, "GET", "/v1/balance", operatorKey, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("balance with the operator key: %d, want 401 (it is no customer's key)", code)
	}
}
