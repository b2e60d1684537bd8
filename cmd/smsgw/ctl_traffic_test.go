package main

import (
	"testing"
	"time"
)

func TestCtlTrafficTimes(t *testing.T) {
	now := time.Date(2026, 12, 2, 23, 30, 0, 0, time.UTC) // fixed date: searchTime and usageDays take now as an argument
	for _, tc := range []struct{ in, want string }{
		{"", ""}, {"2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z"}, {"24h", "2026-12-01T23:30:00Z"}, {"90m", "2026-12-02T22:00:00Z"},
	} {
		if got, err := searchTime("since", tc.in, now); err != nil || got != tc.want {
			t.Errorf("searchTime(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"yesterday", "-1h", "2026-12-01"} {
		if _, err := searchTime("since", bad, now); err == nil {
			t.Errorf("searchTime(%q): no error", bad)
		}
	}

	// Days default around today in the report's zone: in Auckland it is
	// already 3 December.
	if from, to, err := usageDays("", "", "Pacific/Auckland", now); err != nil || from != "2026-11-03" || to != "2026-12-04" {
		t.Errorf("usageDays in Auckland = %s, %s, %v", from, to, err)
	}
	if from, to, err := usageDays("2026-01-01", "2026-02-01", "UTC", now); err != nil || from != "2026-01-01" || to != "2026-02-01" {
		t.Errorf("usageDays given = %s, %s, %v", from, to, err)
	}
	if _, _, err := usageDays("", "", "Mars/Olympus", now); err == nil {
		t.Error("usageDays in no zone: no error")
	}
}
