package segment_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/smsgw/smsgw/segment"
)

func ExampleCount() {
	for _, text := range []string{"Hello", "Price: 5€", strings.Repeat("a", 161), "Привет", "ok 👍", "It’s fine"} {
		c, _ := segment.Count(text, segment.Options{})
		fmt.Printf("%s %d units, %d segment(s), %d remaining\n", c.Encoding, c.UnitsUsed, c.Segments, c.Remaining)
	}
	c, _ := segment.Count("It’s fine", segment.Options{Transliterate: true})
	fmt.Printf("transliterated: %s %d units\n", c.Encoding, c.UnitsUsed)
	_, err := segment.Count(strings.Repeat("a", 1531), segment.Options{})
	fmt.Println(errors.Is(err, segment.ErrTooManySegments), err)
	// Output:
	// GSM7 5 units, 1 segment(s), 155 remaining
	// GSM7 10 units, 1 segment(s), 150 remaining
	// GSM7 161 units, 2 segment(s), 145 remaining
	// UCS2 6 units, 1 segment(s), 64 remaining
	// UCS2 5 units, 1 segment(s), 65 remaining
	// UCS2 9 units, 1 segment(s), 61 remaining
	// transliterated: GSM7 9 units
	// true too many segments: the text needs 11 segments, at most 10 are allowed
}

func ExampleSplit() {
	plan, err := segment.Split(strings.Repeat("a", 160)+"bc", segment.Options{}, 0x2A)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(plan.Encoding, plan.DataCoding, len(plan.Parts))
	last := plan.Parts[1]
	fmt.Printf("esm_class %#x short_message % X\n", last.ESMClass, last.Payload)
	// Output:
	// GSM7 0 2
	// esm_class 0x40 short_message 05 00 03 2A 02 02 61 61 61 61 61 61 61 62 63
}

func ExampleDecodePayload() {
	text, udh, err := segment.DecodePayload(0x08, 0x40, []byte{0x05, 0x00, 0x03, 0x07, 0x02, 0x01, 0xD8, 0x3D, 0xDE, 0x00})
	fmt.Printf("%q %+v %v\n", text, *udh.Concat, err)
	// Output:
	// "😀" {Ref:7 Total:2 Seq:1 SixteenBit:false} <nil>
}
