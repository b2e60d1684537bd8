// Package smppwire reads and writes SMPP 3.4 PDUs for both ends of a bind:
// the upstream client and the SMSC simulator.
//
// PDUs are framed here (so a response is matched by its header alone, and a
// malformed body never costs the stream its framing), built with gosmpp's pdu
// package, and the message-carrying PDUs (submit_sm, deliver_sm, data_sm) are
// decoded field by field. gosmpp's own decoding of those is lossy for a
// gateway: it forgets data_coding values it has no codec for, and rejects or
// rewrites a User Data Header it cannot parse, so a message would not be
// forwarded exactly as received.
package smppwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/linxGnu/gosmpp/pdu"
)

// Command IDs, as unsigned values (gosmpp's data package keeps them as int32).
const (
	GenericNack         uint32 = 0x80000000
	BindReceiver        uint32 = 0x00000001
	BindReceiverResp    uint32 = 0x80000001
	BindTransmitter     uint32 = 0x00000002
	BindTransmitterResp uint32 = 0x80000002
	QuerySM             uint32 = 0x00000003
	SubmitSM            uint32 = 0x00000004
	SubmitSMResp        uint32 = 0x80000004
	DeliverSM           uint32 = 0x00000005
	DeliverSMResp       uint32 = 0x80000005
	Unbind              uint32 = 0x00000006
	UnbindResp          uint32 = 0x80000006
	ReplaceSM           uint32 = 0x00000007
	CancelSM            uint32 = 0x00000008
	BindTransceiver     uint32 = 0x00000009
	BindTransceiverResp uint32 = 0x80000009
	Outbind             uint32 = 0x0000000B
	QuerySMResp         uint32 = 0x80000003
	ReplaceSMResp       uint32 = 0x80000007
	CancelSMResp        uint32 = 0x80000008
	EnquireLink         uint32 = 0x00000015
	EnquireLinkResp     uint32 = 0x80000015
	SubmitMulti         uint32 = 0x00000021
	SubmitMultiResp     uint32 = 0x80000021
	AlertNotification   uint32 = 0x00000102
	DataSM              uint32 = 0x00000103
	DataSMResp          uint32 = 0x80000103
)

// ResponseBit is set in the command_id of every response.
const ResponseBit uint32 = 0x80000000

var commandNames = map[uint32]string{
	GenericNack:         "generic_nack",
	BindReceiver:        "bind_receiver",
	BindReceiverResp:    "bind_receiver_resp",
	BindTransmitter:     "bind_transmitter",
	BindTransmitterResp: "bind_transmitter_resp",
	QuerySM:             "query_sm",
	QuerySMResp:         "query_sm_resp",
	SubmitSM:            "submit_sm",
	SubmitSMResp:        "submit_sm_resp",
	DeliverSM:           "deliver_sm",
	DeliverSMResp:       "deliver_sm_resp",
	Unbind:              "unbind",
	UnbindResp:          "unbind_resp",
	ReplaceSM:           "replace_sm",
	ReplaceSMResp:       "replace_sm_resp",
	CancelSM:            "cancel_sm",
	CancelSMResp:        "cancel_sm_resp",
	BindTransceiver:     "bind_transceiver",
	BindTransceiverResp: "bind_transceiver_resp",
	Outbind:             "outbind",
	EnquireLink:         "enquire_link",
	EnquireLinkResp:     "enquire_link_resp",
	SubmitMulti:         "submit_multi",
	SubmitMultiResp:     "submit_multi_resp",
	AlertNotification:   "alert_notification",
	DataSM:              "data_sm",
	DataSMResp:          "data_sm_resp",
}

// CommandName names a command_id of SMPP 3.4 for metrics and logs; every
// other ID is "unknown", so a peer sending garbage cannot grow a label set.
func CommandName(cmd uint32) string {
	if n, ok := commandNames[cmd]; ok {
		return n
	}
	return "unknown"
}

// KnownCommand reports whether SMPP 3.4 defines the command_id.
func KnownCommand(cmd uint32) bool {
	_, ok := commandNames[cmd]
	return ok
}

