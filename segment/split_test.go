package segment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkPlan verifies what must hold for every plan: parts within capacity,
// headers and SAR values consistent, every part decodable on its own, and
// the parts joined giving the text back.
func checkPlan(t *testing.T, p *Plan, opt Options, ref uint16) {
	t.Helper()
	single, perPart := Limits(p.Encoding, opt.Concat)
	total := len(p.Parts)
	if total == 0 {
		t.Fatal("no parts")
	}
	var joined strings.Builder
	units := 0
	for i, part := range p.Parts {
		if part.Seq != i+1 || part.Total != total {
			t.Fatalf("part %d: seq %d total %d", i, part.Seq, part.Total)
		}
		limit := perPart
		if total == 1 {
			limit = single
		}
		if part.Units > limit {
			t.Fatalf("part %d has %d units, limit %d", part.Seq, part.Units, limit)
		}
		units += part.Units
		switch {
		case total == 1:
			if part.UDH != nil || part.SAR != nil || part.ESMClass != 0 {
				t.Fatalf("single part with header %X / SAR %v / esm %X", part.UDH, part.SAR, part.ESMClass)
			}
		case opt.Concat == ConcatSAR:
			if part.UDH != nil || part.ESMClass != 0 {
				t.Fatalf("SAR part with header")
			}
			if *part.SAR != (SAR{Ref: ref, Total: uint8(total), Seq: uint8(i + 1)}) {
				t.Fatalf("SAR = %+v", *part.SAR)
			}
		default:
			if part.ESMClass != ESMClassUDHI || !bytes.HasPrefix(part.Payload, part.UDH) {
				t.Fatalf("UDH part: esm %X udh % X payload % X", part.ESMClass, part.UDH, part.Payload)
			}
			wantRef := uint16(byte(ref))
			if opt.Concat == ConcatUDH16 {
				wantRef = ref
			}
			u, _, err := ParseUDH(part.UDH)
			if err != nil || u.Concat == nil || *u.Concat != (Concat{Ref: wantRef, Total: total, Seq: i + 1, SixteenBit: opt.Concat == ConcatUDH16}) {
				t.Fatalf("UDH % X parses to %+v, %v", part.UDH, u.Concat, err)
			}
		}
		// Octet limit of short_message for the over-the-air form.
		body := len(part.Payload) - len(part.UDH)
		if p.Encoding == UCS2 || p.Encoding == Latin1 || p.Encoding == Binary8 {
			if len(part.Payload) > 140 {
				t.Fatalf("part %d: %d octets", part.Seq, len(part.Payload))
			}
		} else if len(part.UDH)+(7*part.Units+7)/8 > 140 && body > 0 {
			t.Fatalf("part %d: %d septets after a %d-octet header exceed 140 octets", part.Seq, part.Units, len(part.UDH))
		}
		text, udh, err := DecodePayload(p.DataCoding, part.ESMClass, part.Payload)
		if err != nil {
			t.Fatalf("part %d does not decode: %v (% X)", part.Seq, err, part.Payload)
		}
		if (udh != nil) != (part.UDH != nil) {
			t.Fatalf("part %d: decoded header %v", part.Seq, udh)
		}
		joined.WriteString(text)
	}
	if units != p.Units {
		t.Fatalf("parts hold %d units, plan says %d", units, p.Units)
	}
	if joined.String() != p.Text {
		t.Fatalf("parts join to %q, want %q", joined.String(), p.Text)
	}
	// Greedy cutting is the fewest parts: each part but the last is full
	// up to less than the next character's size (at most 2 units).
	for i, part := range p.Parts[:total-1] {
		if part.Units < perPart-1 {
			t.Fatalf("part %d holds only %d of %d units", i+1, part.Units, perPart)
		}
	}
	c, err := Count(p.Text, opt)
	if err != nil || c.Segments != total || c.UnitsUsed != p.Units || c.UnitsPerSegment != p.UnitsPerSegment ||
		c.Remaining != p.UnitsPerSegment-p.Parts[total-1].Units || c.Encoding != p.Encoding.String() {
		t.Fatalf("Count = %+v, %v; plan %d parts, %d units", c, err, total, p.Units)
	}
}

func split(t *testing.T, text string, opt Options) *Plan {
	t.Helper()
	const ref = 0xBEEF
	p, err := Split(text, opt, ref)
	if err != nil {
		t.Fatalf("Split(%d runes, %+v): %v", utf8.RuneCountInString(text), opt, err)
	}
	checkPlan(t, p, opt, ref)
	return p
}

