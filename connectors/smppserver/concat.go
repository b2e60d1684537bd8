package smppserver

import (
	"fmt"
	"sync"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/segment"
)

// A message a customer sends in parts (a concatenation User Data Header, or
// sar_* optional parameters) is gathered here and submitted once, whole.
// No part is answered before then: accepted means durable, and a part held
// only in memory is not. So every part's submit_sm_resp waits for the last
// part and then carries the message's one ID; parts still missing after
// ConcatTimeout make every part held so far fail with ESME_RSUBMITFAIL, and
// the ESME sends the message again. Held parts count against the session's
// window, so an ESME must allow at least as many outstanding submit_sm as
// a message has parts (or send the whole text in message_payload).

// concatKey names one message in parts: its parts share the sender's
// system_id, source, destination and reference.
type concatKey struct {
	systemID, from, to string
	ref                uint16
}

// replyFunc answers one part's submit_sm.
type replyFunc func(status uint32, id, reason string)

// concatMessage is a message whose parts are arriving.
type concatMessage struct {
	asm     segment.Assembly
	msg     smsgw.Message // from the first part to arrive; Text is set when whole
	waiting []replyFunc
	timer   *time.Timer
}

// reassembler holds the messages in parts being gathered on this replica.
type reassembler struct {
	srv     *Server
	timeout time.Duration

	mu      sync.Mutex
	pending map[concatKey]*concatMessage
}

func newReassembler(srv *Server, timeout time.Duration) *reassembler {
	return &reassembler{srv: srv, timeout: timeout, pending: map[concatKey]*concatMessage{}}
}

// add records a part. The part that completes its message submits it, on
// a goroutine counted in submits, and every part is then answered.
func (r *reassembler) add(systemID string, sub submission, reply replyFunc, submits *sync.WaitGroup) {
	key := concatKey{systemID: systemID, from: sub.msg.From, to: sub.msg.To, ref: sub.part.Ref}
	r.mu.Lock()
	c := r.pending[key]
	if c == nil {
		c = &concatMessage{msg: sub.msg}
		r.pending[key] = c
		c.timer = time.AfterFunc(r.timeout, func() { r.expire(key, c) })
	}
	complete, err := c.asm.Add(*sub.part)
	if err != nil {
		// Another message under the same reference: the one gathered so
		// far will not complete. Fail it and start over with this part.
		delete(r.pending, key)
		c.timer.Stop()
		r.mu.Unlock()
		for _, w := range c.waiting {
			w(smppstatus.ESME_RSUBMITFAIL, "", "a part with the same reference but another total arrived: "+err.Error())
		}
		r.add(systemID, sub, reply, submits)
		return
	}
	c.waiting = append(c.waiting, reply)
	c.msg.ReceiptRequested = c.msg.ReceiptRequested || sub.msg.ReceiptRequested
	if !complete {
		r.mu.Unlock()
		return
	}
	delete(r.pending, key)
	c.timer.Stop()
	r.mu.Unlock()

	c.msg.Text, _ = c.asm.Text()
	submits.Add(1)
	go func() {
		defer submits.Done()
		status, id, reason := r.srv.accept(c.msg)
		for _, w := range c.waiting {
			w(status, id, reason)
		}
	}()
}

// expire fails a message whose parts did not all arrive in time.
func (r *reassembler) expire(key concatKey, c *concatMessage) {
	r.mu.Lock()
	if r.pending[key] != c {
		r.mu.Unlock()
		return
	}
	delete(r.pending, key)
	missing := c.asm.Missing()
	r.mu.Unlock()
	reason := fmt.Sprintf("parts %v of %d did not arrive within %s", missing, c.asm.Total, r.timeout)
	for _, w := range c.waiting {
		w(smppstatus.ESME_RSUBMITFAIL, "", reason)
	}
}
