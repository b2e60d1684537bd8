package lifecycle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/smsgw/smsgw"
	"github.com/smsgw/smsgw/workflows"
)

func TestDecodeMO(t *testing.T) {
	gsm := func(s string) []byte { return []byte(s) } // ASCII letters are their own GSM 7-bit septets
	udh8 := func(ref, total, seq byte, text string) []byte {
		return append([]byte{0x05, 0x00, 0x03, ref, total, seq}, gsm(text)...)
	}
	for _, c := range []struct {
		name     string
		mo       smsgw.MO
		text     string
		encoding string
		concat   *moConcat
	}{
		{"GSM 7-bit", smsgw.MO{DataCoding: 0, ShortMessage: gsm("Hello")}, "Hello", "GSM7", nil},
		{"UCS-2", smsgw.MO{DataCoding: 8, ShortMessage: []byte{0x04, 0x1F, 0x04, 0x40, 0x00, 0x21}}, "Пр!", "UCS2", nil},
		{"8-bit UDH part", smsgw.MO{ESMClass: 0x40, ShortMessage: udh8(9, 2, 1, "Hi")}, "Hi", "GSM7", &moConcat{Ref: 9, Total: 2, Seq: 1}},
		{"16-bit UDH part", smsgw.MO{ESMClass: 0x40, ShortMessage: append([]byte{0x06, 0x08, 0x04, 0x01, 0x02, 0x03, 0x03}, gsm("x")...)}, "x", "GSM7", &moConcat{Ref: 0x0102, Total: 3, Seq: 3}},
		{"SAR part", smsgw.MO{ShortMessage: gsm("yo"), SAR: &smsgw.SAR{Ref: 300, Total: 2, Seq: 2}}, "yo", "GSM7", &moConcat{Ref: 300, Total: 2, Seq: 2}},
		{"one of one is single", smsgw.MO{ShortMessage: gsm("solo"), SAR: &smsgw.SAR{Ref: 1, Total: 1, Seq: 1}}, "solo", "GSM7", nil},
		{"SAR seq beyond total", smsgw.MO{ShortMessage: gsm("odd"), SAR: &smsgw.SAR{Ref: 1, Total: 2, Seq: 5}}, "odd", "GSM7", nil},
		{"binary as hex", smsgw.MO{DataCoding: 4, ShortMessage: []byte{0xCA, 0xFE}}, "cafe", "BINARY8", nil},
		{"unknown coding as hex, header kept", smsgw.MO{DataCoding: 0x05, ESMClass: 0x40, ShortMessage: append([]byte{0x05, 0x00, 0x03, 7, 2, 2}, 0xAB)}, "ab", "UNKNOWN", &moConcat{Ref: 7, Total: 2, Seq: 2}},
		{"broken header as hex", smsgw.MO{ESMClass: 0x40, ShortMessage: []byte{0x09, 0x00}}, "0900", "UNKNOWN", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			text, enc, concat := decodeMO(c.mo)
			if text != c.text || enc != c.encoding || fmt.Sprint(concat) != fmt.Sprint(c.concat) {
				t.Errorf("decodeMO = %q %s %v, want %q %s %v", text, enc, concat, c.text, c.encoding, c.concat)
			}
		})
	}
}

func TestInboundIDs(t *testing.T) {
	key := []byte("workflow id key")
	mo := smsgw.MO{ConnectorID: "sim", From: "61412345678", To: "12345", ShortMessage: []byte("hi"), ReceivedAt: time.Now()}
	again := mo
	again.ReceivedAt = mo.ReceivedAt.Add(time.Minute)
	if singleInboundID(key, mo) != singleInboundID(key, again) {
		t.Error("the same deliver_sm delivered again got another ID")
	}
	other := mo
	other.ShortMessage = []byte("ho")
	if singleInboundID(key, mo) == singleInboundID(key, other) {
		t.Error("two texts got one ID")
	}
	in := workflows.ReassemblyInput{ConnectorID: "sim", From: "61412345678", To: "12345", Ref: 1, Total: 2}
	for _, id := range []string{singleInboundID(key, mo), reassemblyID(key, in)} {
		if strings.Contains(id, "61412345678") || strings.Contains(id, "12345") {
			t.Errorf("ID %q shows a phone number", id)
		}
	}
}

// TestInboundIDsAreKeyed: whoever sees a workflow ID and guesses the
// numbers cannot confirm the guess without the key. Unkeyed, the reassembly
// ID is the SHA-256 of what it names, which anybody recomputes.
func TestInboundIDsAreKeyed(t *testing.T) {
	in := workflows.ReassemblyInput{ConnectorID: "sim", From: "61412345678", To: "12345", Ref: 1, Total: 2}
	guess := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%d\x00%d", in.ConnectorID, in.From, in.To, in.Ref, in.Total))
	unkeyed := "mo-parts-" + hex.EncodeToString(guess[:16])
	if got := reassemblyID(nil, in); got != unkeyed {
		t.Fatalf("without a key the ID is %s, want the former %s (running reassemblies keep theirs)", got, unkeyed)
	}
	keyed := reassemblyID([]byte("k1"), in)
	if keyed == unkeyed || keyed == reassemblyID([]byte("k2"), in) {
		t.Fatalf("keyed ID %s is the unkeyed one, or the same under another key", keyed)
	}
	if keyed != reassemblyID([]byte("k1"), in) {
		t.Fatal("the same parts under the same key got another ID")
	}
	mo := smsgw.MO{ConnectorID: "sim", From: "61412345678", To: "12345", ShortMessage: []byte("STOP")}
	if singleInboundID([]byte("k1"), mo) == singleInboundID(nil, mo) || singleInboundID([]byte("k1"), mo) == singleInboundID([]byte("k2"), mo) {
		t.Fatal("a single MO's ID does not depend on the key")
	}
}

func FuzzDecodeMO(f *testing.F) {
	f.Add(byte(0), byte(0), []byte("Hello"), false)
	f.Add(byte(8), byte(0x40), []byte{0x05, 0x00, 0x03, 1, 2, 1, 0x00, 0x41}, false)
	f.Add(byte(0xF5), byte(0x40), []byte{0x06, 0x08, 0x04, 0xFF, 0xFF, 0x00, 0x01}, true)
	f.Add(byte(0x05), byte(0x43), []byte{0xFF}, true)
	f.Fuzz(func(t *testing.T, dc, esm byte, payload []byte, sar bool) {
		mo := smsgw.MO{DataCoding: dc, ESMClass: esm, ShortMessage: payload}
		if sar && len(payload) > 2 {
			mo.SAR = &smsgw.SAR{Ref: uint16(payload[0]), Total: payload[1], Seq: payload[2]}
		}
		text, enc, concat := decodeMO(mo)
		if enc == "" {
			t.Fatal("no encoding")
		}
		if !utf8.ValidString(text) {
			t.Fatalf("text %q is not UTF-8", text)
		}
		if concat != nil && (concat.Total < 2 || concat.Seq < 1 || concat.Seq > concat.Total) {
			t.Fatalf("impossible part %+v", concat)
		}
	})
}
