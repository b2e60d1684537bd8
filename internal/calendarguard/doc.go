// Package calendarguard holds a test that keeps the repository's tests
// independent of today's date.
//
// A test that builds data with a fixed date (time.Date(2026, ...)) and hands
// it to code that compares it with the real clock (time.Now, time.Since,
// time.Until, a Now field defaulting to time.Now, TTLs, expiries, TTL
// indexes, NOW() in SQL) passes until the calendar passes that date, and then
// fails every time. The test in this package walks the repository's test
// files and fails on a fixed date in a test of a package whose non-test code
// reads the real clock, unless the line, or the line directly above it, says
// why the date never meets the clock:
//
//	// fixed date: ParseSMPPTime takes now as an argument
//	now := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
//
// Otherwise inject a clock into the code under test (a Now func() time.Time
// field or a WithClock option) or derive the date from the real clock
// (time.Now().UTC().Truncate(time.Second)).
package calendarguard
