package segment

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them with
// details (a position, a value, a count); test with errors.Is.
var (
	// ErrUnsupportedDataCoding: a data_coding value this package cannot
	// decode or encode (JIS, Cyrillic, Hebrew, compressed, reserved, ...).
	ErrUnsupportedDataCoding = errors.New("unsupported data_coding")
	// ErrNotEncodable: the text holds a character the requested encoding
	// cannot represent.
	ErrNotEncodable = errors.New("text cannot be represented in the encoding")
	// ErrInvalidUTF8: the text is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("text is not valid UTF-8")
	// ErrInvalidUTF16: UCS-2 data of odd length or with an unpaired surrogate.
	ErrInvalidUTF16 = errors.New("invalid UTF-16 data")
	// ErrInvalidPayload: a short_message whose octets do not decode in its
	// data_coding. It wraps the precise cause.
	ErrInvalidPayload = errors.New("invalid short_message payload")
	// ErrInvalidUDH: a malformed user data header.
	ErrInvalidUDH = errors.New("invalid user data header")
	// ErrTooManySegments: the text needs more segments than allowed.
	ErrTooManySegments = errors.New("too many segments")
	// ErrInvalidOptions: options that contradict each other.
	ErrInvalidOptions = errors.New("invalid segment options")
	// ErrInvalidPart: a concatenated part whose sequence or total is out of
	// range.
	ErrInvalidPart = errors.New("invalid concatenated part")
	// ErrPartMismatch: a part whose reference or total differs from the
	// parts already gathered.
	ErrPartMismatch = errors.New("part does not belong to this message")
)
