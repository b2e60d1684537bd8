package gsm7

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzDecode: Decode never panics; what it decodes encodes again, and that
// encoding decodes to the same text.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("hello"))
	f.Add([]byte{Escape, 0x65, 0x00, 0x7F})
	f.Add([]byte{Escape})
	f.Add([]byte{0x80})
	f.Add([]byte{Escape, Escape, 0x41})
	f.Fuzz(func(t *testing.T, septets []byte) {
		s, err := Decode(septets)
		if err != nil {
			var ge *Error
			if !errors.As(err, &ge) {
				t.Fatalf("error %v is not *Error", err)
			}
			return
		}
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 from % X", septets)
		}
		enc, err := Encode(s)
		if err != nil {
			t.Fatalf("Encode(Decode(% X)) = %v", septets, err)
		}
		if n, ok := SeptetCount(s); !ok || n != len(enc) {
			t.Fatalf("SeptetCount = %d, %v; len %d", n, ok, len(enc))
		}
		again, err := Decode(enc)
		if err != nil || again != s {
			t.Fatalf("Decode(Encode(%q)) = %q, %v", s, again, err)
		}
	})
}

// FuzzEncode: Encode never panics and agrees with CanEncode and Decode.
func FuzzEncode(f *testing.F) {
	f.Add("hello €")
	f.Add("日本")
	f.Add("\xff")
	f.Fuzz(func(t *testing.T, s string) {
		enc, err := Encode(s)
		if (err == nil) != CanEncode(s) {
			t.Fatalf("Encode error %v but CanEncode %v", err, CanEncode(s))
		}
		if err != nil {
			return
		}
		dec, err := Decode(enc)
		if err != nil || dec != s {
			t.Fatalf("Decode(Encode(%q)) = %q, %v", s, dec, err)
		}
	})
}

// FuzzUnpack: Unpack never panics, returns septets below 0x80, and packing
// what it returns gives the same octets back.
func FuzzUnpack(f *testing.F) {
	f.Add([]byte{0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37}, 10, 0)
	f.Add([]byte{0x31, 0xD9, 0x8C, 0x56, 0xB3, 0xDD, 0x1A}, -1, 0)
	f.Add([]byte{0xC2, 0xE2, 0x31}, 3, 1)
	f.Add([]byte{}, 5, 7)
	f.Fuzz(func(t *testing.T, packed []byte, count int, fill int) {
		septets, err := Unpack(packed, count, fill)
		if err != nil {
			return
		}
		if count >= 0 && len(septets) != count {
			t.Fatalf("asked %d septets, got %d", count, len(septets))
		}
		for _, s := range septets {
			if s > 0x7F {
				t.Fatalf("septet 0x%02X", s)
			}
		}
		repacked := Pack(septets, fill)
		n := len(repacked)
		if n > len(packed) {
			t.Fatalf("repacked %d octets from %d", n, len(packed))
		}
		// Pack writes zero fill bits and CR padding; compare the septet bits only.
		back, err := Unpack(repacked, len(septets), fill)
		if err != nil || !bytes.Equal(back, septets) {
			t.Fatalf("Unpack(Pack(% X)) = % X, %v", septets, back, err)
		}
		full, err := Unpack(packed[:n], len(septets), fill)
		if err != nil || !bytes.Equal(full, septets) {
			t.Fatalf("prefix unpack = % X, %v", full, err)
		}
	})
}
