package segment

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestBuildConcatUDH(t *testing.T) {
	if got := BuildConcatUDH(0x1234, 3, 2, false); !bytes.Equal(got, []byte{0x05, 0x00, 0x03, 0x34, 0x03, 0x02}) {
		t.Errorf("8-bit header % X", got)
	}
	if got := BuildConcatUDH(0x1234, 3, 2, true); !bytes.Equal(got, []byte{0x06, 0x08, 0x04, 0x12, 0x34, 0x03, 0x02}) {
		t.Errorf("16-bit header % X", got)
	}
}

func TestParseUDH(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		ies    []IE
		concat *Concat
		rest   string
	}{
		{"concat 8", "050003A70302 4869", []IE{{0x00, []byte{0xA7, 0x03, 0x02}}}, &Concat{Ref: 0xA7, Total: 3, Seq: 2}, "4869"},
		{"concat 16", "0608041234FF01", []IE{{0x08, []byte{0x12, 0x34, 0xFF, 0x01}}}, &Concat{Ref: 0x1234, Total: 255, Seq: 1, SixteenBit: true}, ""},
		{"empty header", "00 41", nil, nil, "41"},
		// Application port addressing (16-bit) kept opaque, then concatenation.
		{"ports and concat", "0B 05040B8423F0 0003010201 DEAD",
			[]IE{{0x05, []byte{0x0B, 0x84, 0x23, 0xF0}}, {0x00, []byte{0x01, 0x02, 0x01}}},
			&Concat{Ref: 1, Total: 2, Seq: 1}, "DEAD"},
		{"empty element", "02 7000", []IE{{0x70, []byte{}}}, nil, ""},
		// With two concatenation elements the last one counts.
		{"two concat", "0A 0003010201 0003090303", []IE{{0x00, []byte{1, 2, 1}}, {0x00, []byte{9, 3, 3}}}, &Concat{Ref: 9, Total: 3, Seq: 3}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := unhex(t, c.in)
			u, rest, err := ParseUDH(in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(u.IEs, c.ies) {
				t.Errorf("IEs = %+v, want %+v", u.IEs, c.ies)
			}
			if !reflect.DeepEqual(u.Concat, c.concat) {
				t.Errorf("Concat = %+v, want %+v", u.Concat, c.concat)
			}
			if !bytes.Equal(rest, unhex(t, c.rest)) {
				t.Errorf("rest = % X", rest)
			}
			if b := u.Bytes(); !bytes.Equal(b, in[:len(in)-len(rest)]) || u.Len() != len(b) {
				t.Errorf("Bytes = % X, Len %d", b, u.Len())
			}
		})
	}
}

func TestParseUDHCopies(t *testing.T) {
	in := []byte{0x03, 0x70, 0x01, 0xAA}
	u, _, err := ParseUDH(in)
	if err != nil {
		t.Fatal(err)
	}
	in[3] = 0xBB
	if u.IEs[0].Data[0] != 0xAA {
		t.Errorf("parsed element shares memory with the input")
	}
}

func TestParseUDHErrors(t *testing.T) {
	cases := map[string]string{
		"no data":                "",
		"length beyond data":     "05 000301",
		"element without length": "01 00",
		"element overruns":       "03 0005 0102",
		"concat 8 short":         "04 0002A703",
		"concat 8 long":          "06 0004A7030201",
		"concat 16 short":        "05 0803123403",
		"total zero":             "05 0003A70001",
		"seq zero":               "05 0003A70300",
		"seq above total":        "05 0003A70304",
		"16 seq above total":     "06 08041234 0203",
		"16 total zero":          "06 08041234 0000",
	}
	for name, h := range cases {
		b := unhex(t, h)
		u, rest, err := ParseUDH(b)
		if !errors.Is(err, ErrInvalidUDH) {
			t.Errorf("%s: ParseUDH(% X) = %+v, % X, %v", name, b, u, rest, err)
		}
	}
}

