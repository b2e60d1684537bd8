package gsm7

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// The default alphabet as printed in 3GPP TS 23.038 §6.2.1, row by row of
// 16 septets. Written out again here, independently of the table in the
// package, so that a typo in one shows up against the other.
const alphabetRows = "@£$¥èéùìòÇ\nØø\rÅå" +
	"Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ" +
	" !\"#¤%&'()*+,-./" +
	"0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNO" +
	"PQRSTUVWXYZÄÖÑÜ§" +
	"¿abcdefghijklmno" +
	"pqrstuvwxyzäöñüà"

func TestDefaultAlphabetMatchesSpec(t *testing.T) {
	runes := []rune(alphabetRows)
	if len(runes) != 128 {
		t.Fatalf("spec table has %d entries", len(runes))
	}
	for septet, want := range runes {
		if septet == Escape {
			continue
		}
		got, err := Decode([]byte{byte(septet)})
		if err != nil {
			t.Fatalf("Decode(0x%02X): %v", septet, err)
		}
		if got != string(want) {
			t.Errorf("Decode(0x%02X) = %q, want %q", septet, got, want)
		}
		enc, err := Encode(string(want))
		if err != nil {
			t.Fatalf("Encode(%q): %v", want, err)
		}
		if !bytes.Equal(enc, []byte{byte(septet)}) {
			t.Errorf("Encode(%q) = % X, want %02X", want, enc, septet)
		}
		if RuneLen(want) != 1 {
			t.Errorf("RuneLen(%q) = %d, want 1", want, RuneLen(want))
		}
	}
}

func TestExtensionTable(t *testing.T) {
	cases := []struct {
		r      rune
		septet byte
	}{
		{'\f', 0x0A}, {'^', 0x14}, {'{', 0x28}, {'}', 0x29}, {'\\', 0x2F},
		{'[', 0x3C}, {'~', 0x3D}, {']', 0x3E}, {'|', 0x40}, {'€', 0x65},
	}
	for _, c := range cases {
		enc, err := Encode(string(c.r))
		if err != nil {
			t.Fatalf("Encode(%q): %v", c.r, err)
		}
		if want := []byte{Escape, c.septet}; !bytes.Equal(enc, want) {
			t.Errorf("Encode(%q) = % X, want % X", c.r, enc, want)
		}
		dec, err := Decode([]byte{Escape, c.septet})
		if err != nil || dec != string(c.r) {
			t.Errorf("Decode(1B %02X) = %q, %v; want %q", c.septet, dec, err, c.r)
		}
		if RuneLen(c.r) != 2 {
			t.Errorf("RuneLen(%q) = %d, want 2", c.r, RuneLen(c.r))
		}
	}
}

func TestEncodeGolden(t *testing.T) {
	cases := []struct {
		in   string
		want []byte
	}{
		{"", []byte{}},
		{"Hello", []byte{0x48, 0x65, 0x6C, 0x6C, 0x6F}},
		{"@£$", []byte{0x00, 0x01, 0x02}},
		{"a€b", []byte{0x61, 0x1B, 0x65, 0x62}},
		{"{x}", []byte{0x1B, 0x28, 0x78, 0x1B, 0x29}},
		{"¿Qué?", []byte{0x60, 0x51, 0x75, 0x05, 0x3F}},
		{"ΔΩ_", []byte{0x10, 0x15, 0x11}},
		{"line\r\n", []byte{0x6C, 0x69, 0x6E, 0x65, 0x0D, 0x0A}},
	}
	for _, c := range cases {
		got, err := Encode(c.in)
		if err != nil {
			t.Fatalf("Encode(%q): %v", c.in, err)
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("Encode(%q) = % X, want % X", c.in, got, c.want)
		}
		back, err := Decode(got)
		if err != nil || back != c.in {
			t.Errorf("Decode(Encode(%q)) = %q, %v", c.in, back, err)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	cases := []struct {
		in     string
		sent   error
		offset int
		r      rune
	}{
		{"abc`", ErrUnencodable, 3, '`'},
		{"héllo ☺", ErrUnencodable, 7, '☺'}, // é is in the alphabet, ☺ is not
		{"日本", ErrUnencodable, 0, '日'},
		{"ok\tno", ErrUnencodable, 2, '\t'},
		{"emoji 😀", ErrUnencodable, 6, '😀'},
		{"bad \xff utf8", ErrInvalidUTF8, 4, 0},
		{"ç", ErrUnencodable, 0, 'ç'},
	}
	for _, c := range cases {
		_, err := Encode(c.in)
		if !errors.Is(err, c.sent) {
			t.Fatalf("Encode(%q) error = %v, want %v", c.in, err, c.sent)
		}
		var ge *Error
		if !errors.As(err, &ge) {
			t.Fatalf("Encode(%q) error %T is not *Error", c.in, err)
		}
		if ge.Offset != c.offset || (c.sent == ErrUnencodable && ge.Rune != c.r) {
			t.Errorf("Encode(%q): offset %d rune %q, want %d %q", c.in, ge.Offset, ge.Rune, c.offset, c.r)
		}
		if !strings.Contains(err.Error(), "gsm7") {
			t.Errorf("error text %q does not name the package", err)
		}
		if CanEncode(c.in) {
			t.Errorf("CanEncode(%q) = true", c.in)
		}
		if n, ok := SeptetCount(c.in); ok || n != 0 {
			t.Errorf("SeptetCount(%q) = %d, %v", c.in, n, ok)
		}
	}
}

func TestSeptetCount(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"hello", 5},
		{"€", 2},
		{"[]{}", 8},
		{"a^b", 4},
		{strings.Repeat("x", 160), 160},
		{strings.Repeat("€", 80), 160},
		{"\f", 2},
	}
	for _, c := range cases {
		n, ok := SeptetCount(c.in)
		if !ok || n != c.want {
			t.Errorf("SeptetCount(%q) = %d, %v; want %d", c.in, n, ok, c.want)
		}
		if !CanEncode(c.in) {
			t.Errorf("CanEncode(%q) = false", c.in)
		}
		enc, _ := Encode(c.in)
		if len(enc) != n {
			t.Errorf("len(Encode(%q)) = %d, SeptetCount %d", c.in, len(enc), n)
		}
	}
}

