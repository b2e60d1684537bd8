package smppserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/config"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
	"github.com/smsgw/smsgw/segment"
)

// scheduleTolerance is how far in the future a schedule_delivery_time may
// be and still count as "now".
const scheduleTolerance = 5 * time.Second

// submission is a submit_sm or data_sm read into a message; part is set
// when it is one part of a concatenated message.
type submission struct {
	msg  smsgw.Message
	part *segment.IncomingPart
}

// refusal is the command_status a submission is refused with, and why.
type refusal struct {
	status uint32
	reason string
}

func refuse(status uint32, format string, args ...any) *refusal {
	return &refusal{status: status, reason: fmt.Sprintf(format, args...)}
}

// submit handles a submit_sm or data_sm: read, check, and hand it to the
// Submitter on a goroutine of its own; the response goes out only once
// the Submitter has answered.
func (sess *session) submit(f smppwire.Frame) {
	respCmd := f.CommandID | smppwire.ResponseBit
	sess.mu.Lock()
	kind, acc, limiter, draining := sess.kind, sess.acc, sess.limiter, sess.draining
	sess.mu.Unlock()
	answer := func(status uint32, reason string) {
		level := slog.LevelInfo
		if status == smppstatus.ESME_RTHROTTLED || status == smppstatus.ESME_RMSGQFUL {
			level = slog.LevelDebug
		}
		sess.log().Log(context.Background(), level, "submission refused", "command", smppwire.CommandName(f.CommandID),
			"status", smppstatus.Name(status), "reason", reason)
		sess.respond(smppwire.HeaderOnly(respCmd, status, f.Seq))
	}
	switch {
	case !kind.canSubmit():
		answer(smppstatus.ESME_RINVBNDSTS, "not bound as transmitter or transceiver")
		return
	case draining:
		answer(smppstatus.ESME_RSYSERR, "the server is shutting down")
		return
	}
	m, err := smppwire.DecodeMessage(f.CommandID, f.Body())
	if err != nil {
		answer(smppstatus.ESME_RINVMSGLEN, "unreadable: "+err.Error())
		return
	}
	select {
	case sess.submitSlots <- struct{}{}:
	default:
		sess.srv.metrics.throttled.WithLabelValues(acc.customerID).Inc()
		answer(smppstatus.ESME_RMSGQFUL, fmt.Sprintf("the window of %d outstanding submissions is full", cap(sess.submitSlots)))
		return
	}
	window := sess.srv.metrics.window.WithLabelValues(acc.customerID, "submit")
	window.Inc()
	release := func() {
		<-sess.submitSlots
		window.Dec()
	}
	if limiter != nil && !limiter.Allow() {
		release()
		sess.srv.metrics.throttled.WithLabelValues(acc.customerID).Inc()
		answer(smppstatus.ESME_RTHROTTLED, fmt.Sprintf("over the customer's %g submissions per second", float64(limiter.Limit())))
		return
	}
	sub, bad := parseSubmission(acc.customerID, f.CommandID, m, sess.srv.cfg.Now())
	if bad != nil {
		release()
		answer(bad.status, bad.reason)
		return
	}
	// The message takes its ID from this submit_sm, so a start whose
	// answer was lost is not taken for a new message when tried again.
	sub.msg.SubmissionRef = sess.id + ":" + strconv.FormatUint(uint64(f.Seq), 10)
	reply := func(status uint32, id, reason string) {
		release()
		if status != smppstatus.ESME_ROK {
			answer(status, reason)
			return
		}
		sess.respond(smppwire.MessageIDResp(respCmd, 0, f.Seq, id))
	}
	if sub.part != nil {
		sess.srv.concat.add(acc.systemID, sub, reply, &sess.submits)
		return
	}
	sess.submits.Add(1)
	go func() {
		defer sess.submits.Done()
		reply(sess.srv.accept(sub.msg))
	}()
}

// accept hands a message to the Submitter and says how to answer the ESME.
func (s *Server) accept(m smsgw.Message) (status uint32, id, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.SubmitTimeout)
	defer cancel()
	acc, err := s.deps.Submitter.Submit(ctx, m)
	if err != nil {
		status, reason := submitStatus(err, s.deps.Config.Config().Rules)
		if smsgw.ErrorCode(err) == smsgw.EPAYMENT {
			status = s.paymentStatus(m.CustomerID)
		}
		return status, "", reason
	}
	return smppstatus.ESME_ROK, acc.ID, ""
}

