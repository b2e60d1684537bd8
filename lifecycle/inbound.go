package lifecycle

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/segment"
	"github.com/smsgw/smsgw/workflows"
)

// StartInbound starts the workflow an MO needs, and returns once Temporal
// holds it: then, and only then, may the connector answer deliver_sm_resp.
// id is the inbound message ID, or for a part of a concatenated message
// the ID of its reassembly workflow. duplicate is true for a deliver_sm
// already taken within the dedup window. idKey keys the hash that names the
// workflows (see idHash).
func StartInbound(ctx context.Context, c client.Client, idKey []byte, mo smsgw.MO) (id string, duplicate bool, err error) {
	text, encoding, concat := decodeMO(mo)
	if concat == nil {
		id = singleInboundID(idKey, mo)
		_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                                       id,
			TaskQueue:                                workflows.TaskQueue,
			WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			WorkflowExecutionErrorWhenAlreadyStarted: true,
			StaticSummary:                            "inbound message via " + mo.ConnectorID,
		}, workflows.InboundWorkflow, workflows.InboundInput{
			Message: smsgw.InboundMessage{
				ID: id, From: mo.From, To: mo.To, Text: text, Encoding: encoding, Parts: 1,
				Connector: mo.ConnectorID, ReceivedAt: mo.ReceivedAt.UTC(),
			},
			DedupWindow: workflows.InboundDedupWindow,
		})
		var already *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &already) {
			return id, true, nil
		}
		if err != nil {
			return id, false, smsgw.Unavailable("workflow engine", err)
		}
		return id, false, nil
	}

	in := workflows.ReassemblyInput{
		ConnectorID: mo.ConnectorID, From: mo.From, To: mo.To, Ref: concat.Ref, Total: concat.Total,
		Timeout: workflows.ReassemblyTimeout, DedupWindow: workflows.InboundDedupWindow,
	}
	id = reassemblyID(idKey, in)
	_, err = c.SignalWithStartWorkflow(ctx, id, workflows.SignalInboundPart,
		workflows.InboundPart{Seq: concat.Seq, Text: text, Encoding: encoding, ReceivedAt: mo.ReceivedAt.UTC()},
		client.StartWorkflowOptions{
			ID:                    id,
			TaskQueue:             workflows.TaskQueue,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			StaticSummary:         "reassembly of a concatenated inbound message via " + mo.ConnectorID,
		}, workflows.ReassemblyWorkflow, in)
	if err != nil {
		return id, false, smsgw.Unavailable("workflow engine", err)
	}
	return id, false, nil
}

// moConcat is where a part sits in a concatenated message.
type moConcat struct {
	Ref   uint16
	Total int
	Seq   int
}

// decodeMO decodes an MO's text and finds its concatenation header (UDH, or
// else sar_* parameters). Text that cannot be decoded is never dropped: 8-bit
// data and text in a data coding the gateway cannot read are given as hex,
// with encoding BINARY8 or UNKNOWN. A header that does not describe a part
// of a message of at least two parts is treated as none.
func decodeMO(mo smsgw.MO) (text, encoding string, concat *moConcat) {
	text, udh, err := segment.DecodePayload(mo.DataCoding, mo.ESMClass, mo.ShortMessage)
	if err != nil {
		payload := mo.ShortMessage
		if mo.ESMClass&segment.ESMClassUDHI != 0 {
			if u, rest, uerr := segment.ParseUDH(payload); uerr == nil {
				udh, payload = &u, rest
			}
		}
		text, encoding = hex.EncodeToString(payload), "UNKNOWN"
	} else {
		enc, _ := segment.DecodeDataCoding(mo.DataCoding)
		encoding = enc.String()
		if enc == segment.Binary8 {
			text = hex.EncodeToString([]byte(text))
		}
	}
	switch {
	case udh != nil && udh.Concat != nil:
		concat = &moConcat{Ref: udh.Concat.Ref, Total: udh.Concat.Total, Seq: udh.Concat.Seq}
	case mo.SAR != nil:
		concat = &moConcat{Ref: mo.SAR.Ref, Total: int(mo.SAR.Total), Seq: int(mo.SAR.Seq)}
	}
	if concat != nil && (concat.Total < 2 || concat.Seq < 1 || concat.Seq > concat.Total) {
		concat = nil
	}
	return text, encoding, concat
}

// singleInboundID derives an MO's ID from what upstream sent, so the same
// deliver_sm delivered again names the same message. No phone number shows
// in it: workflow IDs, like search attributes, are stored unencrypted.
func singleInboundID(idKey []byte, mo smsgw.MO) string {
	h := idHash(idKey)
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00%d\x00%x", mo.ConnectorID, mo.From, mo.To, mo.DataCoding, mo.ESMClass, mo.ShortMessage)
	if mo.SAR != nil {
		fmt.Fprintf(h, "\x00%d/%d/%d", mo.SAR.Ref, mo.SAR.Total, mo.SAR.Seq)
	}
	return "mo-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// reassemblyID names the reassembly of (connector, source, destination,
// reference, total), hashed so that no phone number shows in a workflow ID.
func reassemblyID(idKey []byte, in workflows.ReassemblyInput) string {
	h := idHash(idKey)
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00%d", in.ConnectorID, in.From, in.To, in.Ref, in.Total)
	return "mo-parts-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// idHash is the hash that turns phone numbers into workflow IDs: an
// HMAC-SHA256 under the gateway's workflow ID key. Without a key it is a
// plain SHA-256, as IDs were named before there was one; anybody can
// reverse that by hashing every number of a country, so every deployment
// sets a key (the gateway refuses to seal payloads without one). IDs named
// under one scheme are not found under the other, and running workflows
// keep the IDs they have: a reassembly in progress when the key is first
// set (or changed) delivers the parts it has, flagged partial, at its
// timeout, and the later parts form another message; a deliver_sm that
// upstream repeats across the change is not recognised as a repeat.
func idHash(idKey []byte) hash.Hash {
	if len(idKey) == 0 {
		return sha256.New()
	}
	return hmac.New(sha256.New, idKey)
}
