package segment

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// EncodeUCS2 returns s as UTF-16BE. Characters outside the Basic
// Multilingual Plane become surrogate pairs. Invalid UTF-8 gives an error
// wrapping ErrInvalidUTF8 with its byte offset.
func EncodeUCS2(s string) ([]byte, error) {
	out := make([]byte, 0, 2*len(s))
	for i, r := range s {
		if err := checkRune(s, i, r); err != nil {
			return nil, err
		}
		out = appendUTF16(out, r)
	}
	return out, nil
}

// DecodeUCS2 returns the text of UTF-16BE data. Data of odd length and
// unpaired surrogates give an error wrapping ErrInvalidUTF16 with the offset.
func DecodeUCS2(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", fmt.Errorf("%w: odd length %d", ErrInvalidUTF16, len(b))
	}
	var sb strings.Builder
	sb.Grow(len(b))
	for i := 0; i < len(b); i += 2 {
		u := rune(b[i])<<8 | rune(b[i+1])
		switch {
		case utf16.IsSurrogate(u) && u < 0xDC00: // high surrogate
			if i+3 >= len(b) {
				return "", fmt.Errorf("%w: unpaired high surrogate 0x%04X at octet %d", ErrInvalidUTF16, u, i)
			}
			lo := rune(b[i+2])<<8 | rune(b[i+3])
			r := utf16.DecodeRune(u, lo)
			if r == utf8.RuneError {
				return "", fmt.Errorf("%w: unpaired high surrogate 0x%04X at octet %d", ErrInvalidUTF16, u, i)
			}
			sb.WriteRune(r)
			i += 2
		case utf16.IsSurrogate(u):
			return "", fmt.Errorf("%w: unpaired low surrogate 0x%04X at octet %d", ErrInvalidUTF16, u, i)
		default:
			sb.WriteRune(u)
		}
	}
	return sb.String(), nil
}

// appendUTF16 appends r as one or two big-endian UTF-16 code units.
func appendUTF16(dst []byte, r rune) []byte {
	if r >= 0x10000 {
		hi, lo := utf16.EncodeRune(r)
		return append(dst, byte(hi>>8), byte(hi), byte(lo>>8), byte(lo))
	}
	return append(dst, byte(r>>8), byte(r))
}

// checkRune reports invalid UTF-8 at byte i of s, where r was decoded.
func checkRune(s string, i int, r rune) error {
	if r == utf8.RuneError {
		if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
			return fmt.Errorf("%w: at byte %d", ErrInvalidUTF8, i)
		}
	}
	return nil
}