func partUnits(p *Plan) []int {
	var u []int
	for _, part := range p.Parts {
		u = append(u, part.Units)
	}
	return u
}

func TestSplitBoundaries(t *testing.T) {
	r := strings.Repeat
	cases := []struct {
		name  string
		text  string
		opt   Options
		enc   Encoding
		units []int
	}{
		{"empty", "", Options{}, GSM7, []int{0}},
		{"gsm 160", r("a", 160), Options{}, GSM7, []int{160}},
		{"gsm 161", r("a", 161), Options{}, GSM7, []int{153, 8}},
		{"gsm 306", r("a", 306), Options{}, GSM7, []int{153, 153}},
		{"gsm 307", r("a", 307), Options{}, GSM7, []int{153, 153, 1}},
		{"gsm 459", r("a", 459), Options{}, GSM7, []int{153, 153, 153}},
		{"gsm 1530", r("a", 1530), Options{}, GSM7, []int{153, 153, 153, 153, 153, 153, 153, 153, 153, 153}},
		{"gsm udh16 161", r("a", 161), Options{Concat: ConcatUDH16}, GSM7, []int{152, 9}},
		{"gsm udh16 304", r("a", 304), Options{Concat: ConcatUDH16}, GSM7, []int{152, 152}},
		{"gsm udh16 305", r("a", 305), Options{Concat: ConcatUDH16}, GSM7, []int{152, 152, 1}},
		{"gsm sar 161", r("a", 161), Options{Concat: ConcatSAR}, GSM7, []int{153, 8}},
		{"escape fits single", r("a", 158) + "€", Options{}, GSM7, []int{160}},
		{"escape overflows single", r("a", 159) + "€", Options{}, GSM7, []int{153, 8}},
		{"escape straddles 153", r("a", 152) + "€" + r("b", 10), Options{}, GSM7, []int{152, 12}},
		{"escape ends 153", r("a", 151) + "€" + r("b", 10), Options{}, GSM7, []int{153, 10}},
		{"escape straddles 152", r("a", 151) + "{" + r("b", 10), Options{Concat: ConcatUDH16}, GSM7, []int{151, 12}},
		{"all escapes", r("€", 81), Options{}, GSM7, []int{152, 10}},
		{"ucs2 70", r("ж", 70), Options{}, UCS2, []int{70}},
		{"ucs2 71", r("ж", 71), Options{}, UCS2, []int{67, 4}},
		{"ucs2 134", r("ж", 134), Options{}, UCS2, []int{67, 67}},
		{"ucs2 135", r("ж", 135), Options{}, UCS2, []int{67, 67, 1}},
		{"ucs2 udh16 71", r("ж", 71), Options{Concat: ConcatUDH16}, UCS2, []int{66, 5}},
		{"ucs2 sar 71", r("ж", 71), Options{Concat: ConcatSAR}, UCS2, []int{67, 4}},
		{"pair fits single", r("ж", 68) + "😀", Options{}, UCS2, []int{70}},
		{"pair overflows single", r("ж", 69) + "😀", Options{}, UCS2, []int{67, 4}},
		{"pair straddles 67", r("ж", 66) + "😀" + r("ж", 10), Options{}, UCS2, []int{66, 12}},
		{"pair straddles 66", r("ж", 65) + "😀" + r("ж", 10), Options{Concat: ConcatUDH16}, UCS2, []int{65, 12}},
		{"emoji only", r("😀", 36), Options{}, UCS2, []int{66, 6}},
		{"binary 140", r("\xff", 140), Options{Force: Binary8}, Binary8, []int{140}},
		{"binary 141", r("\xff", 141), Options{Force: Binary8}, Binary8, []int{134, 7}},
		{"binary udh16 141", r("\x00", 141), Options{Force: Binary8, Concat: ConcatUDH16}, Binary8, []int{133, 8}},
		{"latin1 141", r("é", 141), Options{Force: Latin1}, Latin1, []int{134, 7}},
		{"ia5 160", r("{", 80), Options{Force: IA5}, IA5, []int{160}},
		{"ia5 161", r("{", 80) + "x", Options{Force: IA5}, IA5, []int{152, 9}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := split(t, c.text, c.opt)
			if p.Encoding != c.enc {
				t.Errorf("encoding %v, want %v", p.Encoding, c.enc)
			}
			if got := partUnits(p); fmt.Sprint(got) != fmt.Sprint(c.units) {
				t.Errorf("units per part %v, want %v", got, c.units)
			}
		})
	}
}

