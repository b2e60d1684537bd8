package smppserver

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
	"github.com/smsgw/smsgw/segment"
)

// lookup handles query_sm, cancel_sm and replace_sm, which read a message's
// state, on a goroutine of their own within the session's window.
func (sess *session) lookup(f smppwire.Frame) {
	respCmd := f.CommandID | smppwire.ResponseBit
	if _, kind := sess.binding(); !kind.canSubmit() {
		sess.respond(smppwire.HeaderOnly(respCmd, smppstatus.ESME_RINVBNDSTS, f.Seq))
		return
	}
	var ref messageRef
	var err error
	switch f.CommandID {
	case smppwire.QuerySM:
		ref, err = decodeQuery(f.Body())
	case smppwire.CancelSM:
		ref, err = decodeCancel(f.Body())
	default:
		ref, err = decodeReplace(f.Body())
	}
	if err != nil {
		sess.log().Info("unreadable request", "command", smppwire.CommandName(f.CommandID), "err", err)
		sess.respond(smppwire.HeaderOnly(respCmd, smppstatus.ESME_RINVMSGLEN, f.Seq))
		return
	}
	select {
	case sess.submitSlots <- struct{}{}:
	default:
		sess.respond(smppwire.HeaderOnly(respCmd, smppstatus.ESME_RMSGQFUL, f.Seq))
		return
	}
	customerID, _ := sess.binding()
	sess.submits.Add(1)
	go func() {
		defer sess.submits.Done()
		defer func() { <-sess.submitSlots }()
		sess.respond(sess.srv.answerLookup(f.CommandID, f.Seq, customerID, ref, sess))
	}()
}

// answerLookup builds the response to a query_sm, cancel_sm or replace_sm.
//
// cancel_sm withdraws, and replace_sm changes the text and schedule of, a
// message its workflow has not handed to a connector yet (a scheduled one,
// in practice); once it is on its way neither can take it back.
func (s *Server) answerLookup(cmd, seq uint32, customerID string, ref messageRef, sess *session) []byte {
	respCmd := cmd | smppwire.ResponseBit
	failStatus := map[uint32]uint32{
		smppwire.QuerySM:   smppstatus.ESME_RQUERYFAIL,
		smppwire.CancelSM:  smppstatus.ESME_RCANCELFAIL,
		smppwire.ReplaceSM: smppstatus.ESME_RREPLACEFAIL,
	}[cmd]
	fail := func(status uint32, reason string) []byte {
		sess.log().Info("request refused", "command", smppwire.CommandName(cmd), "message_id", ref.MessageID,
			"status", smppstatus.Name(status), "reason", reason)
		return smppwire.HeaderOnly(respCmd, status, seq)
	}
	if s.deps.Messages == nil {
		return fail(failStatus, "this server has no message store")
	}
	if ref.MessageID == "" {
		return fail(smppstatus.ESME_RINVMSGID, "message_id is empty")
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ResponseTimeout)
	defer cancel()
	rec, err := s.deps.Messages.GetMessage(ctx, ref.MessageID)
	switch {
	case smsgw.ErrorCode(err) == smsgw.ENOTFOUND, err == nil && rec.CustomerID != customerID:
		return fail(smppstatus.ESME_RINVMSGID, "no such message of this customer")
	case err != nil:
		return fail(failStatus, err.Error())
	}
	switch cmd {
	case smppwire.QuerySM:
		final := ""
		if rec.Status.Final() && rec.DoneAt != nil {
			final = FormatTime(*rec.DoneAt)
		}
		return querySMRespPDU(seq, ref.MessageID, final, MessageState(rec.Status), networkError(rec.ErrorCode))
	case smppwire.CancelSM:
		if s.deps.Canceller == nil || rec.Status != smsgw.StatusAccepted {
			return fail(smppstatus.ESME_RCANCELFAIL, changeRefusal("cancelled", rec.Status))
		}
		if err := s.deps.Canceller.Cancel(ctx, customerID, ref.MessageID); err != nil {
			return fail(smppstatus.ESME_RCANCELFAIL, smsgw.ErrorMessage(err))
		}
		sess.log().Info("message cancelled", "message_id", ref.MessageID)
		return smppwire.HeaderOnly(respCmd, smppstatus.ESME_ROK, seq)
	default:
		if s.deps.Replacer == nil || rec.Status != smsgw.StatusAccepted {
			return fail(smppstatus.ESME_RREPLACEFAIL, changeRefusal("replaced", rec.Status))
		}
		// replace_sm carries no data_coding: its short_message is in the
		// SMSC default alphabet.
		text, _, err := segment.DecodePayload(0, 0, ref.ShortMessage)
		if err != nil || text == "" {
			return fail(smppstatus.ESME_RINVMSGLEN, "short_message is empty or not in the default alphabet")
		}
		var at time.Time
		if ref.ScheduleDelivery != "" {
			if at, err = ParseTime(ref.ScheduleDelivery, s.cfg.Now()); err != nil {
				return fail(smppstatus.ESME_RINVSCHED, "schedule_delivery_time: "+err.Error())
			}
		}
		if err := s.deps.Replacer.Replace(ctx, customerID, ref.MessageID, text, at); err != nil {
			return fail(smppstatus.ESME_RREPLACEFAIL, smsgw.ErrorMessage(err))
		}
		sess.log().Info("message replaced", "message_id", ref.MessageID)
		return smppwire.HeaderOnly(respCmd, smppstatus.ESME_ROK, seq)
	}
}

func changeRefusal(what string, status smsgw.Status) string {
	switch {
	case status.Final():
		return fmt.Sprintf("the message is already final (%s)", status)
	case status == smsgw.StatusSent:
		return "the message was already sent upstream"
	}
	return "a message not yet sent upstream cannot be " + what + " yet"
}

// SMPP message_state values (SMPP 3.4 §5.2.28).
const (
	StateEnroute       byte = 1
	StateDelivered     byte = 2
	StateExpired       byte = 3
	StateDeleted       byte = 4
	StateUndeliverable byte = 5
	StateAccepted      byte = 6
	StateUnknown       byte = 7
	StateRejected      byte = 8
)

// MessageState gives the message_state of a message status. A message on
// its way (ACCEPTED, SENT) is ENROUTE; FAILED, which SMPP has no word for,
// is UNDELIVERABLE.
func MessageState(s smsgw.Status) byte {
	switch s {
	case smsgw.StatusAccepted, smsgw.StatusSent:
		return StateEnroute
	case smsgw.StatusDelivered:
		return StateDelivered
	case smsgw.StatusExpired:
		return StateExpired
	case smsgw.StatusCancelled:
		return StateDeleted
	case smsgw.StatusUndeliverable, smsgw.StatusFailed:
		return StateUndeliverable
	case smsgw.StatusRejected:
		return StateRejected
	}
	return StateUnknown
}

// networkError reads an all-digit error code that fits query_sm_resp's one
// octet; anything else is 0.
func networkError(code string) byte {
	n, err := strconv.Atoi(code)
	if err != nil || n < 0 || n > 255 {
		return 0
	}
	return byte(n)
}