// ExpectsResponse reports whether a request is answered by a response with
// its sequence number: all but alert_notification and outbind (which the
// ESME answers with a bind of its own).
func ExpectsResponse(cmd uint32) bool {
	return cmd&ResponseBit == 0 && cmd != AlertNotification && cmd != Outbind
}

// Optional parameter (TLV) tags used by the gateway.
const (
	TagReceiptedMessageID uint16 = 0x001E
	TagSarMsgRefNum       uint16 = 0x020C
	TagSarTotalSegments   uint16 = 0x020E
	TagSarSegmentSeqnum   uint16 = 0x020F
	TagNetworkErrorCode   uint16 = 0x0423
	TagMessagePayload     uint16 = 0x0424
	TagMessageState       uint16 = 0x0427
)

// esm_class bits.
const (
	ESMClassTypeMask            = 0x3C // message type, bits 5–2
	ESMClassSMSCReceipt         = 0x04 // SMSC delivery receipt
	ESMClassIntermediateReceipt = 0x20 // intermediate delivery notification
	ESMClassUDHI                = 0x40 // short_message begins with a User Data Header
)

const (
	// HeaderLen is the size of the PDU header.
	HeaderLen = 16
	// MaxPDULen is the largest command_length accepted (gosmpp's limit too).
	MaxPDULen = 64 << 10
	// MaxShortMessage is the most octets short_message can hold; longer
	// messages go in the message_payload optional parameter.
	MaxShortMessage = 254
)

// Header is the fixed part of every PDU.
type Header struct {
	Length    uint32
	CommandID uint32
	Status    uint32
	Seq       uint32
}

// IsResponse reports whether the PDU answers a request (generic_nack included).
func (h Header) IsResponse() bool { return h.CommandID&ResponseBit != 0 }

// Frame is one PDU as read from the wire: its header, and the whole PDU with the header.
type Frame struct {
	Header
	Raw []byte
}

// Body returns the PDU without its header.
func (f Frame) Body() []byte { return f.Raw[HeaderLen:] }

// HeaderOf reads the header of an encoded PDU; ok is false when raw is
// shorter than a header.
func HeaderOf(raw []byte) (h Header, ok bool) {
	if len(raw) < HeaderLen {
		return Header{}, false
	}
	return Header{
		Length:    binary.BigEndian.Uint32(raw[0:]),
		CommandID: binary.BigEndian.Uint32(raw[4:]),
		Status:    binary.BigEndian.Uint32(raw[8:]),
		Seq:       binary.BigEndian.Uint32(raw[12:]),
	}, true
}

// ErrBadLength means the peer sent a command_length no PDU can have. The
// stream can no longer be split into PDUs, so the connection must close.
var ErrBadLength = errors.New("invalid command_length")

// ReadFrame reads one PDU. After an error wrapping ErrBadLength the returned
// frame still holds the header, so a generic_nack can name its sequence number.
func ReadFrame(r io.Reader) (Frame, error) { return ReadFrameMax(r, MaxPDULen) }

// ReadFrameMax reads one PDU of at most maxLen octets (and never more than
// MaxPDULen): a longer command_length is an error wrapping ErrBadLength,
// found before anything is allocated for the body.
func ReadFrameMax(r io.Reader, maxLen uint32) (Frame, error) {
	var hb [HeaderLen]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return Frame{}, err
	}
	h, _ := HeaderOf(hb[:])
	if h.Length < HeaderLen || h.Length > min(maxLen, MaxPDULen) {
		return Frame{Header: h}, fmt.Errorf("%w: %d", ErrBadLength, h.Length)
	}
	raw := make([]byte, h.Length)
	copy(raw, hb[:])
	if _, err := io.ReadFull(r, raw[HeaderLen:]); err != nil {
		return Frame{Header: h}, fmt.Errorf("reading body of a %d-byte PDU: %w", h.Length, err)
	}
	return Frame{Header: h, Raw: raw}, nil
}