func TestSplitGolden(t *testing.T) {
	p, err := Split("Hi €", Options{}, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x48, 0x69, 0x20, 0x1B, 0x65}
	if p.DataCoding != 0 || len(p.Parts) != 1 || !bytes.Equal(p.Parts[0].Payload, want) {
		t.Fatalf("plan %+v", p)
	}

	p, err = Split(strings.Repeat("a", 153)+"bbbbbbbb", Options{}, 0x1234)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Parts[1].Payload; !bytes.Equal(got, append([]byte{0x05, 0x00, 0x03, 0x34, 0x02, 0x02}, "bbbbbbbb"...)) {
		t.Errorf("part 2 payload % X", got)
	}
	if got := p.Parts[0].Payload[:6]; !bytes.Equal(got, []byte{0x05, 0x00, 0x03, 0x34, 0x02, 0x01}) {
		t.Errorf("part 1 header % X", got)
	}
	if len(p.Parts[0].Payload) != 6+153 {
		t.Errorf("part 1 is %d octets", len(p.Parts[0].Payload))
	}

	p, err = Split(strings.Repeat("ж", 66)+"😀жжж", Options{Concat: ConcatUDH16}, 0x1234)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Parts[1].Payload; !bytes.Equal(got, []byte{0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x02,
		0xD8, 0x3D, 0xDE, 0x00, 0x04, 0x36, 0x04, 0x36, 0x04, 0x36}) {
		t.Errorf("UCS2 part 2 payload % X", got)
	}
	if p.DataCoding != 0x08 {
		t.Errorf("data_coding %X", p.DataCoding)
	}

	// IA5 sends ASCII octets but counts septets.
	p, err = Split("a@{", Options{Force: IA5}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Parts[0].Payload, []byte("a@{")) || p.Units != 4 || p.DataCoding != 1 {
		t.Errorf("IA5 plan: payload % X units %d dc %d", p.Parts[0].Payload, p.Units, p.DataCoding)
	}
}

