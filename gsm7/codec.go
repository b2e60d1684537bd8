package gsm7

import (
	"strings"
	"unicode/utf8"
)

// Encode returns the septets of s, one per byte, with an escape septet before
// each character of the extension table. A character outside the alphabet
// gives an *Error wrapping ErrUnencodable (or ErrInvalidUTF8) with its byte
// offset.
func Encode(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return nil, &Error{Err: ErrInvalidUTF8, Offset: i}
			}
		}
		var ok bool
		if out, ok = AppendRune(out, r); !ok {
			return nil, &Error{Err: ErrUnencodable, Offset: i, Rune: r}
		}
	}
	return out, nil
}

// CanEncode reports whether every character of s is in the GSM 7-bit
// alphabet or its extension table.
func CanEncode(s string) bool {
	_, ok := SeptetCount(s)
	return ok
}

// SeptetCount returns how many septets s takes, counting 2 for each
// character of the extension table. It reports false, with a count of 0,
// when s cannot be encoded.
func SeptetCount(s string) (int, bool) {
	n := 0
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return 0, false
			}
		}
		k := RuneLen(r)
		if k == 0 {
			return 0, false
		}
		n += k
	}
	return n, true
}

// Decode returns the text of unpacked septets, one per byte.
//
// As 23.038 asks of a receiver, an escape followed by a septet the extension
// table does not define decodes as that septet of the default alphabet, and a
// doubled escape (reserved for a further table) decodes as a space. A septet
// above 0x7F gives ErrInvalidSeptet and a final escape ErrDanglingEscape,
// both inside an *Error with the index.
func Decode(septets []byte) (string, error) {
	var b strings.Builder
	b.Grow(len(septets))
	for i := 0; i < len(septets); i++ {
		s := septets[i]
		if s > 0x7F {
			return "", &Error{Err: ErrInvalidSeptet, Offset: i, Septet: s}
		}
		if s != Escape {
			b.WriteRune(defaultAlphabet[s])
			continue
		}
		if i+1 == len(septets) {
			return "", &Error{Err: ErrDanglingEscape, Offset: i}
		}
		i++
		next := septets[i]
		switch r, ok := extensionTable[next]; {
		case next > 0x7F:
			return "", &Error{Err: ErrInvalidSeptet, Offset: i, Septet: next}
		case ok:
			b.WriteRune(r)
		case next == Escape:
			b.WriteByte(' ')
		default:
			b.WriteRune(defaultAlphabet[next])
		}
	}
	return b.String(), nil
}
