package worker

import (
	"context"
	"sync"

	"github.com/smsgw/smsgw/activities"
)

// HereConnectors are the connectors this process holds, for the sends that
// the message workflows running here make without the connectors' task
// queues (activities.Activities.SendHere). A connector is here while its
// Run serves its task queue; a send takes one of as many slots as the
// connector's windows hold, without waiting, and only while it is bound
// (the session's window then paces it with the queue's sends).
type HereConnectors struct {
	mu sync.Mutex
	m  map[string]*hereConnector
}

type hereConnector struct {
	send   activities.SendFunc
	slots  *boundSlots
	sends  sync.WaitGroup // the sends in flight
	unused bool           // taken away: no new send
}

// NewHereConnectors returns an empty set; each Connector with it adds itself.
func NewHereConnectors() *HereConnectors {
	return &HereConnectors{m: map[string]*hereConnector{}}
}

// add makes id's sends here go through send while a slot is free. remove
// takes the connector away again, once its sends in flight are done.
func (h *HereConnectors) add(id string, send activities.SendFunc, slots *boundSlots) (remove func()) {
	c := &hereConnector{send: send, slots: slots}
	h.mu.Lock()
	h.m[id] = c
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		if h.m[id] == c { // a newer Run of the connector may have replaced it
			delete(h.m, id)
		}
		c.unused = true
		h.mu.Unlock()
		c.sends.Wait()
	}
}

// SendHere implements activities.HereSender.
func (h *HereConnectors) SendHere(ctx context.Context, in activities.SendInput) (activities.SendResult, bool, error) {
	if h == nil {
		return activities.SendResult{}, false, nil
	}
	h.mu.Lock()
	c := h.m[in.ConnectorID]
	if c == nil || c.unused || !c.slots.tryTake() {
		h.mu.Unlock()
		return activities.SendResult{}, false, nil
	}
	c.sends.Add(1)
	h.mu.Unlock()
	defer c.sends.Done()
	defer c.slots.release()
	res, err := c.send(ctx, in)
	return res, true, err
}
