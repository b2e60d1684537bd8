package smpptest

import (
	"context"
	"fmt"
	"time"

	"github.com/linxGnu/gosmpp/pdu"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// receiptJob is a receipt owed for one accepted submit_sm.
type receiptJob struct {
	systemID  string   // receipts go to a receiver of the submitting system_id
	origin    *session // the submitting session, preferred while it can receive (avoided with ReceiptOtherBind)
	sub       Submitted
	stat      string
	err       string
	duplicate bool // the second delivery of a receipt already taken
	otherBind bool // offered on another session than origin (Faults.ReceiptOtherBind)
	repeat    bool // delivered a second time once taken (Faults.DuplicateReceipts)
}

// pdu builds the receipt: a deliver_sm from the handset to the sender with
// esm_class 0x04, the standard text, and the receipted_message_id and
// message_state optional parameters.
func (j receiptJob) pdu() []byte {
	text := smsgw.ReceiptText{
		ID:         j.sub.ReceiptID,
		Sub:        "001",
		SubmitDate: j.sub.ReceivedAt,
		DoneDate:   time.Now().UTC(),
		Stat:       j.stat,
		Err:        j.err,
		Text:       receiptExcerpt(j.sub),
	}
	tlvs := map[uint16][]byte{smppwire.TagReceiptedMessageID: append([]byte(j.sub.ReceiptID), 0)}
	if state := smppwire.MessageState(j.stat); state != 0 {
		tlvs[smppwire.TagMessageState] = []byte{state}
	}
	raw, err := deliverSM(j.sub.DestAddr, j.sub.DestTON, j.sub.DestNPI, j.sub.SourceAddr, j.sub.SourceTON, j.sub.SourceNPI,
		smppwire.ESMClassSMSCReceipt, 0, []byte(text.String()), tlvs)
	if err != nil {
		// The addresses came from a decoded submit_sm and the text is short,
		// so this cannot happen; a receipt without addresses is still a receipt.
		raw, _ = deliverSM("", 0, 0, "", 0, 0, smppwire.ESMClassSMSCReceipt, 0, []byte(text.String()), tlvs)
	}
	return raw
}

// receiptExcerpt returns the first 20 characters of a plain-text message, or
// "" for binary, Unicode or concatenated ones.
func receiptExcerpt(sub Submitted) string {
	if sub.DataCoding != 0 && sub.DataCoding != 1 || sub.ESMClass&smppwire.ESMClassUDHI != 0 {
		return ""
	}
	b := sub.ShortMessage
	if len(b) > 20 {
		b = b[:20]
	}
	for _, c := range b {
		if c < 0x20 || c > 0x7E {
			return ""
		}
	}
	return string(b)
}

// deliverReceipt offers a receipt from attempt first on, until the ESME
// accepts it or the attempts are spent.
func (s *SMSC) deliverReceipt(ctx context.Context, job receiptJob, first int) {
	prefer, avoid := job.origin, (*session)(nil)
	if job.otherBind {
		prefer, avoid = nil, job.origin
	}
	for attempt := first; attempt <= s.cfg.ReceiptAttempts; attempt++ {
		var status uint32
		var err error
		bind := 0
		if sess := s.receiver(job.systemID, prefer, avoid); sess == nil {
			err = ErrNoReceiver
		} else {
			bind = sess.id
			status, err = sess.request(ctx, job.pdu())
		}
		if s.recordAttempt(ctx, job, attempt, bind, status, err) || ctx.Err() != nil {
			return
		}
		if attempt < s.cfg.ReceiptAttempts && !sleep(ctx, s.cfg.ReceiptRetryInterval) {
			return
		}
	}
	s.log.Warn("receipt given up", "receipt_id", job.sub.ReceiptID, "attempts", s.cfg.ReceiptAttempts)
}

// recordAttempt notes one offer and reports whether the ESME took the
// receipt. A receipt taken for the first time is delivered once more when
// Config.DuplicateReceipts asks for it.
func (s *SMSC) recordAttempt(ctx context.Context, job receiptJob, attempt, bind int, status uint32, err error) bool {
	s.mu.Lock()
	s.receipts = append(s.receipts, ReceiptAttempt{
		ReceiptID: job.sub.ReceiptID, Attempt: attempt, Bind: bind, Duplicate: job.duplicate, Status: status, Err: err,
	})
	s.notify()
	s.mu.Unlock()
	ok := err == nil && status == smppstatus.ESME_ROK
	if !ok {
		s.log.Info("receipt not taken", "receipt_id", job.sub.ReceiptID, "attempt", attempt,
			"status", smppstatus.Name(status), "err", err)
	}
	if ok && job.repeat && !job.duplicate {
		job.duplicate = true
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.deliverReceipt(ctx, job, 1)
		}()
	}
	return ok
}

// deliverSM encodes a deliver_sm; sm longer than short_message allows goes in message_payload.
func deliverSM(from string, fromTON, fromNPI byte, to string, toTON, toNPI byte,
	esmClass, dataCoding byte, sm []byte, tlvs map[uint16][]byte) ([]byte, error) {
	p := pdu.NewDeliverSM().(*pdu.DeliverSM)
	p.SourceAddr = pdu.NewAddressWithTonNpi(fromTON, fromNPI)
	p.DestAddr = pdu.NewAddressWithTonNpi(toTON, toNPI)
	if err := p.SourceAddr.SetAddress(from); err != nil {
		return nil, fmt.Errorf("source address: %w", err)
	}
	if err := p.DestAddr.SetAddress(to); err != nil {
		return nil, fmt.Errorf("destination address: %w", err)
	}
	p.EsmClass = esmClass
	if len(sm) > smppwire.MaxShortMessage {
		p.RegisterOptionalParam(pdu.Field{Tag: pdu.Tag(smppwire.TagMessagePayload), Data: sm})
		sm = nil
	}
	msg, err := smppwire.ShortMessage(sm, dataCoding)
	if err != nil {
		return nil, err
	}
	p.Message = msg
	for tag, v := range tlvs {
		p.RegisterOptionalParam(pdu.Field{Tag: pdu.Tag(tag), Data: v})
	}
	return smppwire.Encode(p, 0), nil
}
