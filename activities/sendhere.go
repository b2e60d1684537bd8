package activities

import "context"

// A message whose workflow runs in a process that also holds a bind of the
// connector it goes to may be sent from that process, in a local activity,
// instead of through the connector's task queue: no activity task to
// dispatch and no poll to answer it, and the receipt comes back to the
// workflow as a signal. Any other process, or a connector that is not bound
// here or has no free slot in its windows, leaves the send to the
// connector's task queue, as before. The send itself is the connector's
// (connectors/upstream.Sender.Send): each part's intent is recorded before
// its submit_sm, so a send the queue takes over after a local one failed
// or was cut short finds the parts that went, as a retried attempt does.

// HereSender sends through the connectors this process holds bound
// (worker.HereConnectors).
type HereSender interface {
	// SendHere sends in through its connector when this process holds it
	// bound with a slot free. here is false when it did not try: the
	// connector's task queue is to take the send.
	SendHere(ctx context.Context, in SendInput) (res SendResult, here bool, err error)
}

// SendHereResult is the outcome of Activities.SendHere: Sent when Here,
// else the send is left to the connector's task queue.
type SendHereResult struct {
	Here bool       `json:"here"`
	Sent SendResult `json:"sent"`
}

// SendHere is the local activity that sends a message from the process
// that runs its workflow, when that process holds the connector bound
// (Activities.Here). A failure is the send's, as the send activity's would
// be; the workflow decides whether the task queue tries again.
func (a *Activities) SendHere(ctx context.Context, in SendInput) (SendHereResult, error) {
	if a.Here == nil {
		return SendHereResult{}, nil
	}
	res, here, err := a.Here.SendHere(ctx, in)
	if !here {
		return SendHereResult{}, nil
	}
	if err != nil {
		return SendHereResult{}, err
	}
	return SendHereResult{Here: true, Sent: res}, nil
}
