package smppclient

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/connectors/smppstatus"
	"github.com/smsgw/smsgw/connectors/smppwire"
)

// deliver handles one deliver_sm or data_sm and returns the command_status
// to answer it with, and the MO it was when it was one.
func (c *Client) deliver(ctx context.Context, f smppwire.Frame) (uint32, *smsgw.MO) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HandlerTimeout)
	defer cancel()
	now := time.Now().UTC()

	m, err := smppwire.DecodeMessage(f.CommandID, f.Body())
	if err != nil {
		c.log.Error("unreadable deliver_sm or data_sm refused", "err", err, "seq", f.Seq, "pdu", fmt.Sprintf("%x", f.Raw))
		c.metrics.mo.WithLabelValues("invalid").Inc()
		return smppstatus.ESME_RX_P_APPN, nil
	}

	if isReceipt(m) {
		r, err := c.receiptFrom(m, now)
		if err != nil {
			// It can never be matched; answering a temporary error would only
			// bring it back forever. The log keeps it.
			c.log.Error("receipt without a readable id or state refused", "err", err, "text", string(m.Text()))
			c.metrics.receipts.WithLabelValues("invalid").Inc()
			return smppstatus.ESME_RX_P_APPN, nil
		}
		if err := c.handler.HandleReceipt(ctx, r); err != nil {
			c.log.Warn("receipt not held; the SMSC will deliver it again", "upstream_id", r.UpstreamID, "err", err)
			c.metrics.receipts.WithLabelValues("handler_error").Inc()
			return smppstatus.ESME_RX_T_APPN, nil
		}
		c.metrics.receipts.WithLabelValues("ok").Inc()
		return smppstatus.ESME_ROK, nil
	}

	mo := smsgw.MO{
		ConnectorID:  c.cfg.ID,
		From:         m.Source,
		To:           m.Dest,
		DataCoding:   m.DataCoding,
		ESMClass:     m.ESMClass,
		ShortMessage: m.Text(),
		SAR:          sarFrom(m.TLVs),
		ReceivedAt:   now,
	}
	if err := c.handler.HandleMO(ctx, mo); err != nil {
		c.log.Warn("MO not held; the SMSC will deliver it again", "err", err)
		c.metrics.mo.WithLabelValues("handler_error").Inc()
		return smppstatus.ESME_RX_T_APPN, nil
	}
	c.metrics.mo.WithLabelValues("ok").Inc()
	return smppstatus.ESME_ROK, &mo
}

// isReceipt reports whether a deliver_sm or data_sm is a delivery receipt:
// its esm_class says so, or it carries both receipt optional parameters.
func isReceipt(m smppwire.Message) bool {
	switch m.ESMClass & smppwire.ESMClassTypeMask {
	case smppwire.ESMClassSMSCReceipt, smppwire.ESMClassIntermediateReceipt:
		return true
	}
	_, id := m.TLVs[smppwire.TagReceiptedMessageID]
	_, state := m.TLVs[smppwire.TagMessageState]
	return id && state
}

// receiptFrom reads a receipt: the receipted_message_id, message_state and
// network_error_code optional parameters where present, else the text form.
func (c *Client) receiptFrom(m smppwire.Message, now time.Time) (smsgw.Receipt, error) {
	var text smsgw.ReceiptText
	var textErr error
	if t := m.Text(); len(t) > 0 {
		text, textErr = smsgw.ParseReceiptText(string(t))
	} else {
		textErr = fmt.Errorf("no receipt text")
	}

	id, stat, errCode := text.ID, text.Stat, text.Err
	if v, ok := m.TLVs[smppwire.TagReceiptedMessageID]; ok && smppwire.TLVString(v) != "" {
		id = smppwire.TLVString(v)
	}
	if v, ok := m.TLVs[smppwire.TagMessageState]; ok && len(v) == 1 {
		if s, known := smppwire.MessageStates[v[0]]; known {
			stat = s
		}
	}
	if v, ok := m.TLVs[smppwire.TagNetworkErrorCode]; ok && len(v) == 3 && errCode == "" {
		errCode = fmt.Sprintf("%03d", binary.BigEndian.Uint16(v[1:]))
	}
	if id == "" || stat == "" {
		return smsgw.Receipt{}, fmt.Errorf("receipt has no id or state in its optional parameters, and its text is unusable: %w", textErr)
	}
	return smsgw.Receipt{
		ConnectorID: c.cfg.ID,
		UpstreamID:  smsgw.NormalizeUpstreamID(id, c.cfg.ReceiptIDFormat),
		Stat:        stat,
		Err:         errCode,
		DoneAt:      text.DoneDate,
		ReceivedAt:  now,
		Raw:         rawReceipt(m.Text()),
	}, nil
}

// rawReceipt is a receipt's text as kept with it: at most
// smsgw.MaxRawReceipt bytes, and valid UTF-8 (other bytes are replaced).
func rawReceipt(text []byte) string {
	if len(text) > smsgw.MaxRawReceipt {
		text = text[:smsgw.MaxRawReceipt]
	}
	return strings.ToValidUTF8(string(text), "\uFFFD")
}

// sarFrom reads the sar_* optional parameters, or returns nil when they are
// missing or malformed.
func sarFrom(tlvs map[uint16][]byte) *smsgw.SAR {
	ref, total, seq := tlvs[smppwire.TagSarMsgRefNum], tlvs[smppwire.TagSarTotalSegments], tlvs[smppwire.TagSarSegmentSeqnum]
	if len(ref) != 2 || len(total) != 1 || len(seq) != 1 {
		return nil
	}
	return &smsgw.SAR{Ref: binary.BigEndian.Uint16(ref), Total: total[0], Seq: seq[0]}
}
