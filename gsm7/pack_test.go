package gsm7

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPackGolden(t *testing.T) {
	cases := []struct {
		text string
		fill int
		hex  string
	}{
		{"hellohello", 0, "E8 32 9B FD 46 97 D9 EC 37"}, // the classic example
		{"hello", 0, "E8 32 9B FD 06"},
		// 7 septets leave 7 spare bits: they carry CR (0x0D<<1 = 0x1A), not '@'.
		{"1234567", 0, "31 D9 8C 56 B3 DD 1A"},
		{"12345678", 0, "31 D9 8C 56 B3 DD 70"},
		// After a 6-octet concatenation header: 1 fill bit.
		{"abc", 1, "C2 E2 31"},
		{"Hi", 1, "90 69"},
		{"ABCDEFG", 3, "08 0A 87 C4 A2 F1 08"},
		{"", 0, ""},
		{"", 1, ""},
	}
	for _, c := range cases {
		septets, err := Encode(c.text)
		if err != nil {
			t.Fatal(err)
		}
		want := mustHex(t, c.hex)
		got := Pack(septets, c.fill)
		if !bytes.Equal(got, want) {
			t.Errorf("Pack(%q, %d) = % X, want % X", c.text, c.fill, got, want)
		}
		if PackedLen(len(septets), c.fill) != len(want) {
			t.Errorf("PackedLen(%d, %d) = %d, want %d", len(septets), c.fill, PackedLen(len(septets), c.fill), len(want))
		}
		back, err := Unpack(want, len(septets), c.fill)
		if err != nil || !bytes.Equal(back, septets) {
			t.Errorf("Unpack(% X, %d, %d) = % X, %v", want, len(septets), c.fill, back, err)
		}
		unknown, err := Unpack(want, -1, c.fill)
		if err != nil || !bytes.Equal(unknown, septets) {
			t.Errorf("Unpack(% X, -1, %d) = % X, %v; want % X", want, c.fill, unknown, err, septets)
		}
	}
}

func TestPackEscapes(t *testing.T) {
	septets, _ := Encode("[€]")
	packed := Pack(septets, 0)
	back, err := Unpack(packed, len(septets), 0)
	if err != nil || !bytes.Equal(back, septets) {
		t.Fatalf("Unpack = % X, %v", back, err)
	}
	text, err := Decode(back)
	if err != nil || text != "[€]" {
		t.Fatalf("Decode = %q, %v", text, err)
	}
}

func TestFillBits(t *testing.T) {
	cases := map[int]int{0: 0, 1: 6, 2: 5, 3: 4, 4: 3, 5: 2, 6: 1, 7: 0, 8: 6, 12: 2, 14: 0}
	for udhLen, want := range cases {
		if got := FillBits(udhLen); got != want {
			t.Errorf("FillBits(%d) = %d, want %d", udhLen, got, want)
		}
		// The header and its fill always end on a septet boundary.
		if udhLen > 0 && (udhLen*8+FillBits(udhLen))%7 != 0 {
			t.Errorf("FillBits(%d) does not reach a septet boundary", udhLen)
		}
	}
	// The standard concatenated part sizes fill 140 octets exactly.
	if n := 6 + PackedLen(153, FillBits(6)); n != 140 {
		t.Errorf("6-octet UDH + 153 septets = %d octets, want 140", n)
	}
	if n := 7 + PackedLen(152, FillBits(7)); n != 140 {
		t.Errorf("7-octet UDH + 152 septets = %d octets, want 140", n)
	}
	if n := PackedLen(160, 0); n != 140 {
		t.Errorf("160 septets = %d octets, want 140", n)
	}
}

func TestPackCRPadding(t *testing.T) {
	// For every length and fill, the spare bits of the last octet are never
	// 7 zero bits, so no '@' can be read from them.
	for fill := 0; fill <= 6; fill++ {
		for n := 1; n <= 40; n++ {
			septets := bytes.Repeat([]byte{'A'}, n)
			packed := Pack(septets, fill)
			spare := len(packed)*8 - fill - 7*n
			all, err := Unpack(packed, -1, fill)
			if err != nil {
				t.Fatal(err)
			}
			if spare == 7 {
				// The receiver that counts from the octets gets the text back, no '@'.
				if !bytes.Equal(all, septets) {
					t.Errorf("fill %d n %d: unknown-count Unpack = % X", fill, n, all)
				}
				last := packed[len(packed)-1] >> 1
				if last != cr {
					t.Errorf("fill %d n %d: spare septet = %02X, want CR", fill, n, last)
				}
			}
			if bytes.IndexByte(all, 0) >= 0 {
				t.Errorf("fill %d n %d: spurious '@' in % X", fill, n, all)
			}
		}
	}
}

