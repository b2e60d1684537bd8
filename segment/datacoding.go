package segment

import (
	"fmt"
	"strings"
)

// Encoding is how text is represented in short_message.
type Encoding uint8

const (
	// Auto is the zero value: let Choose decide.
	Auto Encoding = iota
	// GSM7 is the GSM 03.38 default alphabet with its extension table,
	// carried unpacked (one septet per octet). data_coding 0.
	GSM7
	// IA5 is ASCII (CCITT T.50) in short_message, data_coding 1, for SMSCs
	// that ask for it. It is sent over the air as GSM 7-bit, so it holds only
	// the ASCII characters of that alphabet and is counted in septets.
	IA5
	// Latin1 is ISO-8859-1, one octet per character. data_coding 3.
	Latin1
	// Binary8 is 8-bit data sent as is. data_coding 4 (2 is read too).
	Binary8
	// UCS2 is UTF-16BE with surrogate pairs, so characters outside the
	// Basic Multilingual Plane (emoji) take two code units. data_coding 8.
	UCS2
)

var encodingNames = [...]string{
	Auto:    "AUTO",
	GSM7:    "GSM7",
	IA5:     "IA5",
	Latin1:  "LATIN1",
	Binary8: "BINARY8",
	UCS2:    "UCS2",
}

// String returns the name an API reports: "GSM7", "IA5", "LATIN1",
// "BINARY8", "UCS2" (or "AUTO").
func (e Encoding) String() string {
	if int(e) < len(encodingNames) {
		return encodingNames[e]
	}
	return fmt.Sprintf("Encoding(%d)", uint8(e))
}

// ParseEncoding returns the encoding named by s, as String writes it
// (case-insensitive; "" is Auto).
func ParseEncoding(s string) (Encoding, error) {
	if s == "" {
		return Auto, nil
	}
	for e, name := range encodingNames {
		if strings.EqualFold(s, name) {
			return Encoding(e), nil
		}
	}
	return Auto, fmt.Errorf("%w: unknown encoding %q", ErrInvalidOptions, s)
}

// MarshalText writes the encoding's name, so it reads well in JSON and YAML.
func (e Encoding) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (e *Encoding) UnmarshalText(b []byte) error {
	v, err := ParseEncoding(string(b))
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// DataCoding returns the data_coding value sent for the encoding by default.
func (e Encoding) DataCoding() byte {
	switch e {
	case IA5:
		return 0x01
	case Latin1:
		return 0x03
	case Binary8:
		return 0x04
	case UCS2:
		return 0x08
	}
	return 0x00
}

// DecodeDataCoding returns the encoding of an SMPP data_coding value.
//
//	0x00            GSM7 (SMSC default alphabet)
//	0x01            IA5
//	0x02, 0x04      Binary8
//	0x03            Latin1
//	0x08            UCS2
//	0x10–0x1F       GSM general data coding with message class:
//	0x40–0x5F       alphabet bits 3–2 give GSM7 (00), Binary8 (01), UCS2 (10)
//	0xC0–0xDF       message waiting indication, GSM7
//	0xE0–0xEF       message waiting indication, UCS2
//	0xF0–0xFF       message class control: bit 2 gives Binary8, else GSM7
//
// Anything else gives an error wrapping ErrUnsupportedDataCoding: 0x05 JIS,
// 0x06 Cyrillic, 0x07 Latin/Hebrew, 0x09–0x0F (pictograms, ISO-2022-JP,
// Kanji, KS C 5601 and reserved), compressed text (0x20–0x3F, 0x60–0x7F),
// the reserved alphabet (bits 3–2 = 11) and the reserved range 0x80–0xBF.
func DecodeDataCoding(dc byte) (Encoding, error) {
	unsupported := func(what string) (Encoding, error) {
		return Auto, fmt.Errorf("%w: 0x%02X (%s)", ErrUnsupportedDataCoding, dc, what)
	}
	switch {
	case dc == 0x00:
		return GSM7, nil
	case dc == 0x01:
		return IA5, nil
	case dc == 0x02 || dc == 0x04:
		return Binary8, nil
	case dc == 0x03:
		return Latin1, nil
	case dc == 0x05:
		return unsupported("JIS")
	case dc == 0x06:
		return unsupported("Cyrillic")
	case dc == 0x07:
		return unsupported("Latin/Hebrew")
	case dc == 0x08:
		return UCS2, nil
	case dc <= 0x0F:
		return unsupported("pictogram, ISO-2022-JP, Kanji, KS C 5601 or reserved")
	case dc <= 0x7F: // GSM general data coding and automatic deletion groups
		if dc&0x20 != 0 {
			return unsupported("compressed")
		}
		switch (dc >> 2) & 0x03 {
		case 0:
			return GSM7, nil
		case 1:
			return Binary8, nil
		case 2:
			return UCS2, nil
		}
		return unsupported("reserved alphabet")
	case dc <= 0xBF:
		return unsupported("reserved coding group")
	case dc <= 0xDF:
		return GSM7, nil
	case dc <= 0xEF:
		return UCS2, nil
	}
	if dc&0x04 != 0 {
		return Binary8, nil
	}
	return GSM7, nil
}
