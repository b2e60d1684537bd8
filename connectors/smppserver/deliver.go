package smppserver

import (
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppwire"
	"github.com/smsgw/smsgw/segment"
)

// ReceiptPDU builds the deliver_sm telling a customer a message's status:
// from the message's destination to its sender, esm_class 0x04, the text
//
//	id:<message ID> sub:001 dlvrd:001 submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DELIVRD err:000 text:
//
// (dlvrd:000 unless delivered), and the receipted_message_id and
// message_state optional parameters. Its sequence number is 0.
func ReceiptPDU(n smsgw.Notification) []byte {
	stat := ReceiptStat(n)
	text := smsgw.ReceiptText{
		ID:         n.MessageID,
		Sub:        "001",
		SubmitDate: n.SubmittedAt,
		DoneDate:   n.OccurredAt,
		Stat:       stat,
		Err:        receiptErr(n.ErrorCode),
	}
	m := smppwire.Message{
		ESMClass:     smppwire.ESMClassSMSCReceipt,
		ShortMessage: []byte(text.String()),
		TLVs: map[uint16][]byte{
			smppwire.TagReceiptedMessageID: append([]byte(n.MessageID), 0),
		},
	}
	if state := smppwire.MessageState(stat); state != 0 {
		m.TLVs[smppwire.TagMessageState] = []byte{state}
	}
	m.SourceTON, m.SourceNPI, m.Source = address(n.To)
	m.DestTON, m.DestNPI, m.Dest = address(n.From)
	return EncodeMessage(smppwire.DeliverSM, 0, m)
}

// ReceiptStat is the stat word of a notification's receipt. A final status
// decides it (FAILED, which SMPP has no word for, is UNDELIV; an upstream
// DELETED stays DELETED); an intermediate one repeats upstream's word, or
// says ENROUTE.
func ReceiptStat(n smsgw.Notification) string {
	switch n.Status {
	case smsgw.StatusDelivered:
		return "DELIVRD"
	case smsgw.StatusUndeliverable:
		if n.Stat == "DELETED" {
			return "DELETED"
		}
		return "UNDELIV"
	case smsgw.StatusFailed:
		return "UNDELIV"
	case smsgw.StatusCancelled:
		return "DELETED"
	case smsgw.StatusExpired:
		return "EXPIRED"
	case smsgw.StatusRejected:
		return "REJECTD"
	}
	if n.Stat != "" {
		return n.Stat
	}
	return "ENROUTE"
}

// receiptErr gives the three-digit err: of a receipt; codes that are not
// numbers (our own failure reasons) read 000.
func receiptErr(code string) string {
	if code == "" || len(code) > 3 || !allDigits(code) {
		return "000"
	}
	return strings.Repeat("0", 3-len(code)) + code
}

// address gives the TON, NPI and digits SMPP carries a number in:
// international for E.164 numbers, unknown/ISDN for short codes, and
// alphanumeric for the rest.
func address(s string) (ton, npi byte, addr string) {
	digits := strings.TrimPrefix(s, "+")
	switch {
	case allDigits(digits) && (len(digits) != len(s) || len(digits) > 8):
		return 1, 1, digits
	case allDigits(digits):
		return 0, 1, digits
	}
	return 5, 0, s
}

// BalancePDUs builds the deliver_sm telling a customer its available
// balance fell below a threshold: a plain message (esm_class 0) from
// source, with no destination, its text the alert's (smsgw.BalanceAlert.Text),
// in parts if it needs several. Building twice gives the same bytes.
func BalancePDUs(a smsgw.BalanceAlert, source string) ([][]byte, error) {
	return MOPDUs(smsgw.InboundMessage{ID: a.ID, From: source, Text: a.Text()})
}

// MOPDUs builds the deliver_sm carrying a mobile-originated message to a
// customer: GSM 7-bit when every character fits, UCS-2 otherwise, in parts
// with a concatenation header when the text needs several. The reference
// number is derived from the message ID, so building twice gives the same
// bytes.
func MOPDUs(in smsgw.InboundMessage) ([][]byte, error) {
	opt := segment.Options{MaxSegments: segment.MaxSegmentsLimit}
	if enc, err := segment.ParseEncoding(in.Encoding); err == nil && enc == segment.Binary8 {
		opt.Force = segment.Binary8
	}
	h := fnv.New32a()
	h.Write([]byte(in.ID))
	plan, err := segment.Split(in.Text, opt, uint16(h.Sum32()))
	if err != nil {
		return nil, fmt.Errorf("mobile-originated message %s: %w", in.ID, err)
	}
	pdus := make([][]byte, len(plan.Parts))
	for i, p := range plan.Parts {
		m := smppwire.Message{ESMClass: p.ESMClass, DataCoding: plan.DataCoding, ShortMessage: p.Payload}
		m.SourceTON, m.SourceNPI, m.Source = address(in.From)
		m.DestTON, m.DestNPI, m.Dest = address(in.To)
		pdus[i] = EncodeMessage(smppwire.DeliverSM, 0, m)
	}
	return pdus, nil
}
