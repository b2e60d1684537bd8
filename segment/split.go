package segment

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ConcatMode is how the parts of a long message are tied together.
type ConcatMode uint8

const (
	// ConcatUDH8 puts a 6-octet user data header (IEI 0x00, 8-bit
	// reference) in front of each part. The zero value.
	ConcatUDH8 ConcatMode = iota
	// ConcatUDH16 puts a 7-octet user data header (IEI 0x08, 16-bit
	// reference) in front of each part.
	ConcatUDH16
	// ConcatSAR sends no header; each part carries the sar_msg_ref_num,
	// sar_total_segments and sar_segment_seqnum TLVs instead. Parts keep the
	// sizes of ConcatUDH8, as SMSCs build the header from the TLVs.
	ConcatSAR
)

func (m ConcatMode) String() string {
	switch m {
	case ConcatUDH8:
		return "UDH8"
	case ConcatUDH16:
		return "UDH16"
	case ConcatSAR:
		return "SAR"
	}
	return fmt.Sprintf("ConcatMode(%d)", uint8(m))
}

// ParseConcatMode returns the mode named by s, as String writes it
// (case-insensitive; "" is ConcatUDH8).
func ParseConcatMode(s string) (ConcatMode, error) {
	for _, m := range []ConcatMode{ConcatUDH8, ConcatUDH16, ConcatSAR} {
		if s == "" || strings.EqualFold(s, m.String()) {
			return m, nil
		}
	}
	return ConcatUDH8, fmt.Errorf("%w: unknown concatenation mode %q", ErrInvalidOptions, s)
}