func TestDecodeLenient(t *testing.T) {
	cases := []struct {
		in   []byte
		want string
	}{
		// Escape followed by a septet the extension table lacks: the
		// default character, as 23.038 asks.
		{[]byte{Escape, 0x41}, "A"},
		{[]byte{Escape, 0x00}, "@"},
		// CR2 (1B 0D) is undefined as a character: shown as CR.
		{[]byte{Escape, 0x0D}, "\r"},
		// A doubled escape is reserved for a further table: a space.
		{[]byte{Escape, Escape, 0x41}, " A"},
	}
	for _, c := range cases {
		got, err := Decode(c.in)
		if err != nil || got != c.want {
			t.Errorf("Decode(% X) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		in     []byte
		sent   error
		offset int
	}{
		{[]byte{0x41, 0x80}, ErrInvalidSeptet, 1},
		{[]byte{0xFF}, ErrInvalidSeptet, 0},
		{[]byte{0x41, Escape}, ErrDanglingEscape, 1},
		{[]byte{Escape}, ErrDanglingEscape, 0},
		{[]byte{Escape, 0x9B}, ErrInvalidSeptet, 1},
	}
	for _, c := range cases {
		_, err := Decode(c.in)
		var ge *Error
		if !errors.Is(err, c.sent) || !errors.As(err, &ge) {
			t.Fatalf("Decode(% X) error = %v, want %v in *Error", c.in, err, c.sent)
		}
		if ge.Offset != c.offset {
			t.Errorf("Decode(% X) offset = %d, want %d", c.in, ge.Offset, c.offset)
		}
	}
}

// encodableRunes lists every character the alphabet holds.
func encodableRunes() []rune {
	var rs []rune
	for r := range encodeDefault {
		rs = append(rs, r)
	}
	for r := range encodeExtension {
		rs = append(rs, r)
	}
	return rs
}

func TestEncodeDecodeRoundTripRandom(t *testing.T) {
	rs := encodableRunes()
	// Map iteration order is random; sort for a reproducible run.
	slices.Sort(rs)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		var b strings.Builder
		n := rng.IntN(300)
		for j := 0; j < n; j++ {
			b.WriteRune(rs[rng.IntN(len(rs))])
		}
		s := b.String()
		enc, err := Encode(s)
		if err != nil {
			t.Fatalf("Encode(%q): %v", s, err)
		}
		if c, _ := SeptetCount(s); c != len(enc) {
			t.Fatalf("SeptetCount %d != %d", c, len(enc))
		}
		dec, err := Decode(enc)
		if err != nil || dec != s {
			t.Fatalf("round trip of %q gave %q, %v", s, dec, err)
		}
	}
}

func TestDecodeEncodeRoundTripRandom(t *testing.T) {
	// Any septet string without the lenient cases (escape + undefined,
	// dangling escape) survives Decode then Encode unchanged.
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		var septets []byte
		for j, n := 0, rng.IntN(200); j < n; j++ {
			s := byte(rng.IntN(128))
			if s == Escape {
				ext := []byte{0x0A, 0x14, 0x28, 0x29, 0x2F, 0x3C, 0x3D, 0x3E, 0x40, 0x65}
				septets = append(septets, Escape, ext[rng.IntN(len(ext))])
				continue
			}
			septets = append(septets, s)
		}
		s, err := Decode(septets)
		if err != nil {
			t.Fatalf("Decode(% X): %v", septets, err)
		}
		if !utf8.ValidString(s) {
			t.Fatalf("Decode gave invalid UTF-8")
		}
		back, err := Encode(s)
		if err != nil || !bytes.Equal(back, septets) {
			t.Fatalf("Encode(Decode(% X)) = % X, %v", septets, back, err)
		}
	}
}

func TestAppendRune(t *testing.T) {
	dst := []byte{0x41}
	dst, ok := AppendRune(dst, '€')
	if !ok || !bytes.Equal(dst, []byte{0x41, Escape, 0x65}) {
		t.Fatalf("AppendRune € = % X, %v", dst, ok)
	}
	dst2, ok := AppendRune(dst, '✓')
	if ok || !bytes.Equal(dst2, dst) {
		t.Fatalf("AppendRune ✓ = % X, %v", dst2, ok)
	}
	if RuneLen('✓') != 0 {
		t.Fatalf("RuneLen(✓) = %d", RuneLen('✓'))
	}
}
