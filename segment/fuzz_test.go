package segment

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/smsgw/smsgw/gsm7"
)

// FuzzParseUDH: ParseUDH never panics; what it parses writes back to the
// same octets, and errors are ErrInvalidUDH.
func FuzzParseUDH(f *testing.F) {
	f.Add([]byte{0x05, 0x00, 0x03, 0xA7, 0x03, 0x02, 0x48, 0x69})
	f.Add([]byte{0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01})
	f.Add([]byte{0x0B, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x00, 0x03, 0x01, 0x02, 0x01})
	f.Add([]byte{0x05, 0x00, 0x03, 0x01, 0x00, 0x01})
	f.Add([]byte{0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		u, rest, err := ParseUDH(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidUDH) {
				t.Fatalf("error %v is not ErrInvalidUDH", err)
			}
			return
		}
		head := b[:len(b)-len(rest)]
		if !bytes.Equal(u.Bytes(), head) || u.Len() != len(head) {
			t.Fatalf("Bytes = % X, input header % X", u.Bytes(), head)
		}
		if c := u.Concat; c != nil && (c.Total < 1 || c.Seq < 1 || c.Seq > c.Total) {
			t.Fatalf("concat %+v accepted", c)
		}
	})
}

// FuzzDecodePayload: DecodePayload never panics; errors wrap the package's
// sentinels; decoded text is valid UTF-8 (Binary8 aside) and encodes back.
func FuzzDecodePayload(f *testing.F) {
	f.Add(byte(0x00), byte(0x40), []byte{0x05, 0x00, 0x03, 0x2A, 0x02, 0x01, 0x48, 0x1B, 0x65})
	f.Add(byte(0x08), byte(0x00), []byte{0xD8, 0x3D, 0xDE, 0x00})
	f.Add(byte(0x08), byte(0x40), []byte{0x06, 0x08, 0x04, 0x01, 0x02, 0x03, 0x01, 0x00, 0x41})
	f.Add(byte(0x03), byte(0x00), []byte{0x63, 0xE9})
	f.Add(byte(0x01), byte(0x00), []byte("a@b"))
	f.Add(byte(0xF4), byte(0x40), []byte{0x00, 0xFF})
	f.Fuzz(func(t *testing.T, dc, esm byte, payload []byte) {
		text, udh, err := DecodePayload(dc, esm, payload)
		if err != nil {
			if !errors.Is(err, ErrUnsupportedDataCoding) && !errors.Is(err, ErrInvalidUDH) && !errors.Is(err, ErrInvalidPayload) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		body := payload
		if esm&ESMClassUDHI != 0 {
			if udh == nil {
				t.Fatal("no header with UDHI set")
			}
			n := udh.Len()
			if !bytes.Equal(udh.Bytes(), payload[:n]) {
				t.Fatalf("header % X, payload % X", udh.Bytes(), payload)
			}
			body = payload[n:]
		} else if udh != nil {
			t.Fatal("header without UDHI")
		}
		enc, _ := DecodeDataCoding(dc)
		if enc != Binary8 && !utf8.ValidString(text) {
			t.Fatalf("invalid UTF-8 %q", text)
		}
		switch enc {
		case GSM7:
			septets, err := gsm7.Encode(text)
			if err != nil {
				t.Fatalf("decoded GSM text %q does not encode: %v", text, err)
			}
			if back, _ := gsm7.Decode(septets); back != text {
				t.Fatalf("GSM round trip %q -> %q", text, back)
			}
		case UCS2:
			if back, err := EncodeUCS2(text); err != nil || !bytes.Equal(back, body) {
				t.Fatalf("UCS2 round trip % X -> % X, %v", body, back, err)
			}
		case IA5, Binary8:
			if text != string(body) {
				t.Fatalf("%v: %q from % X", enc, text, body)
			}
		case Latin1:
			back, err := encodeText(Latin1, text)
			if err != nil || !bytes.Equal(back.payload, body) {
				t.Fatalf("Latin1 round trip % X, %v", back, err)
			}
		}
	})
}

// FuzzSplit: Split never panics, and every plan it returns holds together.
func FuzzSplit(f *testing.F) {
	f.Add("hello", uint8(0), uint8(0), false, uint16(1))
	f.Add("a€b{c}😀 “x” ж", uint8(0), uint8(1), true, uint16(0xFFFF))
	f.Add("\xff\xfe", uint8(4), uint8(2), false, uint16(7))
	f.Add("café…", uint8(3), uint8(0), true, uint16(9))
	f.Fuzz(func(t *testing.T, text string, force, concat uint8, translit bool, ref uint16) {
		if len(text) > 4000 {
			return
		}
		opt := Options{Force: Encoding(force % 6), Concat: ConcatMode(concat % 3), Transliterate: translit, MaxSegments: 255}
		p, err := Split(text, opt, ref)
		if err != nil {
			for _, s := range []error{ErrNotEncodable, ErrInvalidUTF8, ErrTooManySegments} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("unexpected error %v", err)
		}
		checkPlan(t, p, opt, ref)
	})
}
