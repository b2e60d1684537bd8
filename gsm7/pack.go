package gsm7

// cr is the septet of the carriage return, used to pad 7 spare bits.
const cr = 0x0D

// FillBits returns the number of fill bits that follow a user data header of
// udhLen octets (its length octet included) so that the first septet of text
// starts on a septet boundary: (7 - udhLen*8 mod 7) mod 7.
func FillBits(udhLen int) int {
	if udhLen <= 0 {
		return 0
	}
	return (7 - (udhLen*8)%7) % 7
}

// PackedLen returns how many octets septetCount septets take when packed
// after fillBits fill bits.
func PackedLen(septetCount, fillBits int) int {
	if septetCount <= 0 {
		return 0
	}
	return (fillBits + 7*septetCount + 7) / 8
}

// Pack packs septets into octets, least significant bit first, after
// fillBits zero bits (the fill that follows a user data header; see
// FillBits). Only the low 7 bits of each septet are used, and fillBits
// outside 0–6 is reduced modulo 7.
//
// When the last octet would end with 7 spare bits, a receiver that derives
// the septet count from the octet count would read them as a spurious '@'
// (septet 0). As 23.038 §6.1.2.3.1 asks, those bits carry a carriage return
// instead; Unpack with an unknown count drops it again.
func Pack(septets []byte, fillBits int) []byte {
	fillBits = ((fillBits % 7) + 7) % 7
	out := make([]byte, PackedLen(len(septets), fillBits))
	pos := fillBits
	put := func(s byte) {
		s &= 0x7F
		i, shift := pos/8, pos%8
		out[i] |= s << shift
		if shift > 1 {
			out[i+1] |= s >> (8 - shift)
		}
		pos += 7
	}
	for _, s := range septets {
		put(s)
	}
	if len(out)*8-pos == 7 {
		put(cr)
	}
	return out
}

// Unpack unpacks septetCount septets from octets packed after fillBits fill
// bits (0–6). It returns them one per byte.
//
// A septetCount below zero means the count is unknown (as in a cell broadcast
// page or a USSD string): every whole septet in packed is returned, except a
// carriage return filling the last 7 bits, which is the padding Pack writes.
// A message that really ends with a carriage return in that position is
// indistinguishable, which is why 23.038 has its sender add a second one.
//
// Octets beyond those septetCount septets need are ignored. A packed slice
// too short for septetCount gives an *Error wrapping ErrShortInput.
func Unpack(packed []byte, septetCount int, fillBits int) ([]byte, error) {
	if fillBits < 0 || fillBits > 6 {
		return nil, &Error{Err: ErrFillBits, Offset: fillBits}
	}
	available := 0
	if bits := len(packed)*8 - fillBits; bits > 0 {
		available = bits / 7
	}
	trimPadding := false
	if septetCount < 0 {
		septetCount = available
		trimPadding = available > 0 && (len(packed)*8-fillBits)%7 == 0
	} else if septetCount > available {
		return nil, &Error{Err: ErrShortInput, Offset: available}
	}
	out := make([]byte, septetCount)
	pos := fillBits
	for k := range out {
		i, shift := pos/8, pos%8
		s := packed[i] >> shift
		if shift > 1 {
			s |= packed[i+1] << (8 - shift)
		}
		out[k] = s & 0x7F
		pos += 7
	}
	if trimPadding && out[len(out)-1] == cr {
		out = out[:len(out)-1]
	}
	return out, nil
}