func TestChoose(t *testing.T) {
	f0 := byte(0xF0)
	dc8 := byte(0x08)
	dc5 := byte(0x05)
	cases := []struct {
		name string
		text string
		opt  Options
		enc  Encoding
		err  error
		sent string
		dc   byte
	}{
		{"ascii", "hello", Options{}, GSM7, nil, "hello", 0},
		{"gsm accents", "Hé! ¿Qué tal? £5 €3", Options{}, GSM7, nil, "Hé! ¿Qué tal? £5 €3", 0},
		{"cyrillic", "Привет", Options{}, UCS2, nil, "Привет", 8},
		{"emoji", "ok 👍", Options{}, UCS2, nil, "ok 👍", 8},
		{"smart quotes", "It’s “fine”", Options{}, UCS2, nil, "It’s “fine”", 8},
		{"smart quotes translit", "It’s “fine” – ok…", Options{Transliterate: true}, GSM7, nil, `It's "fine" - ok...`, 0},
		{"translit not enough", "It’s 👍", Options{Transliterate: true}, UCS2, nil, "It’s 👍", 8},
		{"force gsm", "hello", Options{Force: GSM7}, GSM7, nil, "hello", 0},
		{"force gsm fails", "hello 👍", Options{Force: GSM7}, Auto, ErrNotEncodable, "", 0},
		{"force gsm translit", "a—b", Options{Force: GSM7, Transliterate: true}, GSM7, nil, "a-b", 0},
		{"force ucs2", "hello", Options{Force: UCS2}, UCS2, nil, "hello", 8},
		{"force latin1", "café", Options{Force: Latin1}, Latin1, nil, "café", 3},
		{"force latin1 fails", "€", Options{Force: Latin1}, Auto, ErrNotEncodable, "", 0},
		{"force ia5", "a@b", Options{Force: IA5}, IA5, nil, "a@b", 1},
		{"force ia5 fails", "é", Options{Force: IA5}, Auto, ErrNotEncodable, "", 0},
		{"force ia5 backtick", "`", Options{Force: IA5}, Auto, ErrNotEncodable, "", 0},
		{"force binary", "\xff\x00", Options{Force: Binary8}, Binary8, nil, "\xff\x00", 4},
		{"flash gsm", "hi", Options{DataCoding: &f0}, GSM7, nil, "hi", 0xF0},
		{"flash gsm not encodable", "👍", Options{DataCoding: &f0}, Auto, ErrNotEncodable, "", 0},
		{"data coding agrees", "hi", Options{Force: UCS2, DataCoding: &dc8}, UCS2, nil, "hi", 8},
		{"data coding disagrees", "hi", Options{Force: GSM7, DataCoding: &dc8}, Auto, ErrInvalidOptions, "", 0},
		{"data coding unsupported", "hi", Options{DataCoding: &dc5}, Auto, ErrUnsupportedDataCoding, "", 0},
		{"invalid utf8", "a\xffb", Options{}, Auto, ErrInvalidUTF8, "", 0},
		{"invalid utf8 ucs2", "a\xffb", Options{Force: UCS2}, Auto, ErrInvalidUTF8, "", 0},
		{"unknown encoding", "a", Options{Force: Encoding(99)}, Auto, ErrInvalidOptions, "", 0},
		{"unknown concat", "a", Options{Concat: ConcatMode(9)}, Auto, ErrInvalidOptions, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			enc, err := Choose(c.text, c.opt)
			if !errors.Is(err, c.err) || enc != c.enc {
				t.Fatalf("Choose = %v, %v; want %v, %v", enc, err, c.enc, c.err)
			}
			p, err := Split(c.text, c.opt, 1)
			if c.err != nil {
				if !errors.Is(err, c.err) || p != nil {
					t.Fatalf("Split = %v, %v", p, err)
				}
				if _, err := Count(c.text, c.opt); !errors.Is(err, c.err) {
					t.Fatalf("Count error = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkPlan(t, p, c.opt, 1)
			if p.Text != c.sent || p.DataCoding != c.dc || p.Encoding != c.enc {
				t.Fatalf("plan text %q dc %X enc %v; want %q %X %v", p.Text, p.DataCoding, p.Encoding, c.sent, c.dc, c.enc)
			}
		})
	}
}

func TestNotEncodableSaysWhere(t *testing.T) {
	_, err := Split("abc ☺", Options{Force: GSM7}, 0)
	if !errors.Is(err, ErrNotEncodable) || !strings.Contains(err.Error(), "byte 4") || !strings.Contains(err.Error(), "☺") {
		t.Fatalf("error %v", err)
	}
}

func TestMaxSegments(t *testing.T) {
	_, err := Split(strings.Repeat("a", 1531), Options{}, 0)
	if !errors.Is(err, ErrTooManySegments) || !strings.Contains(err.Error(), "11 segments") {
		t.Fatalf("1531 septets: %v", err)
	}
	c, err := Count(strings.Repeat("a", 1531), Options{})
	if !errors.Is(err, ErrTooManySegments) || c.Segments != 11 || c.UnitsUsed != 1531 {
		t.Fatalf("Count = %+v, %v", c, err)
	}
	if _, err := Split(strings.Repeat("ж", 135), Options{MaxSegments: 2}, 0); !errors.Is(err, ErrTooManySegments) {
		t.Fatalf("MaxSegments 2: %v", err)
	}
	split(t, strings.Repeat("ж", 134), Options{MaxSegments: 2})
	// A limit above 255 is lowered to 255, the most a header can number.
	p := split(t, strings.Repeat("a", 153*255), Options{MaxSegments: 1000})
	if len(p.Parts) != 255 {
		t.Fatalf("%d parts", len(p.Parts))
	}
	if _, err := Split(strings.Repeat("a", 153*255+1), Options{MaxSegments: 1000}, 0); !errors.Is(err, ErrTooManySegments) {
		t.Fatalf("256 parts: %v", err)
	}
}

func TestCount(t *testing.T) {
	cases := []struct {
		text string
		opt  Options
		want Counts
	}{
		{"", Options{}, Counts{"GSM7", 1, 0, 0, 160, 160}},
		{"hello", Options{}, Counts{"GSM7", 1, 5, 5, 160, 155}},
		{"€", Options{}, Counts{"GSM7", 1, 1, 2, 160, 158}},
		{strings.Repeat("a", 161), Options{}, Counts{"GSM7", 2, 161, 161, 153, 145}},
		{"héllo 👋", Options{}, Counts{"UCS2", 1, 7, 8, 70, 62}},
		{strings.Repeat("ж", 71), Options{}, Counts{"UCS2", 2, 71, 71, 67, 63}},
		{"a…", Options{Transliterate: true}, Counts{"GSM7", 1, 2, 4, 160, 156}},
		{"\xff\xfe", Options{Force: Binary8}, Counts{"BINARY8", 1, 2, 2, 140, 138}},
		// An escape that does not fit the end of a part leaves a unit unused.
		{strings.Repeat("a", 152) + "€" + strings.Repeat("b", 8), Options{}, Counts{"GSM7", 2, 161, 162, 153, 143}},
	}
	for _, c := range cases {
		got, err := Count(c.text, c.opt)
		if err != nil || got != c.want {
			t.Errorf("Count(%.20q) = %+v, %v; want %+v", c.text, got, err, c.want)
		}
	}
	b, _ := json.Marshal(Counts{"GSM7", 1, 5, 5, 160, 155})
	if string(b) != `{"encoding":"GSM7","segments":1,"characters":5,"unitsUsed":5,"unitsPerSegment":160,"remaining":155}` {
		t.Errorf("json %s", b)
	}
}

// randomText mixes the cases that matter: plain GSM, extension characters,
// BMP characters outside GSM, surrogate pairs and look-alikes.
func randomText(rng *rand.Rand, n int) string {
	pools := [][]rune{
		[]rune("abcdefghijklmnopqrstuvwxyz0123456789 .,!?@£$¥èéÄÖÑÜ\r\n"),
		[]rune("€{}[]~^|\\\f"),
		[]rune("жЖπλ中文ÿçĀ"),
		[]rune("😀👍🎉𝄞"),
		[]rune("“”‘’–—…\u00A0"),
	}
	var b strings.Builder
	// Most texts stay in one or two pools so both encodings are exercised.
	use := rng.IntN(len(pools))
	for i := 0; i < n; i++ {
		p := pools[0]
		switch k := rng.IntN(20); {
		case k < 3:
			p = pools[1]
		case k < 4 && use >= 2:
			p = pools[use]
		case k < 5 && use == 4:
			p = pools[4]
		}
		b.WriteRune(p[rng.IntN(len(p))])
	}
	return b.String()
}

func TestSplitRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for i := 0; i < 3000; i++ {
		text := randomText(rng, rng.IntN(700))
		opt := Options{
			Concat:        ConcatMode(rng.IntN(3)),
			Transliterate: rng.IntN(2) == 0,
			MaxSegments:   255,
		}
		split(t, text, opt)
	}
}

// The table of docs/encoding.md: the most units that fit n segments.
func TestMostUnitsPerSegmentCount(t *testing.T) {
	type key struct {
		enc  Encoding
		mode ConcatMode
	}
	most := map[key][]int{ // for 1, 2, 3, 4 and 10 segments
		{GSM7, ConcatUDH8}:     {160, 306, 459, 612, 1530},
		{GSM7, ConcatSAR}:      {160, 306, 459, 612, 1530},
		{GSM7, ConcatUDH16}:    {160, 304, 456, 608, 1520},
		{Binary8, ConcatUDH8}:  {140, 268, 402, 536, 1340},
		{Binary8, ConcatUDH16}: {140, 266, 399, 532, 1330},
		{UCS2, ConcatUDH8}:     {70, 134, 201, 268, 670},
		{UCS2, ConcatUDH16}:    {70, 132, 198, 264, 660},
	}
	unit := map[Encoding]string{GSM7: "a", Binary8: "\x01", UCS2: "ж"}
	for k, ns := range most {
		for i, segs := range []int{1, 2, 3, 4, 10} {
			opt := Options{Force: k.enc, Concat: k.mode, MaxSegments: 20}
			c, err := Count(strings.Repeat(unit[k.enc], ns[i]), opt)
			if err != nil || c.Segments != segs || c.Remaining != 0 {
				t.Errorf("%v %v %d units: %+v, %v; want %d segments, full", k.enc, k.mode, ns[i], c, err, segs)
			}
			c, _ = Count(strings.Repeat(unit[k.enc], ns[i]+1), opt)
			if c.Segments != segs+1 {
				t.Errorf("%v %v %d units: %d segments, want %d", k.enc, k.mode, ns[i]+1, c.Segments, segs+1)
			}
		}
	}
}

func BenchmarkSplit(b *testing.B) {
	texts := map[string]string{
		"gsm-single":  "Your verification code is 123456. It expires in 10 minutes.",
		"gsm-10parts": strings.Repeat("Lorem ipsum dolor sit amet € ", 50),
		"ucs2-4parts": strings.Repeat("Привет, мир 👋 ", 17),
	}
	for name, text := range texts {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Split(text, Options{}, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