// submitStatus maps a Submitter error to a command_status: the one place
// where domain errors become SMPP answers. A policy's refusal (opt-out,
// destination, content, velocity) answers the status the configuration
// gives its reason (rules.smppStatus), by default ESME_RSUBMITFAIL.
func submitStatus(err error, rules config.Rules) (uint32, string) {
	if errors.Is(err, context.DeadlineExceeded) {
		return smppstatus.ESME_RMSGQFUL, "the workflow engine did not accept the message in time: " + err.Error()
	}
	msg := smsgw.ErrorMessage(err)
	if reason := smsgw.ErrorReason(err); reason != "" {
		return rules.SMPPStatusFor(reason), reason + ": " + msg
	}
	switch smsgw.ErrorCode(err) {
	case smsgw.EINVALID:
		return invalidStatus(msg), msg
	case smsgw.EUNAVAILABLE:
		return smppstatus.ESME_RSYSERR, err.Error()
	case smsgw.EUNKNOWN:
		// SMPP has no status for "may have been accepted"; a customer that
		// resubmits makes a second message, as after a lost submit_sm_resp.
		return smppstatus.ESME_RMSGQFUL, msg
	case smsgw.ETHROTTLED:
		return smppstatus.ESME_RTHROTTLED, msg
	case smsgw.EUNAUTHORIZED, smsgw.EPAYMENT:
		return smppstatus.ESME_RSUBMITFAIL, msg
	}
	return smppstatus.ESME_RSYSERR, err.Error()
}

// paymentStatus is the command_status of a submission the customer's
// balance cannot cover: its billing.smppStatus, else ESME_RSUBMITFAIL.
func (s *Server) paymentStatus(customerID string) uint32 {
	if s.deps.Config != nil {
		if cu, ok := s.deps.Config.Config().Customer(customerID); ok && cu.Billing.SMPPStatus != 0 {
			return cu.Billing.SMPPStatus
		}
	}
	return smppstatus.ESME_RSUBMITFAIL
}

// invalidStatus picks the command_status for an EINVALID message by its
// first problem (smsgw.Message.Validate and the router name the field first).
func invalidStatus(msg string) uint32 {
	first, _, _ := strings.Cut(msg, "; ")
	switch {
	case strings.HasPrefix(first, "from"), strings.Contains(first, "source"), strings.Contains(first, "sender"):
		return smppstatus.ESME_RINVSRCADR
	case strings.HasPrefix(first, "to "), strings.HasPrefix(first, "no route"):
		return smppstatus.ESME_RINVDSTADR
	case strings.HasPrefix(first, "text"):
		return smppstatus.ESME_RINVMSGLEN
	case strings.HasPrefix(first, "validity"):
		return smppstatus.ESME_RINVEXPIRY
	}
	return smppstatus.ESME_RSUBMITFAIL
}

