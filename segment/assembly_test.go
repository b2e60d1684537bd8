package segment

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
)

func parts(ref uint16, texts ...string) []IncomingPart {
	var ps []IncomingPart
	for i, t := range texts {
		ps = append(ps, IncomingPart{Ref: ref, Total: len(texts), Seq: i + 1, Text: t})
	}
	return ps
}

func TestAssemblyAnyOrder(t *testing.T) {
	all := parts(42, "Hello, ", "wide ", "world", "!")
	rng := rand.New(rand.NewPCG(21, 22))
	for round := 0; round < 50; round++ {
		order := rng.Perm(len(all))
		var a Assembly
		for i, k := range order {
			complete, err := a.Add(all[k])
			if err != nil {
				t.Fatal(err)
			}
			if complete != (i == len(all)-1) {
				t.Fatalf("after %d parts complete = %v", i+1, complete)
			}
		}
		text, partial := a.Text()
		if text != "Hello, wide world!" || partial {
			t.Fatalf("Text = %q, %v", text, partial)
		}
	}
}

func TestAssemblyDuplicates(t *testing.T) {
	var a Assembly
	ps := parts(7, "a", "b")
	if c, err := a.Add(ps[0]); c || err != nil {
		t.Fatal(c, err)
	}
	dup := ps[0]
	dup.Text = "changed"
	if c, err := a.Add(dup); c || err != nil {
		t.Fatalf("duplicate: %v, %v", c, err)
	}
	if c, err := a.Add(ps[1]); !c || err != nil {
		t.Fatal(c, err)
	}
	if c, err := a.Add(ps[1]); !c || err != nil {
		t.Fatalf("duplicate after completion: %v, %v", c, err)
	}
	if text, partial := a.Text(); text != "ab" || partial {
		t.Fatalf("Text = %q, %v", text, partial)
	}
}

func TestAssemblyPartial(t *testing.T) {
	var a Assembly
	if text, partial := a.Text(); text != "" || !partial || a.Complete() || a.Missing() != nil {
		t.Fatalf("empty assembly: %q %v", text, partial)
	}
	ps := parts(1, "one ", "two ", "three ", "four")
	for _, k := range []int{0, 3} {
		if _, err := a.Add(ps[k]); err != nil {
			t.Fatal(err)
		}
	}
	text, partial := a.Text()
	if text != "one "+MissingPartMarker+MissingPartMarker+"four" || !partial {
		t.Fatalf("Text = %q, %v", text, partial)
	}
	if m := a.Missing(); !reflect.DeepEqual(m, []int{2, 3}) {
		t.Fatalf("Missing = %v", m)
	}
}

func TestAssemblyErrors(t *testing.T) {
	var a Assembly
	bad := []IncomingPart{
		{Ref: 1, Total: 0, Seq: 0},
		{Ref: 1, Total: 2, Seq: 0},
		{Ref: 1, Total: 2, Seq: 3},
		{Ref: 1, Total: 256, Seq: 1},
		{Ref: 1, Total: -1, Seq: -1},
	}
	for _, p := range bad {
		if _, err := a.Add(p); !errors.Is(err, ErrInvalidPart) {
			t.Errorf("Add(%+v) = %v", p, err)
		}
	}
	if a.Total != 0 || a.Parts != nil {
		t.Fatalf("invalid parts changed the assembly: %+v", a)
	}
	if _, err := a.Add(IncomingPart{Ref: 1, Total: 3, Seq: 1, Text: "x"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []IncomingPart{{Ref: 2, Total: 3, Seq: 2}, {Ref: 1, Total: 4, Seq: 2}} {
		if _, err := a.Add(p); !errors.Is(err, ErrPartMismatch) {
			t.Errorf("Add(%+v) = %v", p, err)
		}
	}
	if len(a.Parts) != 1 {
		t.Fatalf("mismatched parts were kept: %+v", a.Parts)
	}
}

func TestAssemblyJSON(t *testing.T) {
	ps := parts(0xABCD, "α", "β", "γ")
	var a Assembly
	if _, err := a.Add(ps[2]); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Add(ps[0]); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(&a)
	if err != nil {
		t.Fatal(err)
	}
	var back Assembly
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, a) {
		t.Fatalf("JSON round trip %s gave %+v", b, back)
	}
	complete, err := back.Add(ps[1])
	if err != nil || !complete {
		t.Fatalf("Add after JSON: %v, %v", complete, err)
	}
	if text, partial := back.Text(); text != "αβγ" || partial {
		t.Fatalf("Text = %q, %v", text, partial)
	}
}

// A split message, decoded part by part and gathered in reverse, gives the
// text back.
func TestSplitDecodeAssemble(t *testing.T) {
	for _, mode := range []ConcatMode{ConcatUDH8, ConcatUDH16} {
		text := randomText(rand.New(rand.NewPCG(31, uint64(mode))), 500)
		p, err := Split(text, Options{Concat: mode}, 0x0102)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Parts) < 2 {
			t.Fatalf("%d parts", len(p.Parts))
		}
		var a Assembly
		for i := len(p.Parts) - 1; i >= 0; i-- {
			part := p.Parts[i]
			s, udh, err := DecodePayload(p.DataCoding, part.ESMClass, part.Payload)
			if err != nil {
				t.Fatal(err)
			}
			c := udh.Concat
			if _, err := a.Add(IncomingPart{Ref: c.Ref, Total: c.Total, Seq: c.Seq, Text: s}); err != nil {
				t.Fatal(err)
			}
		}
		got, partial := a.Text()
		if got != p.Text || partial {
			t.Fatalf("%v: reassembled %q, want %q", mode, got, p.Text)
		}
	}
}
