package segment

import "fmt"

// Information element identifiers of the concatenation headers.
const (
	IEIConcat8  = 0x00 // concatenated short message, 8-bit reference
	IEIConcat16 = 0x08 // concatenated short message, 16-bit reference
)

// IE is one information element of a user data header.
type IE struct {
	ID   byte   `json:"id"`
	Data []byte `json:"data"`
}

// Concat is what a concatenation element says about a part.
type Concat struct {
	Ref        uint16 `json:"ref"`
	Total      int    `json:"total"`
	Seq        int    `json:"seq"`
	SixteenBit bool   `json:"sixteenBit"`
}

// UDH is a parsed user data header.
type UDH struct {
	// IEs are all elements in order, the concatenation element included.
	IEs []IE `json:"ies"`
	// Concat is the concatenation element (the last one, if several), or nil.
	Concat *Concat `json:"concat,omitempty"`
}

// Len returns the length of the header in octets, its length octet included.
func (u UDH) Len() int {
	n := 1
	for _, ie := range u.IEs {
		n += 2 + len(ie.Data)
	}
	return n
}

// Bytes returns the header as it is sent: its length octet, then each
// element. It returns nil when the elements are longer than 255 octets in
// all, or one element's data longer than 255.
func (u UDH) Bytes() []byte {
	n := u.Len()
	if n-1 > 0xFF {
		return nil
	}
	out := make([]byte, 1, n)
	out[0] = byte(n - 1)
	for _, ie := range u.IEs {
		if len(ie.Data) > 0xFF {
			return nil
		}
		out = append(out, ie.ID, byte(len(ie.Data)))
		out = append(out, ie.Data...)
	}
	return out
}

// BuildConcatUDH returns the header of part seq of total: 05 00 03 ref total
// seq with an 8-bit reference (the low octet of ref), or 06 08 04 refHi refLo
// total seq with a 16-bit one. total and seq are written as single octets;
// Split keeps them within 1–255.
func BuildConcatUDH(ref uint16, total, seq int, sixteenBit bool) []byte {
	if sixteenBit {
		return []byte{0x06, IEIConcat16, 0x04, byte(ref >> 8), byte(ref), byte(total), byte(seq)}
	}
	return []byte{0x05, IEIConcat8, 0x03, byte(ref), byte(total), byte(seq)}
}

// ParseUDH parses the user data header at the start of b (the
// short_message of a PDU whose esm_class has the UDHI bit) and returns it
// with the octets that follow it. Elements other than concatenation are kept
// opaque. Errors wrap ErrInvalidUDH: a header length beyond the data, an
// element that overruns the header, a concatenation element of the wrong
// length, with a total of 0, or a sequence number of 0 or above the total.
func ParseUDH(b []byte) (UDH, []byte, error) {
	var u UDH
	if len(b) == 0 {
		return u, nil, fmt.Errorf("%w: no header length octet", ErrInvalidUDH)
	}
	udhl := int(b[0])
	if udhl > len(b)-1 {
		return u, nil, fmt.Errorf("%w: header length %d but only %d octets follow", ErrInvalidUDH, udhl, len(b)-1)
	}
	h, rest := b[1:1+udhl], b[1+udhl:]
	for i := 0; i < len(h); {
		if i+2 > len(h) {
			return UDH{}, nil, fmt.Errorf("%w: element at octet %d has no length", ErrInvalidUDH, i+1)
		}
		id, n := h[i], int(h[i+1])
		if i+2+n > len(h) {
			return UDH{}, nil, fmt.Errorf("%w: element 0x%02X at octet %d claims %d octets, %d remain", ErrInvalidUDH, id, i+1, n, len(h)-i-2)
		}
		data := make([]byte, n)
		copy(data, h[i+2:])
		u.IEs = append(u.IEs, IE{ID: id, Data: data})
		switch id {
		case IEIConcat8, IEIConcat16:
			c, err := parseConcat(id, data)
			if err != nil {
				return UDH{}, nil, err
			}
			u.Concat = c
		}
		i += 2 + n
	}
	return u, rest, nil
}

func parseConcat(id byte, d []byte) (*Concat, error) {
	var c Concat
	switch {
	case id == IEIConcat8 && len(d) == 3:
		c = Concat{Ref: uint16(d[0]), Total: int(d[1]), Seq: int(d[2])}
	case id == IEIConcat16 && len(d) == 4:
		c = Concat{Ref: uint16(d[0])<<8 | uint16(d[1]), Total: int(d[2]), Seq: int(d[3]), SixteenBit: true}
	default:
		return nil, fmt.Errorf("%w: concatenation element 0x%02X with %d octets of data", ErrInvalidUDH, id, len(d))
	}
	switch {
	case c.Total == 0:
		return nil, fmt.Errorf("%w: concatenation total is 0", ErrInvalidUDH)
	case c.Seq == 0 || c.Seq > c.Total:
		return nil, fmt.Errorf("%w: concatenation part %d of %d", ErrInvalidUDH, c.Seq, c.Total)
	}
	return &c, nil
}

// DecodePayload decodes an incoming short_message (from submit_sm,
// deliver_sm or data_sm): when esmClass has the UDHI bit (0x40) the header is
// parsed and returned, and the rest is decoded by dataCoding (GSM7 as
// unpacked septets, one per octet). Binary8 octets are returned unchanged in
// the string. Errors wrap ErrUnsupportedDataCoding, ErrInvalidUDH or
// ErrInvalidPayload.
func DecodePayload(dataCoding byte, esmClass byte, payload []byte) (string, *UDH, error) {
	enc, err := DecodeDataCoding(dataCoding)
	if err != nil {
		return "", nil, err
	}
	var udh *UDH
	if esmClass&ESMClassUDHI != 0 {
		u, rest, err := ParseUDH(payload)
		if err != nil {
			return "", nil, err
		}
		udh, payload = &u, rest
	}
	text, err := decodeText(enc, payload)
	if err != nil {
		return "", nil, fmt.Errorf("%w (%s): %w", ErrInvalidPayload, enc, err)
	}
	return text, udh, nil
}
