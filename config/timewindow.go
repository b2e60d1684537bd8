package config

import (
	"fmt"
	"strings"
	"time"
)

// Window is a compiled TimeWindow.
type Window struct {
	loc      *time.Location
	days     [7]bool
	from, to int // minutes after midnight
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Compile checks the window and returns it ready to test times against.
func (w TimeWindow) Compile() (*Window, error) {
	tz := w.Timezone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("unknown timezone %q", w.Timezone)
	}
	c := &Window{loc: loc}
	if len(w.Days) == 0 {
		c.days = [7]bool{true, true, true, true, true, true, true}
	}
	for _, d := range w.Days {
		wd, ok := weekdays[strings.ToLower(d)]
		if !ok {
			return nil, fmt.Errorf("unknown day %q (use mon, tue, wed, thu, fri, sat, sun)", d)
		}
		c.days[wd] = true
	}
	if c.from, err = minutes(w.From, 0); err != nil {
		return nil, err
	}
	if c.to, err = minutes(w.To, 24*60); err != nil {
		return nil, err
	}
	if c.from == c.to {
		return nil, fmt.Errorf("from and to are the same time")
	}
	return c, nil
}

func minutes(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("time %q must be HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Contains reports whether t falls in the window. A window whose To is
// before its From runs past midnight and belongs to the day it starts.
func (w *Window) Contains(t time.Time) bool {
	t = t.In(w.loc)
	m := t.Hour()*60 + t.Minute()
	if w.from < w.to {
		return w.days[t.Weekday()] && m >= w.from && m < w.to
	}
	if m >= w.from {
		return w.days[t.Weekday()]
	}
	return m < w.to && w.days[(t.Weekday()+6)%7]
}
