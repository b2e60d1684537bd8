package webhook

import "sync"

// inFlight counts each customer's webhook calls in progress in this
// process, so that an endpoint that answers slowly or never can hold only
// so many of the worker's slots (Sender.MaxInFlight).
type inFlight struct {
	mu    sync.Mutex
	calls map[string]int // by customer
}

// take counts a call of the customer's, unless it has max in progress.
func (f *inFlight) take(customerID string, max int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls[customerID] >= max {
		return false
	}
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[customerID]++
	return true
}

// release counts a call of the customer's as finished.
func (f *inFlight) release(customerID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls[customerID]--; f.calls[customerID] <= 0 {
		delete(f.calls, customerID)
	}
}
