package smsgw

import (
	"fmt"
	"testing"
)

func TestMicrosRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		in     string
		micros int64
		out    string
	}{
		{"0.065", 65_000, "0.065"},
		{"12", 12_000_000, "12.00"},
		{"-3.5", -3_500_000, "-3.50"},
		{"0.000001", 1, "0.000001"},
	} {
		v, err := ParseMicros(tc.in)
		if err != nil || v != tc.micros {
			t.Errorf("ParseMicros(%q) = %d, %v; want %d", tc.in, v, err, tc.micros)
		}
		if got := FormatMicros(v); got != tc.out {
			t.Errorf("FormatMicros(%d) = %q, want %q", v, got, tc.out)
		}
	}
	for _, bad := range []string{"", "1.2345678", "1e3", "abc", ".5", "1.", "0x10"} {
		if _, err := ParseMicros(bad); err == nil {
			t.Errorf("ParseMicros(%q): want an error", bad)
		}
	}
}

func TestMovementCrossesThresholdsOnce(t *testing.T) {
	thresholds := []int64{10_000_000, 2_500_000}
	for _, tc := range []struct {
		before, after int64
		want          []int64
	}{
		{12_000_000, 9_000_000, []int64{10_000_000}},
		{10_000_000, 9_999_999, []int64{10_000_000}}, // from exactly at the threshold
		{9_000_000, 8_000_000, nil},                  // already below: told before
		{11_000_000, 1_000_000, []int64{10_000_000, 2_500_000}},
		{1_000_000, 12_000_000, nil}, // a top-up crosses upwards
	} {
		got := Movement{Before: tc.before, After: tc.after}.Crossed(thresholds)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%d -> %d crossed %v, want %v", tc.before, tc.after, got, tc.want)
		}
	}
}
