package gsm7

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps one of them,
// most inside an *Error that says where the problem is.
var (
	// ErrUnencodable: the text holds a character outside the default
	// alphabet and its extension table.
	ErrUnencodable = errors.New("gsm7: character not in the GSM 7-bit alphabet")
	// ErrInvalidUTF8: the text is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("gsm7: invalid UTF-8")
	// ErrInvalidSeptet: a septet value above 0x7F.
	ErrInvalidSeptet = errors.New("gsm7: septet value above 0x7F")
	// ErrDanglingEscape: the septets end with an escape that has nothing after it.
	ErrDanglingEscape = errors.New("gsm7: escape septet at the end")
	// ErrShortInput: packed octets hold fewer septets than asked for.
	ErrShortInput = errors.New("gsm7: packed data shorter than the septet count")
	// ErrFillBits: fill bits outside 0–6.
	ErrFillBits = errors.New("gsm7: fill bits must be between 0 and 6")
)

// Error locates an encoding or decoding failure.
type Error struct {
	Err    error // one of the sentinel errors above
	Offset int   // byte offset in the text (Encode), index in the septets (Decode), available septets (ErrShortInput) or the fill bits given (ErrFillBits)
	Rune   rune  // the character that could not be encoded, for ErrUnencodable
	Septet byte  // the offending value, for ErrInvalidSeptet
}

func (e *Error) Error() string {
	switch e.Err {
	case ErrUnencodable:
		return fmt.Sprintf("%v: %q (U+%04X) at byte %d", e.Err, e.Rune, e.Rune, e.Offset)
	case ErrInvalidUTF8:
		return fmt.Sprintf("%v at byte %d", e.Err, e.Offset)
	case ErrInvalidSeptet:
		return fmt.Sprintf("%v: 0x%02X at index %d", e.Err, e.Septet, e.Offset)
	case ErrShortInput:
		return fmt.Sprintf("%v: %d septets available", e.Err, e.Offset)
	case ErrFillBits:
		return fmt.Sprintf("%v, got %d", e.Err, e.Offset)
	}
	return fmt.Sprintf("%v at index %d", e.Err, e.Offset)
}

func (e *Error) Unwrap() error { return e.Err }
