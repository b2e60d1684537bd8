package smppserver

import (
	"encoding/binary"
	"slices"

	"github.com/smsgw/smsgw/connectors/smppwire"
)

// Optional parameter tags the server reads or writes besides smppwire's.
const (
	tagQOSTimeToLive      uint16 = 0x0017
	tagSCInterfaceVersion uint16 = 0x0210
)

// InterfaceVersion is the SMPP version the server speaks, sent in the
// sc_interface_version optional parameter of every bind response.
const InterfaceVersion = 0x34

// EncodeMessage writes a submit_sm, deliver_sm or data_sm (cmd says which)
// with body m and sequence number seq: the inverse of smppwire.DecodeMessage.
// Optional parameters are written in tag order, so the bytes are
// reproducible. A short_message longer than 255 octets is cut at 255; put
// longer ones in the message_payload optional parameter.
func EncodeMessage(cmd, seq uint32, m smppwire.Message) []byte {
	b := header(cmd, 0, seq)
	b = appendCString(b, m.ServiceType)
	b = append(b, m.SourceTON, m.SourceNPI)
	b = appendCString(b, m.Source)
	b = append(b, m.DestTON, m.DestNPI)
	b = appendCString(b, m.Dest)
	b = append(b, m.ESMClass)
	if cmd == smppwire.DataSM {
		b = append(b, m.RegisteredDelivery, m.DataCoding)
	} else {
		b = append(b, m.ProtocolID, m.PriorityFlag)
		b = appendCString(b, m.ScheduleDelivery)
		b = appendCString(b, m.ValidityPeriod)
		b = append(b, m.RegisteredDelivery, m.ReplaceIfPresent, m.DataCoding, m.DefaultMsgID)
		sm := m.ShortMessage
		if len(sm) > 255 {
			sm = sm[:255]
		}
		b = append(b, byte(len(sm)))
		b = append(b, sm...)
	}
	b = appendTLVs(b, m.TLVs)
	return finish(b)
}

// header starts a PDU; finish writes its command_length.
func header(cmd, status, seq uint32) []byte {
	b := make([]byte, smppwire.HeaderLen, 64)
	binary.BigEndian.PutUint32(b[4:], cmd)
	binary.BigEndian.PutUint32(b[8:], status)
	binary.BigEndian.PutUint32(b[12:], seq)
	return b
}

func finish(b []byte) []byte {
	binary.BigEndian.PutUint32(b[0:], uint32(len(b)))
	return b
}

func appendCString(b []byte, s string) []byte {
	b = append(b, s...)
	return append(b, 0)
}

func appendTLVs(b []byte, tlvs map[uint16][]byte) []byte {
	tags := make([]uint16, 0, len(tlvs))
	for t := range tlvs {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	for _, t := range tags {
		v := tlvs[t]
		b = binary.BigEndian.AppendUint16(b, t)
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	return b
}

// bindRequest is the body of a bind_transmitter, bind_receiver or bind_transceiver.
type bindRequest struct {
	SystemID         string
	Password         string
	SystemType       string
	InterfaceVersion byte
	AddrTON, AddrNPI byte
	AddressRange     string
}

// decodeBind reads a bind body. Passwords longer than SMPP 3.4's 8 octets
// are accepted, as many ESMEs send them.
func decodeBind(body []byte) (bindRequest, error) {
	r := smppwire.NewBodyReader(body)
	var b bindRequest
	b.SystemID = r.CString(16, "system_id")
	b.Password = r.CString(65, "password")
	b.SystemType = r.CString(13, "system_type")
	b.InterfaceVersion = r.Byte("interface_version")
	b.AddrTON, b.AddrNPI = r.Byte("addr_ton"), r.Byte("addr_npi")
	b.AddressRange = r.CString(41, "address_range")
	r.TLVs()
	return b, r.Err()
}

// bindResp answers a bind with our system_id and sc_interface_version.
func bindResp(cmd, seq uint32, systemID string) []byte {
	b := header(cmd|smppwire.ResponseBit, 0, seq)
	b = appendCString(b, systemID)
	b = appendTLVs(b, map[uint16][]byte{tagSCInterfaceVersion: {InterfaceVersion}})
	return finish(b)
}

// messageRef is the message an ESME names in query_sm, cancel_sm or replace_sm.
type messageRef struct {
	MessageID string
	Source    string
	// replace_sm only:
	ScheduleDelivery string
	ValidityPeriod   string
	ShortMessage     []byte
}

// decodeQuery reads a query_sm body.
func decodeQuery(body []byte) (messageRef, error) {
	r := smppwire.NewBodyReader(body)
	var q messageRef
	q.MessageID = r.CString(65, "message_id")
	r.Byte("source_addr_ton")
	r.Byte("source_addr_npi")
	q.Source = r.CString(65, "source_addr")
	return q, r.Err()
}

// decodeCancel reads a cancel_sm body.
func decodeCancel(body []byte) (messageRef, error) {
	r := smppwire.NewBodyReader(body)
	var q messageRef
	r.CString(6, "service_type")
	q.MessageID = r.CString(65, "message_id")
	r.Byte("source_addr_ton")
	r.Byte("source_addr_npi")
	q.Source = r.CString(65, "source_addr")
	r.Byte("dest_addr_ton")
	r.Byte("dest_addr_npi")
	r.CString(65, "destination_addr")
	return q, r.Err()
}

// decodeReplace reads a replace_sm body.
func decodeReplace(body []byte) (messageRef, error) {
	r := smppwire.NewBodyReader(body)
	var q messageRef
	q.MessageID = r.CString(65, "message_id")
	r.Byte("source_addr_ton")
	r.Byte("source_addr_npi")
	q.Source = r.CString(65, "source_addr")
	q.ScheduleDelivery = r.CString(17, "schedule_delivery_time")
	q.ValidityPeriod = r.CString(17, "validity_period")
	r.Byte("registered_delivery")
	r.Byte("sm_default_msg_id")
	n := r.Byte("sm_length")
	q.ShortMessage = r.Bytes(int(n), "short_message")
	r.TLVs()
	return q, r.Err()
}

// querySMRespPDU answers a query_sm.
func querySMRespPDU(seq uint32, messageID, finalDate string, state, errorCode byte) []byte {
	b := header(smppwire.QuerySMResp, 0, seq)
	b = appendCString(b, messageID)
	b = appendCString(b, finalDate)
	b = append(b, state, errorCode)
	return finish(b)
}
