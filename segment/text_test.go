package segment

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/smsgw/smsgw/gsm7"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUCS2Golden(t *testing.T) {
	cases := []struct{ text, hex string }{
		{"", ""},
		{"Hi", "0048 0069"},
		{"€", "20AC"},
		{"Привет", "041F 0440 0438 0432 0435 0442"},
		{"😀", "D83D DE00"},
		{"a😀b", "0061 D83D DE00 0062"},
		{"𝄞", "D834 DD1E"},
		{"\uFFFD", "FFFD"},
	}
	for _, c := range cases {
		want := unhex(t, c.hex)
		got, err := EncodeUCS2(c.text)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("EncodeUCS2(%q) = % X, %v; want % X", c.text, got, err, want)
		}
		back, err := DecodeUCS2(want)
		if err != nil || back != c.text {
			t.Errorf("DecodeUCS2(% X) = %q, %v", want, back, err)
		}
	}
}

func TestUCS2Errors(t *testing.T) {
	for _, h := range []string{"00", "0041 00", "D83D", "0041 D83D", "D83D 0041", "DE00", "0041 DE00 0041", "D83D D83D DE00"} {
		if _, err := DecodeUCS2(unhex(t, h)); !errors.Is(err, ErrInvalidUTF16) {
			t.Errorf("DecodeUCS2(%s) error = %v", h, err)
		}
	}
	_, err := EncodeUCS2("ok\xc3")
	if !errors.Is(err, ErrInvalidUTF8) || !strings.Contains(err.Error(), "byte 2") {
		t.Errorf("EncodeUCS2 invalid UTF-8: %v", err)
	}
}

func TestUCS2RoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 2000; i++ {
		var b strings.Builder
		for j, n := 0, rng.IntN(100); j < n; j++ {
			var r rune
			switch rng.IntN(3) {
			case 0:
				r = rune(rng.IntN(0x80))
			case 1:
				r = rune(rng.IntN(0xD800))
			default:
				r = 0x10000 + rune(rng.IntN(0x100000))
			}
			b.WriteRune(r)
		}
		s := b.String()
		enc, err := EncodeUCS2(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeUCS2(enc)
		if err != nil || back != s {
			t.Fatalf("round trip %q: %q, %v", s, back, err)
		}
	}
}

func TestTransliterate(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"“Smart” ‘quotes’", `"Smart" 'quotes'`},
		{"a – b — c", "a - b - c"},
		{"wait…", "wait..."},
		{"50\u00A0km", "50 km"},
		{"zero\u200Bwidth\uFEFF", "zerowidth"},
		{"Façade", "FaÇade"},
		{"ΑΘΗΝΑ", "AΘHNA"},
		{"«guillemets»", `"guillemets"`},
		{"tab\there", "tab here"},
		{"emoji 😀 stays", "emoji 😀 stays"},
		{"bad \xff kept “", "bad \xff kept \""},
		{"", ""},
	}
	for _, c := range cases {
		if got := Transliterate(c.in); got != c.want {
			t.Errorf("Transliterate(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestLookAlikesTable(t *testing.T) {
	for from, to := range lookAlikes {
		if gsm7.CanEncode(string(from)) {
			t.Errorf("%q (U+%04X) is already in the GSM alphabet", from, from)
		}
		if !gsm7.CanEncode(to) {
			t.Errorf("%q maps to %q, not in the GSM alphabet", from, to)
		}
	}
}

func TestDecodeTextEncodings(t *testing.T) {
	cases := []struct {
		enc  Encoding
		in   []byte
		want string
	}{
		{GSM7, []byte{0x00, 0x1B, 0x65, 0x41}, "@€A"},
		{IA5, []byte("user@example.com $5_"), "user@example.com $5_"},
		{Latin1, []byte{'c', 'a', 'f', 0xE9, ' ', 0xA3, 0xFF}, "café £ÿ"},
		{Binary8, []byte{0x00, 0xFF, 0x80}, "\x00\xff\x80"},
		{UCS2, []byte{0x04, 0x1F, 0xD8, 0x3D, 0xDE, 0x00}, "П😀"},
	}
	for _, c := range cases {
		got, err := decodeText(c.enc, c.in)
		if err != nil || got != c.want {
			t.Errorf("decodeText(%v, % X) = %q, %v; want %q", c.enc, c.in, got, err, c.want)
		}
	}
	if got, _ := decodeText(Latin1, []byte{0xE9}); !utf8.ValidString(got) {
		t.Errorf("Latin1 decode is not UTF-8")
	}
}