func TestUDHBytesTooLong(t *testing.T) {
	u := UDH{IEs: []IE{{0x70, make([]byte, 256)}}}
	if u.Bytes() != nil {
		t.Errorf("element of 256 octets encoded")
	}
	u = UDH{IEs: []IE{{0x70, make([]byte, 200)}, {0x71, make([]byte, 100)}}}
	if u.Bytes() != nil {
		t.Errorf("header of 304 octets encoded")
	}
}

func TestDecodePayload(t *testing.T) {
	cases := []struct {
		name   string
		dc     byte
		esm    byte
		in     string
		text   string
		concat *Concat
	}{
		{"gsm7", 0x00, 0x00, "48 65 6C 6C 6F 00 1B65", "Hello@€", nil},
		{"gsm7 udh", 0x00, 0x40, "050003 2A 02 01 48 69", "Hi", &Concat{Ref: 0x2A, Total: 2, Seq: 1}},
		{"gsm7 udh with other esm bits", 0x00, 0x43, "050003 2A 02 02 48 69", "Hi", &Concat{Ref: 0x2A, Total: 2, Seq: 2}},
		{"flash", 0xF0, 0x00, "4869", "Hi", nil},
		{"ia5", 0x01, 0x00, "7573657240782E636F6D", "user@x.com", nil},
		{"latin1", 0x03, 0x00, "636166E9", "café", nil},
		{"binary", 0x04, 0x00, "00FF", "\x00\xff", nil},
		{"binary 2", 0x02, 0x40, "06 0504 0B84 23F0 00FF", "\x00\xff", nil},
		{"ucs2", 0x08, 0x00, "041F D83DDE00", "П😀", nil},
		{"ucs2 udh16", 0x08, 0x40, "0608040102 0301 0041", "A", &Concat{Ref: 0x0102, Total: 3, Seq: 1, SixteenBit: true}},
		{"ucs2 class 0", 0x18, 0x00, "0041", "A", nil},
		{"empty", 0x00, 0x00, "", "", nil},
		{"udh only", 0x08, 0x40, "050003010101", "", &Concat{Ref: 1, Total: 1, Seq: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text, udh, err := DecodePayload(c.dc, c.esm, unhex(t, c.in))
			if err != nil || text != c.text {
				t.Fatalf("DecodePayload = %q, %v; want %q", text, err, c.text)
			}
			if (udh != nil) != (c.esm&0x40 != 0) {
				t.Fatalf("header %v with esm_class %X", udh, c.esm)
			}
			if udh != nil && !reflect.DeepEqual(udh.Concat, c.concat) {
				t.Fatalf("concat %+v, want %+v", udh.Concat, c.concat)
			}
		})
	}
}

func TestDecodePayloadErrors(t *testing.T) {
	cases := []struct {
		name string
		dc   byte
		esm  byte
		in   string
		err  error
	}{
		{"jis", 0x05, 0x00, "41", ErrUnsupportedDataCoding},
		{"compressed", 0x20, 0x00, "41", ErrUnsupportedDataCoding},
		{"gsm7 high septet", 0x00, 0x00, "4180", ErrInvalidPayload},
		{"gsm7 dangling escape", 0x00, 0x00, "411B", ErrInvalidPayload},
		{"ia5 non ascii", 0x01, 0x00, "41E9", ErrInvalidPayload},
		{"ucs2 odd", 0x08, 0x00, "004100", ErrInvalidPayload},
		{"ucs2 lone high", 0x08, 0x00, "D83D0041", ErrInvalidUTF16},
		{"ucs2 lone low", 0x08, 0x00, "DE00", ErrInvalidUTF16},
		{"bad udh", 0x00, 0x40, "0A0003", ErrInvalidUDH},
		{"udhi on empty", 0x00, 0x40, "", ErrInvalidUDH},
		{"bad udh seq", 0x08, 0x40, "050003010300", ErrInvalidUDH},
	}
	for _, c := range cases {
		text, udh, err := DecodePayload(c.dc, c.esm, unhex(t, c.in))
		if !errors.Is(err, c.err) || text != "" || udh != nil {
			t.Errorf("%s: DecodePayload = %q, %v, %v; want %v", c.name, text, udh, err, c.err)
		}
	}
}