// HeaderOnly returns a PDU without a body: enquire_link, unbind, their
// responses, generic_nack, and error responses.
func HeaderOnly(cmd, status, seq uint32) []byte {
	b := make([]byte, HeaderLen)
	binary.BigEndian.PutUint32(b[0:], HeaderLen)
	binary.BigEndian.PutUint32(b[4:], cmd)
	binary.BigEndian.PutUint32(b[8:], status)
	binary.BigEndian.PutUint32(b[12:], seq)
	return b
}

// MessageIDResp returns a response whose body is one message_id C-Octet
// String: submit_sm_resp, deliver_sm_resp, data_sm_resp.
func MessageIDResp(cmd, status, seq uint32, messageID string) []byte {
	b := HeaderOnly(cmd, status, seq)
	b = append(b, messageID...)
	b = append(b, 0)
	binary.BigEndian.PutUint32(b[0:], uint32(len(b)))
	return b
}

// SetSeq writes a sequence number into an encoded PDU.
func SetSeq(raw []byte, seq uint32) { binary.BigEndian.PutUint32(raw[12:], seq) }

// Encode marshals a gosmpp PDU with the given sequence number.
func Encode(p pdu.PDU, seq uint32) []byte {
	p.SetSequenceNumber(int32(seq))
	buf := pdu.NewBuffer(nil)
	p.Marshal(buf)
	return buf.Bytes()
}

// Decode parses a frame with gosmpp, turning a panic inside the parser into an error.
func Decode(f Frame) (p pdu.PDU, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("malformed PDU 0x%08X: %v", f.CommandID, r)
		}
	}()
	p, err = pdu.Parse(bytes.NewReader(f.Raw))
	if err != nil {
		return nil, fmt.Errorf("malformed PDU 0x%08X: %w", f.CommandID, err)
	}
	return p, nil
}

// RawCoding is a gosmpp encoding that passes bytes through untouched and
// reports a fixed data_coding, so a message goes out exactly as encoded.
type RawCoding byte

// Encode implements gosmpp's data.Encoding.
func (c RawCoding) Encode(s string) ([]byte, error) { return []byte(s), nil }

// Decode implements gosmpp's data.Encoding.
func (c RawCoding) Decode(b []byte) (string, error) { return string(b), nil }

// DataCoding implements gosmpp's data.Encoding.
func (c RawCoding) DataCoding() byte { return byte(c) }

// ShortMessage returns a gosmpp short message holding b as is, with the given
// data_coding. A b longer than MaxShortMessage must go in message_payload instead.
func ShortMessage(b []byte, dataCoding byte) (pdu.ShortMessage, error) {
	return pdu.NewBinaryShortMessageWithEncoding(b, RawCoding(dataCoding))
}

// Message is the body of a submit_sm, deliver_sm or data_sm.
type Message struct {
	ServiceType        string
	SourceTON          byte
	SourceNPI          byte
	Source             string
	DestTON            byte
	DestNPI            byte
	Dest               string
	ESMClass           byte
	ProtocolID         byte
	PriorityFlag       byte
	ScheduleDelivery   string
	ValidityPeriod     string
	RegisteredDelivery byte
	ReplaceIfPresent   byte
	DataCoding         byte
	DefaultMsgID       byte
	ShortMessage       []byte            // as on the wire, User Data Header included
	TLVs               map[uint16][]byte // optional parameters by tag; the first of a repeated tag wins
}

// DecodeMessage reads the body of a submit_sm, deliver_sm or data_sm (cmd says which).
func DecodeMessage(cmd uint32, body []byte) (Message, error) {
	var m Message
	r := BodyReader{b: body}
	m.ServiceType = r.CString(6, "service_type")
	m.SourceTON, m.SourceNPI = r.Byte("source_addr_ton"), r.Byte("source_addr_npi")
	m.Source = r.CString(65, "source_addr")
	m.DestTON, m.DestNPI = r.Byte("dest_addr_ton"), r.Byte("dest_addr_npi")
	m.Dest = r.CString(65, "destination_addr")
	m.ESMClass = r.Byte("esm_class")
	if cmd == DataSM {
		m.RegisteredDelivery = r.Byte("registered_delivery")
		m.DataCoding = r.Byte("data_coding")
	} else {
		m.ProtocolID = r.Byte("protocol_id")
		m.PriorityFlag = r.Byte("priority_flag")
		m.ScheduleDelivery = r.CString(17, "schedule_delivery_time")
		m.ValidityPeriod = r.CString(17, "validity_period")
		m.RegisteredDelivery = r.Byte("registered_delivery")
		m.ReplaceIfPresent = r.Byte("replace_if_present_flag")
		m.DataCoding = r.Byte("data_coding")
		m.DefaultMsgID = r.Byte("sm_default_msg_id")
		n := r.Byte("sm_length")
		m.ShortMessage = r.Bytes(int(n), "short_message")
	}
	m.TLVs = r.TLVs()
	if err := r.Err(); err != nil {
		return Message{}, err
	}
	return m, nil
}

