package segment

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestDecodeDataCodingTable(t *testing.T) {
	ok := map[byte]Encoding{
		0x00: GSM7, 0x01: IA5, 0x02: Binary8, 0x03: Latin1, 0x04: Binary8, 0x08: UCS2,
		// GSM general data coding with message class.
		0x10: GSM7, 0x11: GSM7, 0x13: GSM7, 0x14: Binary8, 0x16: Binary8, 0x18: UCS2, 0x1A: UCS2,
		// Without class, automatic deletion group.
		0x40: GSM7, 0x44: Binary8, 0x48: UCS2, 0x51: GSM7, 0x58: UCS2,
		// Message waiting indication.
		0xC0: GSM7, 0xC8: GSM7, 0xD3: GSM7, 0xDF: GSM7, 0xE0: UCS2, 0xEF: UCS2,
		// Message class control: bit 2 chooses 8-bit.
		0xF0: GSM7, 0xF1: GSM7, 0xF2: GSM7, 0xF3: GSM7,
		0xF4: Binary8, 0xF5: Binary8, 0xF6: Binary8, 0xF7: Binary8,
		0xF8: GSM7, 0xFC: Binary8, 0xFF: Binary8,
	}
	bad := []byte{0x05, 0x06, 0x07, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
		0x1C, 0x1F, 0x20, 0x21, 0x28, 0x3F, 0x4C, 0x5F, 0x60, 0x7F, 0x80, 0x99, 0xBF}
	for dc, want := range ok {
		got, err := DecodeDataCoding(dc)
		if err != nil || got != want {
			t.Errorf("DecodeDataCoding(0x%02X) = %v, %v; want %v", dc, got, err, want)
		}
	}
	for _, dc := range bad {
		got, err := DecodeDataCoding(dc)
		if !errors.Is(err, ErrUnsupportedDataCoding) || got != Auto {
			t.Errorf("DecodeDataCoding(0x%02X) = %v, %v; want ErrUnsupportedDataCoding", dc, got, err)
		}
	}
}

func TestDecodeDataCodingEveryValue(t *testing.T) {
	supported := 0
	for v := 0; v <= 0xFF; v++ {
		enc, err := DecodeDataCoding(byte(v))
		switch {
		case err == nil && enc != Auto:
			supported++
		case err != nil && errors.Is(err, ErrUnsupportedDataCoding) && enc == Auto:
		default:
			t.Errorf("0x%02X: %v, %v", v, enc, err)
		}
	}
	// 6 SMPP values; 12 in 0x10–0x1F and 24 in 0x40–0x5F (reserved
	// alphabet excluded); 48 message waiting; 16 message class.
	if supported != 6+12+24+48+16 {
		t.Errorf("%d supported values", supported)
	}
}

func TestEncodingDataCodingRoundTrip(t *testing.T) {
	for _, e := range []Encoding{GSM7, IA5, Latin1, Binary8, UCS2} {
		got, err := DecodeDataCoding(e.DataCoding())
		if err != nil || got != e {
			t.Errorf("%v: data_coding 0x%02X decodes to %v, %v", e, e.DataCoding(), got, err)
		}
	}
}

func TestEncodingNames(t *testing.T) {
	for _, e := range []Encoding{Auto, GSM7, IA5, Latin1, Binary8, UCS2} {
		got, err := ParseEncoding(e.String())
		if err != nil || got != e {
			t.Errorf("ParseEncoding(%q) = %v, %v", e.String(), got, err)
		}
	}
	if got, err := ParseEncoding("ucs2"); err != nil || got != UCS2 {
		t.Errorf("lower case: %v, %v", got, err)
	}
	if _, err := ParseEncoding("EBCDIC"); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("unknown name: %v", err)
	}
	if s := Encoding(42).String(); s != "Encoding(42)" {
		t.Errorf("String of unknown = %q", s)
	}
	var opt Options
	if err := json.Unmarshal([]byte(`{"force":"UCS2","concat":"udh16"}`), &opt); err != nil || opt.Force != UCS2 || opt.Concat != ConcatUDH16 {
		t.Errorf("json options = %+v, %v", opt, err)
	}
	b, _ := json.Marshal(Options{Force: GSM7})
	if string(b) != `{"force":"GSM7"}` {
		t.Errorf("json = %s", b)
	}
}

func TestConcatModeString(t *testing.T) {
	for m, want := range map[ConcatMode]string{ConcatUDH8: "UDH8", ConcatUDH16: "UDH16", ConcatSAR: "SAR", 7: "ConcatMode(7)"} {
		if m.String() != want {
			t.Errorf("%d.String() = %q, want %q", m, m.String(), want)
		}
	}
	var e Encoding
	if err := e.UnmarshalText([]byte("nope")); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("Encoding.UnmarshalText: %v", err)
	}
	var m ConcatMode
	if err := m.UnmarshalText([]byte("UDH32")); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("ConcatMode.UnmarshalText: %v", err)
	}
	for _, want := range []ConcatMode{ConcatUDH8, ConcatUDH16, ConcatSAR} {
		b, _ := want.MarshalText()
		if err := m.UnmarshalText(b); err != nil || m != want {
			t.Errorf("ConcatMode %v round trip: %v, %v", want, m, err)
		}
	}
	if m, err := ParseConcatMode(""); err != nil || m != ConcatUDH8 {
		t.Errorf(`ParseConcatMode("") = %v, %v`, m, err)
	}
}
