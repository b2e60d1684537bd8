package main

import (
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smpptest"
	"github.com/smsgw/smsgw/gsm7"
	"github.com/smsgw/smsgw/segment"
)

// reassemble decodes the parts the SMSC received for one destination and
// joins them in UDH order, as a handset would.
func reassemble(t *testing.T, subs []smpptest.Submitted, dest string) (text string, dataCoding byte, parts int) {
	t.Helper()
	type part struct {
		seq  int
		text string
	}
	var got []part
	var ref = -1
	for _, s := range subs {
		if s.DestAddr != dest {
			continue
		}
		txt, udh, err := segment.DecodePayload(s.DataCoding, s.ESMClass, s.ShortMessage)
		if err != nil {
			t.Fatalf("part for %s does not decode: %v", dest, err)
		}
		seq := 1
		if udh != nil && udh.Concat != nil {
			seq = udh.Concat.Seq
			if ref >= 0 && int(udh.Concat.Ref) != ref {
				t.Fatalf("parts of one message carry references %d and %d", ref, udh.Concat.Ref)
			}
			ref = int(udh.Concat.Ref)
			if udh.Concat.Total != countFor(subs, dest) {
				t.Fatalf("UDH says %d parts, the SMSC got %d", udh.Concat.Total, countFor(subs, dest))
			}
		}
		dataCoding = s.DataCoding
		got = append(got, part{seq, txt})
	}
	sort.Slice(got, func(i, j int) bool { return got[i].seq < got[j].seq })
	var b strings.Builder
	for i, p := range got {
		if p.seq != i+1 {
			t.Fatalf("part numbers %v are not 1..n", got)
		}
		b.WriteString(p.text)
	}
	return b.String(), dataCoding, len(got)
}

func countFor(subs []smpptest.Submitted, dest string) int {
	n := 0
	for _, s := range subs {
		if s.DestAddr == dest {
			n++
		}
	}
	return n
}

func TestEndToEndLongMessagesAndEmoji(t *testing.T) {
	g := startGateway(t)

	// 400 characters of GSM 7-bit text with extension characters, which
	// count two septets each and must never be split from their escape.
	unit := "Price [EUR]: 10€ {promo} ~50% off | "
	long := strings.Repeat(unit, 12)[:400]
	emoji := "Meet at 7? 🎉🎂 Bring the ünicode, ok 👍"

	code, count := g.do(t, "POST", "/v1/messages:count", "acme-key", `{"text":`+jsonString(long)+`}`)
	if code != http.StatusOK || count["encoding"] != "GSM7" {
		t.Fatalf("count: HTTP %d %v", code, count)
	}
	wantParts := int(count["segments"].(float64))

	cases := []struct {
		to, text, encoding string
		dataCoding         byte
		parts              int
	}{
		{"+61411111111", long, "GSM7", 0x00, wantParts},
		{"+61422222222", emoji, "UCS2", 0x08, 1},
	}
	for _, c := range cases {
		code, acc := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"`+c.to+`","text":`+jsonString(c.text)+`}`)
		if code != http.StatusAccepted || acc["encoding"] != c.encoding || int(acc["segments"].(float64)) != c.parts {
			t.Fatalf("submit %s: HTTP %d %v, want %s in %d parts", c.to, code, acc, c.encoding, c.parts)
		}
		n := g.hook.waitFor(t, acc["id"].(string), 30*time.Second)
		if n["status"] != "DELIVERED" || int(n["parts"].(float64)) != c.parts {
			t.Fatalf("webhook %v, want DELIVERED with %d parts", n, c.parts)
		}
		text, dc, parts := reassemble(t, g.sim.Submits(), strings.TrimPrefix(c.to, "+"))
		if text != c.text || dc != c.dataCoding || parts != c.parts {
			t.Fatalf("at the SMSC: %d parts, data_coding %#x, text %q; want %d parts, %#x, %q", parts, dc, text, c.parts, c.dataCoding, c.text)
		}
	}
	septets, _ := gsm7.SeptetCount(long)
	if want := (septets + 152) / 153; wantParts != want {
		t.Fatalf("%d septets counted as %d parts, want %d", septets, wantParts, want)
	}

	// The "early" connector (+64) wants SAR TLVs instead of a UDH.
	code, acc := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+6421444555","text":`+jsonString(long)+`}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit: HTTP %d %v", code, acc)
	}
	g.hook.waitFor(t, acc["id"].(string), 30*time.Second)
	var joined strings.Builder
	var ref uint16
	seq := 0
	for _, s := range g.early.Submits() {
		if s.DestAddr != "6421444555" {
			continue
		}
		seq++
		if s.SAR == nil || s.ESMClass&0x40 != 0 || int(s.SAR.Seq) != seq || int(s.SAR.Total) != wantParts || (seq > 1 && s.SAR.Ref != ref) {
			t.Fatalf("part %d at the SAR SMSC: esm_class %#x, SAR %+v", seq, s.ESMClass, s.SAR)
		}
		ref = s.SAR.Ref
		txt, _, err := segment.DecodePayload(s.DataCoding, s.ESMClass, s.ShortMessage)
		if err != nil {
			t.Fatal(err)
		}
		joined.WriteString(txt)
	}
	if seq != wantParts || joined.String() != long {
		t.Fatalf("SAR parts: %d, text %q", seq, joined.String())
	}

	// Text the encoder cannot carry is refused with a reason, not mangled.
	code, out := g.do(t, "POST", "/v1/messages", "acme-key", `{"from":"ACME","to":"+61433333333","text":"`+strings.Repeat("€", 1000)+`"}`)
	if code != http.StatusBadRequest || !strings.Contains(out["message"].(string), "segments") {
		t.Fatalf("too many segments: HTTP %d %v", code, out)
	}
}

func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