// Text returns the short message, or the message_payload optional parameter
// when the short message is empty.
func (m Message) Text() []byte {
	if len(m.ShortMessage) > 0 {
		return m.ShortMessage
	}
	return m.TLVs[TagMessagePayload]
}

// BodyReader reads PDU fields in order. After the first error every read
// returns a zero value, and Err reports that first error.
type BodyReader struct {
	b   []byte
	err error
}

// NewBodyReader reads b.
func NewBodyReader(b []byte) *BodyReader { return &BodyReader{b: b} }

// Err returns the first error.
func (r *BodyReader) Err() error { return r.err }

// Len returns the octets not yet read.
func (r *BodyReader) Len() int { return len(r.b) }

func (r *BodyReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

// Byte reads one octet.
func (r *BodyReader) Byte(field string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.fail("PDU body ends before %s", field)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// Bytes reads n octets into a new slice.
func (r *BodyReader) Bytes(n int, field string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail("%s of %d octets overruns the PDU body (%d left)", field, n, len(r.b))
		return nil
	}
	v := bytes.Clone(r.b[:n])
	r.b = r.b[n:]
	return v
}

// CString reads a C-Octet String of at most max octets, its NUL included.
func (r *BodyReader) CString(max int, field string) string {
	if r.err != nil {
		return ""
	}
	i := bytes.IndexByte(r.b, 0)
	switch {
	case i < 0:
		r.fail("%s is not NUL-terminated", field)
		return ""
	case i+1 > max:
		r.fail("%s is %d octets long, at most %d are allowed", field, i+1, max)
		return ""
	}
	v := string(r.b[:i])
	r.b = r.b[i+1:]
	return v
}

// TLVs reads optional parameters to the end of the body.
func (r *BodyReader) TLVs() map[uint16][]byte {
	if r.err != nil || len(r.b) == 0 {
		return nil
	}
	m := make(map[uint16][]byte)
	for len(r.b) > 0 && r.err == nil {
		if len(r.b) < 4 {
			r.fail("%d stray octets after the optional parameters", len(r.b))
			break
		}
		tag := binary.BigEndian.Uint16(r.b[0:])
		n := int(binary.BigEndian.Uint16(r.b[2:]))
		r.b = r.b[4:]
		v := r.Bytes(n, fmt.Sprintf("optional parameter 0x%04X", tag))
		if _, dup := m[tag]; !dup && r.err == nil {
			m[tag] = v
		}
	}
	return m
}

// TLVString reads a C-Octet String optional parameter, tolerating a missing NUL.
func TLVString(v []byte) string {
	if i := bytes.IndexByte(v, 0); i >= 0 {
		v = v[:i]
	}
	return string(v)
}

// MessageStates names the values of the message_state optional parameter
// (SMPP 3.4 §5.2.28) by the state words of the receipt text form.
var MessageStates = map[byte]string{
	1: "ENROUTE",
	2: "DELIVRD",
	3: "EXPIRED",
	4: "DELETED",
	5: "UNDELIV",
	6: "ACCEPTD",
	7: "UNKNOWN",
	8: "REJECTD",
}

// MessageState returns the message_state value of a state word, and 0 for
// an unknown word.
func MessageState(stat string) byte {
	for v, s := range MessageStates {
		if s == stat {
			return v
		}
	}
	return 0
}
