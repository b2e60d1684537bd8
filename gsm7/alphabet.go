// Package gsm7 implements the GSM 7-bit default alphabet of 3GPP TS 23.038
// (GSM 03.38): the mapping between text and septets, including the extension
// table reached through the escape septet 0x1B, and the packing of septets
// into octets as they travel over the air.
//
// SMPP carries GSM 7-bit text unpacked, one septet per octet of
// short_message, so most of the gateway uses Encode and Decode only; Pack and
// Unpack exist for the over-the-air form (a TPDU, a cell broadcast page).
//
// National language shift tables are not supported.
package gsm7

// Escape is the septet that switches the next septet to the extension table.
const Escape = 0x1B

// defaultAlphabet maps each septet 0x00–0x7F to its character. Position 0x1B
// is the escape septet and holds no character.
var defaultAlphabet = [128]rune{
	'@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
	'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', 0, 'Æ', 'æ', 'ß', 'É',
	' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
	'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
	'¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
	'¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
}

// extensionTable maps the septet that follows an escape to its character.
// Septets missing here are not defined by 23.038.
var extensionTable = map[byte]rune{
	0x0A: '\f',
	0x14: '^',
	0x28: '{',
	0x29: '}',
	0x2F: '\\',
	0x3C: '[',
	0x3D: '~',
	0x3E: ']',
	0x40: '|',
	0x65: '€',
}

// encodeDefault and encodeExtension are the reverse of the two tables.
// latin1Septets is the same for U+0000–U+00FF, where most text lies, without
// a map lookup: the septet, extended|septet for the extension table, or
// noSeptet.
var (
	encodeDefault   = make(map[rune]byte, 127)
	encodeExtension = make(map[rune]byte, len(extensionTable))
	latin1Septets   [0x100]uint16
)

const (
	noSeptet = 0xFFFF
	extended = 0x100
)

func init() {
	for i := range latin1Septets {
		latin1Septets[i] = noSeptet
	}
	for septet, r := range defaultAlphabet {
		if septet != Escape {
			encodeDefault[r] = byte(septet)
			if r < 0x100 {
				latin1Septets[r] = uint16(septet)
			}
		}
	}
	for septet, r := range extensionTable {
		encodeExtension[r] = septet
		if r < 0x100 {
			latin1Septets[r] = extended | uint16(septet)
		}
	}
}

// lookup returns the septet of r and whether it is in the extension table.
func lookup(r rune) (septet byte, ext, ok bool) {
	if r >= 0 && r < 0x100 {
		v := latin1Septets[r]
		return byte(v), v&extended != 0, v != noSeptet
	}
	if s, ok := encodeDefault[r]; ok {
		return s, false, true
	}
	s, ok := encodeExtension[r]
	return s, true, ok
}

// RuneLen returns how many septets r takes: 1 for a character of the default
// alphabet, 2 for one of the extension table, 0 when r cannot be encoded.
func RuneLen(r rune) int {
	switch _, ext, ok := lookup(r); {
	case !ok:
		return 0
	case ext:
		return 2
	}
	return 1
}

// AppendRune appends the septets of r to dst (an escape first for a character
// of the extension table). It reports false, leaving dst as it was, when r
// cannot be encoded.
func AppendRune(dst []byte, r rune) ([]byte, bool) {
	switch s, ext, ok := lookup(r); {
	case !ok:
		return dst, false
	case ext:
		return append(dst, Escape, s), true
	default:
		return append(dst, s), true
	}
}
