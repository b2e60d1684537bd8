package smppserver_test

import (
	"errors"
	"testing"
	"time"

	"github.com/smsgw/smsgw/connectors/smppserver"
)

func TestParseTime(t *testing.T) {
	// fixed date: ParseTime takes now as an argument and never reads the clock
	now := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"261126140358000+", time.Date(2026, 11, 26, 14, 3, 58, 0, time.UTC)},     // fixed date: absolute time, no clock involved
		{"261126140358500+", time.Date(2026, 11, 26, 14, 3, 58, 500e6, time.UTC)}, // fixed date: absolute time, no clock involved
		{"261127000000048+", time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)},      // fixed date: absolute time, UTC+12:00, no clock involved
		{"261126100000016-", time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)},      // fixed date: absolute time, UTC-04:00, no clock involved
		{"270101000000001+", time.Date(2026, 12, 31, 23, 45, 0, 0, time.UTC)},     // fixed date: absolute time, no clock involved
		{"280229120000000+", time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC)},       // fixed date: absolute time, no clock involved
		{"000000000130000R", now.Add(90 * time.Second)},
		{"000002030000000R", now.Add(51 * time.Hour)},
		{"010100000000000R", time.Date(2027, 12, 26, 14, 0, 0, 0, time.UTC)}, // fixed date: relative to the now above
		{"000000990000000R", now.Add(99 * time.Hour)},
	} {
		got, err := smppserver.ParseTime(c.in, now)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{
		"261126140358000",   // 15 characters
		"2611261403580000+", // 17
		"261126140358000X",  // no sign
		"26112614035800a+",  // not a digit
		"261326140358000+",  // month 13
		"261100140358000+",  // day 0
		"270229120000000+",  // 29 February 2027
		"261126240000000+",  // hour 24
		"261126146000000+",  // minute 60
		"261126140060000+",  // second 60
		"261126140000049+",  // offset beyond 12 hours
		"-00000000000000R",
	} {
		if _, err := smppserver.ParseTime(bad, now); !errors.Is(err, smppserver.ErrBadTime) {
			t.Errorf("ParseTime(%q): %v, want ErrBadTime", bad, err)
		}
	}
}

func TestValidity(t *testing.T) {
	// fixed date: Validity takes now as an argument and never reads the clock
	now := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	max := 7 * 24 * time.Hour
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"000001000000000R", 24 * time.Hour},
		{"261126150000000+", time.Hour},
		{"000100000000000R", max}, // a month is more than allowed: capped
	} {
		got, err := smppserver.Validity(c.in, now, max)
		if err != nil || got != c.want {
			t.Errorf("Validity(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"261126130000000+", "261126140000000+", "000000000000000R"} {
		if _, err := smppserver.Validity(bad, now, max); !errors.Is(err, smppserver.ErrBadValidity) {
			t.Errorf("Validity(%q): %v, want ErrBadValidity", bad, err)
		}
	}
}

func TestFormatTimeRoundTrips(t *testing.T) {
	// fixed date: FormatTime and ParseTime of an absolute time; nothing reads the clock
	at := time.Date(2031, 7, 4, 9, 8, 7, 300e6, time.UTC)
	s := smppserver.FormatTime(at)
	if s != "310704090807300+" {
		t.Fatalf("FormatTime = %q", s)
	}
	back, err := smppserver.ParseTime(s, time.Time{})
	if err != nil || !back.Equal(at) {
		t.Fatalf("ParseTime(FormatTime) = %v, %v", back, err)
	}
}

// FuzzParseTime checks the parser never panics, and that every absolute
// time it reads is written back the same by FormatTime.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"", "261126140358000+", "261127000000048+", "261126100000016-", "000002030000000R", "99999999999999R", "0000000000000000"} {
		f.Add(s)
	}
	// fixed date: ParseTime takes now as an argument and never reads the clock
	now := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := smppserver.ParseTime(s, now)
		if err != nil {
			if !errors.Is(err, smppserver.ErrBadTime) {
				t.Fatalf("error %v does not wrap ErrBadTime", err)
			}
			return
		}
		if s == "" {
			if !got.IsZero() {
				t.Fatalf("empty time read as %v", got)
			}
			return
		}
		if s[15] == 'R' {
			if got.Before(now) {
				t.Fatalf("relative time %q is before now: %v", s, got)
			}
			return
		}
		if got.Year() < 2000 || got.Year() > 2099 {
			return // an offset moved it out of the century two digits name
		}
		back, err := smppserver.ParseTime(smppserver.FormatTime(got), now)
		if err != nil || !back.Equal(got) {
			t.Fatalf("%q: %v formats as %q, which reads %v, %v", s, got, smppserver.FormatTime(got), back, err)
		}
	})
}
