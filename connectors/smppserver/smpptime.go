package smppserver

import (
	"errors"
	"fmt"
	"time"
)

// ErrBadTime is wrapped by every error of ParseTime.
var ErrBadTime = errors.New("invalid SMPP time")

// ParseTime reads an SMPP time (SMPP 3.4 §7.1.1), as schedule_delivery_time
// and validity_period carry it: 16 characters "YYMMDDhhmmsstnnp".
//
//   - p '+' or '-': an absolute time, local to an offset of nn quarter hours
//     ahead of ('+') or behind ('-') UTC; t is tenths of a second.
//   - p 'R': a time relative to now: YY years, MM months, DD days, hh hours,
//     mm minutes and ss seconds from now (t and nn are ignored).
//
// An empty string gives the zero time and no error: the field is not set.
// Years are 2000 + YY.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if len(s) != 16 {
		return time.Time{}, fmt.Errorf("%w %q: %d characters, want 16", ErrBadTime, s, len(s))
	}
	var f [8]int // YY MM DD hh mm ss t nn
	pos := []int{0, 2, 4, 6, 8, 10, 12, 13, 15}
	for i := range f {
		for _, c := range []byte(s[pos[i]:pos[i+1]]) {
			if c < '0' || c > '9' {
				return time.Time{}, fmt.Errorf("%w %q: %q is not a digit", ErrBadTime, s, c)
			}
			f[i] = f[i]*10 + int(c-'0')
		}
	}
	yy, mo, dd, hh, mi, ss, tenths, nn := f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]
	switch s[15] {
	case 'R':
		// Every two-digit value is a valid offset: "000000990000000R" is 99 hours.
		d := time.Duration(hh)*time.Hour + time.Duration(mi)*time.Minute + time.Duration(ss)*time.Second
		return now.AddDate(yy, mo, dd).Add(d), nil
	case '+', '-':
		switch {
		case mo < 1 || mo > 12:
			return time.Time{}, fmt.Errorf("%w %q: month %d", ErrBadTime, s, mo)
		case dd < 1 || dd > daysIn(2000+yy, mo):
			return time.Time{}, fmt.Errorf("%w %q: day %d", ErrBadTime, s, dd)
		case hh > 23 || mi > 59 || ss > 59:
			return time.Time{}, fmt.Errorf("%w %q: time of day %02d:%02d:%02d", ErrBadTime, s, hh, mi, ss)
		case nn > 48:
			return time.Time{}, fmt.Errorf("%w %q: UTC offset of %d quarter hours", ErrBadTime, s, nn)
		}
		offset := time.Duration(nn) * 15 * time.Minute
		if s[15] == '-' {
			offset = -offset
		}
		local := time.Date(2000+yy, time.Month(mo), dd, hh, mi, ss, tenths*int(100*time.Millisecond), time.UTC)
		return local.Add(-offset), nil
	}
	return time.Time{}, fmt.Errorf("%w %q: the last character must be '+', '-' or 'R'", ErrBadTime, s)
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// FormatTime writes t as an absolute SMPP time in UTC: "YYMMDDhhmmsst00+".
func FormatTime(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%02d%02d%02d%02d%02d%02d%d00+", t.Year()%100, int(t.Month()), t.Day(),
		t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/int(100*time.Millisecond))
}

// ErrBadValidity is wrapped by Validity's errors other than ErrBadTime.
var ErrBadValidity = errors.New("invalid validity period")

// Validity returns how long a message submitted now stays valid, from a
// validity_period: 0 for an empty one (the customer's default applies),
// at most max. A time that is not after now is an error wrapping
// ErrBadValidity; an unreadable one wraps ErrBadTime.
func Validity(s string, now time.Time, max time.Duration) (time.Duration, error) {
	t, err := ParseTime(s, now)
	if err != nil || t.IsZero() {
		return 0, err
	}
	d := t.Sub(now)
	if d < time.Second {
		return 0, fmt.Errorf("%w: %q ends %s before it starts", ErrBadValidity, s, -d)
	}
	return min(d, max).Round(time.Second), nil
}