// parseSubmission reads a decoded submit_sm or data_sm into a message, or
// says why it cannot be accepted.
func parseSubmission(customerID string, cmd uint32, m smppwire.Message, now time.Time) (submission, *refusal) {
	from := m.Source
	switch {
	case from == "":
		return submission{}, refuse(smppstatus.ESME_RINVSRCADR, "source_addr is empty")
	case m.SourceTON == 1 && allDigits(strings.TrimPrefix(from, "+")):
		from = "+" + strings.TrimPrefix(from, "+")
	}
	if m.DestTON == 5 {
		return submission{}, refuse(smppstatus.ESME_RINVDSTADR, "destination_addr %q is alphanumeric", m.Dest)
	}
	to, err := smsgw.NormalizeMSISDN(m.Dest)
	if err != nil {
		return submission{}, refuse(smppstatus.ESME_RINVDSTADR, "%s", smsgw.ErrorMessage(err))
	}
	if t := m.ESMClass & smppwire.ESMClassTypeMask; t != 0 {
		return submission{}, refuse(smppstatus.ESME_RINVESMCLASS, "esm_class 0x%02X: message type 0x%02X is not a submission", m.ESMClass, t)
	}

	if len(m.ShortMessage) > 0 && len(m.TLVs[smppwire.TagMessagePayload]) > 0 {
		return submission{}, refuse(smppstatus.ESME_RINVMSGLEN, "short_message and message_payload are both set")
	}
	payload := m.Text()
	if len(payload) == 0 {
		return submission{}, refuse(smppstatus.ESME_RINVMSGLEN, "the message is empty")
	}
	enc, err := segment.DecodeDataCoding(m.DataCoding)
	if err != nil {
		return submission{}, refuse(smppstatus.ESME_RINVDCS, "%v", err)
	}
	if enc == segment.Binary8 {
		return submission{}, refuse(smppstatus.ESME_RINVDCS, "data_coding 0x%02X: 8-bit binary messages are not supported", m.DataCoding)
	}
	if m.ESMClass&smppwire.ESMClassUDHI != 0 && int(payload[0]) >= len(payload) {
		return submission{}, refuse(smppstatus.ESME_RINVMSGLEN, "user data header of %d octets in a message of %d", int(payload[0])+1, len(payload))
	}
	text, udh, err := segment.DecodePayload(m.DataCoding, m.ESMClass, payload)
	switch {
	case errors.Is(err, segment.ErrInvalidUDH):
		return submission{}, refuse(smppstatus.ESME_RINVESMCLASS, "%v", err)
	case errors.Is(err, segment.ErrUnsupportedDataCoding):
		return submission{}, refuse(smppstatus.ESME_RINVDCS, "%v", err)
	case errors.Is(err, segment.ErrInvalidUTF16):
		return submission{}, refuse(smppstatus.ESME_RINVMSGLEN, "%v", err)
	case err != nil:
		return submission{}, refuse(smppstatus.ESME_RSUBMITFAIL, "%v", err)
	}
	if n := utf8.RuneCountInString(text); n > smsgw.MaxTextRunes {
		return submission{}, refuse(smppstatus.ESME_RINVMSGLEN, "text has %d characters, at most %d are allowed", n, smsgw.MaxTextRunes)
	}
	var part *segment.IncomingPart
	if udh != nil {
		for _, ie := range udh.IEs {
			if ie.ID != segment.IEIConcat8 && ie.ID != segment.IEIConcat16 {
				return submission{}, refuse(smppstatus.ESME_RINVESMCLASS, "user data header element 0x%02X is not supported", ie.ID)
			}
		}
		if c := udh.Concat; c != nil {
			part = &segment.IncomingPart{Ref: c.Ref, Total: c.Total, Seq: c.Seq, Text: text}
		}
	}
	if part == nil {
		sar, bad := sarPart(m.TLVs, text)
		if bad != nil {
			return submission{}, bad
		}
		part = sar
	}
	if part != nil && part.Total == 1 {
		part = nil
	}

	var validity time.Duration
	var schedule time.Time
	switch cmd {
	case smppwire.SubmitSM:
		validity, err = Validity(m.ValidityPeriod, now, smsgw.MaxValidity)
		if err != nil {
			return submission{}, refuse(smppstatus.ESME_RINVEXPIRY, "validity_period: %v", err)
		}
		at, err := ParseTime(m.ScheduleDelivery, now)
		switch {
		case err != nil:
			return submission{}, refuse(smppstatus.ESME_RINVSCHED, "schedule_delivery_time: %v", err)
		case at.After(now.Add(scheduleTolerance)):
			if validity > 0 && !at.Before(now.Add(validity)) {
				return submission{}, refuse(smppstatus.ESME_RINVSCHED, "schedule_delivery_time %q is not before the end of validity", m.ScheduleDelivery)
			}
			schedule = at
		}
	case smppwire.DataSM:
		if ttl, ok := m.TLVs[tagQOSTimeToLive]; ok {
			if len(ttl) != 4 || binary.BigEndian.Uint32(ttl) == 0 {
				return submission{}, refuse(smppstatus.ESME_RINVOPTPARAMVAL, "qos_time_to_live must be 4 octets and not 0")
			}
			validity = min(time.Duration(binary.BigEndian.Uint32(ttl))*time.Second, smsgw.MaxValidity)
		}
	}

	msg := smsgw.Message{
		EntryPoint:           smsgw.EntrySMPP,
		CustomerID:           customerID,
		From:                 from,
		To:                   to,
		Text:                 text,
		Validity:             validity,
		ScheduleAt:           schedule,
		ReceiptRequested:     m.RegisteredDelivery&0x03 != 0,
		ReceiptOnFailureOnly: m.RegisteredDelivery&0x03 == 2,
	}
	return submission{msg: msg, part: part}, nil
}

// sarPart reads the sar_* optional parameters: nil when there are none.
func sarPart(tlvs map[uint16][]byte, text string) (*segment.IncomingPart, *refusal) {
	ref, hasRef := tlvs[smppwire.TagSarMsgRefNum]
	total, hasTotal := tlvs[smppwire.TagSarTotalSegments]
	seq, hasSeq := tlvs[smppwire.TagSarSegmentSeqnum]
	if !hasRef && !hasTotal && !hasSeq {
		return nil, nil
	}
	if len(ref) != 2 || len(total) != 1 || len(seq) != 1 {
		return nil, refuse(smppstatus.ESME_RINVOPTPARAMVAL, "sar_msg_ref_num (2 octets), sar_total_segments and sar_segment_seqnum (1 octet each) must come together")
	}
	p := &segment.IncomingPart{Ref: binary.BigEndian.Uint16(ref), Total: int(total[0]), Seq: int(seq[0]), Text: text}
	if p.Total == 0 || p.Seq == 0 || p.Seq > p.Total {
		return nil, refuse(smppstatus.ESME_RINVOPTPARAMVAL, "sar part %d of %d", p.Seq, p.Total)
	}
	return p, nil
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