func TestUnpackTrailingCR(t *testing.T) {
	// A real trailing CR that does not sit in the last 7 bits is kept with
	// an unknown count.
	septets, _ := Encode("123456\r")
	got, err := Unpack(Pack(septets, 0), -1, 0)
	if err != nil || !bytes.Equal(got, septets) {
		t.Fatalf("Unpack = % X, %v", got, err)
	}
	// 8 septets ending with CR fill 7 octets exactly: the CR is where padding
	// would be. A known count keeps it; an unknown count reads it as padding,
	// which is why 23.038 has the sender add a second CR in this case.
	septets, _ = Encode("1234567\r")
	packed := Pack(septets, 0)
	if got, err := Unpack(packed, len(septets), 0); err != nil || !bytes.Equal(got, septets) {
		t.Fatalf("known count: Unpack = % X, %v", got, err)
	}
	if got, err := Unpack(packed, -1, 0); err != nil || string(got) != "1234567" {
		t.Fatalf("unknown count: Unpack = % X, %v", got, err)
	}
	doubled, _ := Encode("1234567\r\r")
	if got, err := Unpack(Pack(doubled, 0), -1, 0); err != nil || !bytes.Equal(got, doubled) {
		t.Fatalf("doubled CR: Unpack = % X, %v", got, err)
	}
}

func TestUnpackErrors(t *testing.T) {
	if _, err := Unpack([]byte{0xE8, 0x32}, 3, 0); !errors.Is(err, ErrShortInput) {
		t.Errorf("short input: %v", err)
	}
	if _, err := Unpack([]byte{0xE8}, 1, 7); !errors.Is(err, ErrFillBits) {
		t.Errorf("fill 7: %v", err)
	}
	if _, err := Unpack([]byte{0xE8}, 1, -1); !errors.Is(err, ErrFillBits) {
		t.Errorf("fill -1: %v", err)
	}
	if got, err := Unpack(nil, -1, 3); err != nil || len(got) != 0 {
		t.Errorf("Unpack(nil) = % X, %v", got, err)
	}
	if got, err := Unpack(nil, 0, 0); err != nil || len(got) != 0 {
		t.Errorf("Unpack(nil, 0) = % X, %v", got, err)
	}
	// Extra octets beyond the count are ignored.
	if got, err := Unpack(mustHex(t, "E8329BFD06FFFF"), 5, 0); err != nil || string(got) != "hello" {
		t.Errorf("Unpack with trailing octets = %q, %v", got, err)
	}
}

func TestPackNormalisesInput(t *testing.T) {
	// High bits of a septet are ignored; fill is reduced modulo 7.
	if a, b := Pack([]byte{0xE8}, 0), Pack([]byte{0x68}, 0); !bytes.Equal(a, b) {
		t.Errorf("high bit not masked: % X vs % X", a, b)
	}
	if a, b := Pack([]byte{1, 2, 3}, 8), Pack([]byte{1, 2, 3}, 1); !bytes.Equal(a, b) {
		t.Errorf("fill 8 = % X, fill 1 = % X", a, b)
	}
	if a, b := Pack([]byte{1, 2, 3}, -1), Pack([]byte{1, 2, 3}, 6); !bytes.Equal(a, b) {
		t.Errorf("fill -1 = % X, fill 6 = % X", a, b)
	}
}

func TestPackRoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 5000; i++ {
		n := rng.IntN(170)
		fill := rng.IntN(7)
		septets := make([]byte, n)
		for j := range septets {
			septets[j] = byte(rng.IntN(128))
		}
		packed := Pack(septets, fill)
		if len(packed) != PackedLen(n, fill) {
			t.Fatalf("len %d, PackedLen %d", len(packed), PackedLen(n, fill))
		}
		got, err := Unpack(packed, n, fill)
		if err != nil || !bytes.Equal(got, septets) {
			t.Fatalf("round trip n=%d fill=%d: % X -> % X, %v", n, fill, septets, got, err)
		}
		// Unknown count: the same septets, unless the text really ends with
		// a CR in the position of padding.
		all, err := Unpack(packed, -1, fill)
		if err != nil {
			t.Fatal(err)
		}
		ambiguous := n > 0 && septets[n-1] == cr && (len(packed)*8-fill)%7 == 0
		if !ambiguous && !bytes.Equal(all, septets) {
			t.Fatalf("unknown count n=%d fill=%d: % X -> % X", n, fill, septets, all)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	_, short := Unpack([]byte{0xE8}, 5, 0)
	_, fill := Unpack(nil, 0, 9)
	_, septet := Decode([]byte{0x41, 0x90})
	_, esc := Decode([]byte{Escape})
	_, utf := Encode("a\xff")
	_, unenc := Encode("a☺")
	want := map[error]string{
		short:  "gsm7: packed data shorter than the septet count: 1 septets available",
		fill:   "gsm7: fill bits must be between 0 and 6, got 9",
		septet: "gsm7: septet value above 0x7F: 0x90 at index 1",
		esc:    "gsm7: escape septet at the end at index 0",
		utf:    "gsm7: invalid UTF-8 at byte 1",
		unenc:  `gsm7: character not in the GSM 7-bit alphabet: '☺' (U+263A) at byte 1`,
	}
	for err, text := range want {
		if err == nil || err.Error() != text {
			t.Errorf("error %q, want %q", err, text)
		}
	}
}