// MarshalText writes the mode's name.
func (m ConcatMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (m *ConcatMode) UnmarshalText(b []byte) error {
	v, err := ParseConcatMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// ESMClassUDHI is the esm_class bit that says short_message starts with a
// user data header.
const ESMClassUDHI = 0x40

// DefaultMaxSegments is the segment limit when Options.MaxSegments is 0.
// MaxSegmentsLimit is the most a concatenation header can number.
const (
	DefaultMaxSegments = 10
	MaxSegmentsLimit   = 255
)

// Options steer Choose, Split and Count. The zero value chooses the
// encoding, does not transliterate, allows 10 segments and uses 8-bit
// reference headers.
type Options struct {
	// Force sets the encoding; Auto (zero) chooses GSM7 when every
	// character fits, else UCS2.
	Force Encoding `json:"force,omitempty"`
	// DataCoding, when set, is the data_coding value to send (for example
	// 0xF0 for a flash GSM 7-bit message). Its encoding is used, and Force,
	// when also set, must agree with it.
	DataCoding *byte `json:"dataCoding,omitempty"`
	// Transliterate replaces look-alikes (see Transliterate) when that lets
	// the text fit GSM7 (or the forced IA5 or Latin1); text that needs UCS2
	// all the same is sent unchanged.
	Transliterate bool `json:"transliterate,omitempty"`
	// MaxSegments caps the number of parts: 0 means DefaultMaxSegments,
	// and values above MaxSegmentsLimit are lowered to it.
	MaxSegments int `json:"maxSegments,omitempty"`
	// Concat chooses how parts are tied together.
	Concat ConcatMode `json:"concat,omitempty"`
}

func (o Options) maxSegments() int {
	switch {
	case o.MaxSegments <= 0:
		return DefaultMaxSegments
	case o.MaxSegments > MaxSegmentsLimit:
		return MaxSegmentsLimit
	}
	return o.MaxSegments
}

// Limits returns how many units (septets for GSM7 and IA5, octets for Latin1
// and Binary8, UTF-16 code units for UCS2) fit in a single-part message and in
// each part of a concatenated one.
//
//	encoding        single  UDH8  UDH16  SAR
//	GSM7, IA5          160   153    152  153
//	Latin1, Binary8    140   134    133  134
//	UCS2                70    67     66   67
func Limits(enc Encoding, mode ConcatMode) (single, perPart int) {
	switch enc {
	case Latin1, Binary8:
		single, perPart = 140, 134
	case UCS2:
		single, perPart = 70, 67
	default:
		single, perPart = 160, 153
	}
	if mode == ConcatUDH16 {
		switch enc {
		case Latin1, Binary8:
			perPart = 133
		case UCS2:
			perPart = 66
		default:
			perPart = 152
		}
	}
	return single, perPart
}

// Choose returns the encoding Split would use for text.
func Choose(text string, opt Options) (Encoding, error) {
	c, err := choose(text, opt)
	if err != nil {
		return Auto, err
	}
	return c.enc, nil
}

// choice is the outcome of choose: the encoding, the data_coding to send,
// the text as sent (transliterated or not) and its encoded form.
type choice struct {
	enc        Encoding
	dataCoding byte
	text       string
	encoded    *encoded
}

func choose(text string, opt Options) (*choice, error) {
	enc, err := requested(opt)
	if err != nil {
		return nil, err
	}
	c := &choice{enc: enc}
	if enc == Auto {
		c.enc = GSM7
		c.text, c.encoded, err = encodeAs(GSM7, text, opt.Transliterate)
		if errors.Is(err, ErrNotEncodable) {
			c.enc = UCS2
			c.text, c.encoded, err = encodeAs(UCS2, text, false)
		}
	} else {
		c.text, c.encoded, err = encodeAs(enc, text, opt.Transliterate)
	}
	if err != nil {
		return nil, err
	}
	c.dataCoding = c.enc.DataCoding()
	if opt.DataCoding != nil {
		c.dataCoding = *opt.DataCoding
	}
	return c, nil
}

// requested checks the options and returns the encoding they ask for,
// Auto when they leave the choice open.
func requested(opt Options) (Encoding, error) {
	enc := opt.Force
	if enc > UCS2 {
		return Auto, fmt.Errorf("%w: unknown encoding %d", ErrInvalidOptions, uint8(enc))
	}
	if opt.Concat > ConcatSAR {
		return Auto, fmt.Errorf("%w: unknown concatenation mode %d", ErrInvalidOptions, uint8(opt.Concat))
	}
	if opt.DataCoding == nil {
		return enc, nil
	}
	dcEnc, err := DecodeDataCoding(*opt.DataCoding)
	if err != nil {
		return Auto, err
	}
	if enc != Auto && enc != dcEnc {
		return Auto, fmt.Errorf("%w: data_coding 0x%02X is %s, not %s", ErrInvalidOptions, *opt.DataCoding, dcEnc, enc)
	}
	return dcEnc, nil
}

// encodeAs encodes text in enc. When the text does not fit and
// transliteration is allowed, it tries the transliterated text, and returns
// the first error (which names the original character) if that fails too.
func encodeAs(enc Encoding, text string, transliterate bool) (string, *encoded, error) {
	e, err := encodeText(enc, text)
	if err == nil || !transliterate || !errors.Is(err, ErrNotEncodable) {
		return text, e, err
	}
	t := Transliterate(text)
	if e, err := encodeText(enc, t); err == nil {
		return t, e, nil
	}
	return text, nil, err
}

// SAR holds the values of the sar_msg_ref_num, sar_total_segments and
// sar_segment_seqnum TLVs for one part.
type SAR struct {
	Ref   uint16 `json:"ref"`
	Total uint8  `json:"total"`
	Seq   uint8  `json:"seq"`
}

// Part is one submit_sm of a plan.
type Part struct {
	Seq   int `json:"seq"`   // 1-based
	Total int `json:"total"` // number of parts
	// UDH is the user data header at the start of Payload, or nil.
	UDH []byte `json:"udh,omitempty"`
	// Payload is short_message: the header, then the encoded text (GSM7 as
	// unpacked septets, one per octet).
	Payload []byte `json:"payload"`
	// Units is how many units of text this part carries.
	Units int `json:"units"`
	// SAR is set for the parts of a multi-part message in ConcatSAR mode.
	SAR *SAR `json:"sar,omitempty"`
	// ESMClass is ESMClassUDHI when Payload starts with a header, else 0;
	// OR it into the esm_class of the submit_sm.
	ESMClass byte `json:"esmClass"`
}

// Plan is how a text goes out: its encoding and its parts.
type Plan struct {
	Encoding   Encoding   `json:"encoding"`
	DataCoding byte       `json:"dataCoding"`
	Concat     ConcatMode `json:"concat"`
	// Text is the text as sent, after any transliteration.
	Text string `json:"text"`
	// Units is the length of Text in units: septets for GSM7 and IA5,
	// octets for Latin1 and Binary8, UTF-16 code units for UCS2.
	Units int `json:"units"`
	// UnitsPerSegment is the capacity of each part: the single-part limit
	// for one part, the per-part limit otherwise.
	UnitsPerSegment int    `json:"unitsPerSegment"`
	Parts           []Part `json:"parts"`
}

// layout is a chosen and encoded text cut into segments, before any header
// is built.
type layout struct {
	*choice
	capacity int // units per segment
	segments []span
}

// span is one segment: octets [start, end) of the payload and its units.
type span struct{ start, end, units int }

func arrange(text string, opt Options) (*layout, error) {
	c, err := choose(text, opt)
	if err != nil {
		return nil, err
	}
	e := c.encoded
	single, perPart := Limits(c.enc, opt.Concat)
	l := &layout{choice: c, capacity: single}
	if e.total <= single {
		l.segments = []span{{0, len(e.payload), e.total}}
		return l, nil
	}
	l.capacity = perPart
	cur := span{}
	for i := range e.units {
		u, o := int(e.units[i]), int(e.octets[i])
		if cur.units+u > perPart {
			l.segments = append(l.segments, cur)
			cur = span{start: cur.end, end: cur.end}
		}
		cur.end += o
		cur.units += u
	}
	l.segments = append(l.segments, cur)
	return l, nil
}

func tooMany(n int, opt Options) error {
	if limit := opt.maxSegments(); n > limit {
		return fmt.Errorf("%w: the text needs %d segments, at most %d are allowed", ErrTooManySegments, n, limit)
	}
	return nil
}

// Split encodes text and cuts it into parts that each fit one submit_sm.
// ref is the concatenation reference (only its low 8 bits with ConcatUDH8);
// a ReferenceAllocator hands one out per destination. A single-part message
// has neither header nor SAR values. Parts never split a GSM escape sequence
// or a UTF-16 surrogate pair.
//
// Errors wrap ErrNotEncodable, ErrInvalidUTF8, ErrInvalidOptions,
// ErrUnsupportedDataCoding or ErrTooManySegments.
func Split(text string, opt Options, ref uint16) (*Plan, error) {
	l, err := arrange(text, opt)
	if err != nil {
		return nil, err
	}
	total := len(l.segments)
	if err := tooMany(total, opt); err != nil {
		return nil, err
	}
	p := &Plan{
		Encoding:        l.enc,
		DataCoding:      l.dataCoding,
		Concat:          opt.Concat,
		Text:            l.text,
		Units:           l.encoded.total,
		UnitsPerSegment: l.capacity,
		Parts:           make([]Part, total),
	}
	for i, s := range l.segments {
		part := Part{Seq: i + 1, Total: total, Units: s.units}
		body := l.encoded.payload[s.start:s.end]
		switch {
		case total == 1:
		case opt.Concat == ConcatSAR:
			part.SAR = &SAR{Ref: ref, Total: uint8(total), Seq: uint8(i + 1)}
		default:
			part.UDH = BuildConcatUDH(ref, total, i+1, opt.Concat == ConcatUDH16)
			part.ESMClass = ESMClassUDHI
		}
		part.Payload = make([]byte, 0, len(part.UDH)+len(body))
		part.Payload = append(append(part.Payload, part.UDH...), body...)
		p.Parts[i] = part
	}
	return p, nil
}

// Counts is what an API reports about a text before sending it.
type Counts struct {
	// Encoding is "GSM7", "UCS2", or the forced "IA5", "LATIN1", "BINARY8".
	Encoding string `json:"encoding"`
	// Segments is the number of submit_sm parts.
	Segments int `json:"segments"`
	// Characters is the number of characters of the text as given (octets
	// for Binary8).
	Characters int `json:"characters"`
	// UnitsUsed is the length of the text as sent, in units of the encoding
	// (septets, octets or UTF-16 code units).
	UnitsUsed int `json:"unitsUsed"`
	// UnitsPerSegment is the capacity of each segment in those units.
	UnitsPerSegment int `json:"unitsPerSegment"`
	// Remaining is how many units still fit in the last segment.
	Remaining int `json:"remaining"`
}

// Count tallies text as Split would cut it. When the text needs more than
// the allowed segments, the tally is returned along with an error wrapping
// ErrTooManySegments.
func Count(text string, opt Options) (Counts, error) {
	l, err := arrange(text, opt)
	if err != nil {
		return Counts{}, err
	}
	chars := utf8.RuneCountInString(text)
	if l.enc == Binary8 {
		chars = len(text)
	}
	last := l.segments[len(l.segments)-1]
	c := Counts{
		Encoding:        l.enc.String(),
		Segments:        len(l.segments),
		Characters:      chars,
		UnitsUsed:       l.encoded.total,
		UnitsPerSegment: l.capacity,
		Remaining:       l.capacity - last.units,
	}
	return c, tooMany(c.Segments, opt)
}
