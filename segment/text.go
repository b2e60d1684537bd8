package segment

import (
	"fmt"
	"strings"

	"github.com/smsgw/smsgw/gsm7"
)

// encoded is text in one encoding: the short_message octets and, for each
// character, how many octets and how many units (septets, octets or UTF-16
// code units) it takes. A segment boundary may fall between characters only,
// so an escape sequence or a surrogate pair is never split.
type encoded struct {
	payload []byte
	octets  []uint8 // octets of each character in payload
	units   []uint8 // units of each character
	total   int     // sum of units
}

func (e *encoded) add(octets, units int) {
	e.octets = append(e.octets, uint8(octets))
	e.units = append(e.units, uint8(units))
	e.total += units
}

// encodeText encodes text in enc, keeping the character boundaries.
func encodeText(enc Encoding, text string) (*encoded, error) {
	e := &encoded{payload: make([]byte, 0, 2*len(text))}
	if enc == Binary8 {
		e.payload = append(e.payload, text...)
		for range len(text) {
			e.add(1, 1)
		}
		return e, nil
	}
	for i, r := range text {
		if err := checkRune(text, i, r); err != nil {
			return nil, err
		}
		n := len(e.payload)
		switch enc {
		case GSM7:
			var ok bool
			if e.payload, ok = gsm7.AppendRune(e.payload, r); !ok {
				return nil, notEncodable(enc, i, r)
			}
			e.add(len(e.payload)-n, len(e.payload)-n)
		case IA5:
			septets := gsm7.RuneLen(r)
			if r > 0x7F || septets == 0 {
				return nil, notEncodable(enc, i, r)
			}
			e.payload = append(e.payload, byte(r))
			e.add(1, septets)
		case Latin1:
			if r > 0xFF {
				return nil, notEncodable(enc, i, r)
			}
			e.payload = append(e.payload, byte(r))
			e.add(1, 1)
		case UCS2:
			e.payload = appendUTF16(e.payload, r)
			e.add(len(e.payload)-n, (len(e.payload)-n)/2)
		default:
			return nil, fmt.Errorf("%w: cannot encode text as %s", ErrInvalidOptions, enc)
		}
	}
	return e, nil
}

func notEncodable(enc Encoding, i int, r rune) error {
	return fmt.Errorf("%w: %q (U+%04X) at byte %d is not in %s", ErrNotEncodable, r, r, i, enc)
}

// decodeText decodes short_message octets (without a header) in enc.
func decodeText(enc Encoding, b []byte) (string, error) {
	switch enc {
	case GSM7:
		return gsm7.Decode(b)
	case IA5:
		for i, c := range b {
			if c > 0x7F {
				return "", fmt.Errorf("octet 0x%02X at %d is not ASCII", c, i)
			}
		}
		return string(b), nil
	case Latin1:
		var sb strings.Builder
		sb.Grow(len(b) + len(b)/4)
		for _, c := range b {
			sb.WriteRune(rune(c))
		}
		return sb.String(), nil
	case Binary8:
		return string(b), nil
	case UCS2:
		return DecodeUCS2(b)
	}
	return "", fmt.Errorf("%w: cannot decode %s", ErrInvalidOptions, enc)
}
