// Package schedule is an environment's off-hours schedule: weekly windows
// in an IANA time zone, plus holidays, during which the environment is
// stopped. Windows are kept in local wall-clock time, so daylight-saving
// changes move them with the clock, as people expect: "20:00-07:00" stops
// at 20:00 local time on either side of a transition. Pure logic: the
// manager decides what to stop and start from Off and Next.
package schedule

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrSchedule is a schedule that cannot be read; it says which part.
var ErrSchedule = errors.New("schedule")

// Schedule says when an environment is off. The zero value is never off.
// A Schedule is immutable and safe for concurrent use.
type Schedule struct {
	windows  []window
	loc      *time.Location
	holidays map[civil]bool
	src      string
}

// window is one "DAYS [HH:MM-HH:MM]" item: on each listed day, off from
// from to to (minutes from local midnight); a to at or before from runs
// into the next day; no times: the whole day.
type window struct {
	days     [7]bool // by time.Weekday
	from, to int
	allDay   bool
}

type civil struct {
	y int
	m time.Month
	d int
}

var dayNames = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// Parse reads a schedule: off is a comma-separated list of "DAYS" or
// "DAYS HH:MM-HH:MM" (days "Mon", "Mon-Fri", "Fri-Mon"; times 24-hour;
// "20:00-07:00" runs past midnight into the next day), tz an IANA zone
// ("America/Chicago"; empty is UTC), holidays whole local days off
// ("2026-12-25").
func Parse(off, tz string, holidays []string) (*Schedule, error) {
	s := &Schedule{loc: time.UTC, holidays: map[civil]bool{}, src: off}
	if tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil || tz == "Local" {
			return nil, fmt.Errorf("%w: tz %q is not an IANA time zone (such as America/Chicago)", ErrSchedule, tz)
		}
		s.loc = loc
	}
	if strings.TrimSpace(off) == "" && len(holidays) == 0 {
		return nil, fmt.Errorf("%w: off is empty (such as \"Mon-Fri 20:00-07:00, Sat-Sun\")", ErrSchedule)
	}
	for item := range strings.SplitSeq(off, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			if strings.TrimSpace(off) == "" {
				break
			}
			return nil, fmt.Errorf("%w: an empty item in %q", ErrSchedule, off)
		}
		w, err := parseWindow(item)
		if err != nil {
			return nil, err
		}
		s.windows = append(s.windows, w)
	}
	for _, h := range holidays {
		d, err := time.Parse("2006-01-02", strings.TrimSpace(h))
		if err != nil {
			return nil, fmt.Errorf("%w: holiday %q is not a date (YYYY-MM-DD)", ErrSchedule, h)
		}
		s.holidays[civil{d.Year(), d.Month(), d.Day()}] = true
	}
	return s, nil
}

func parseWindow(item string) (window, error) {
	var w window
	bad := func(f string, a ...any) (window, error) {
		return w, fmt.Errorf("%w: %q: %s", ErrSchedule, item, fmt.Sprintf(f, a...))
	}
	daysPart, timesPart, hasTimes := strings.Cut(item, " ")
	timesPart = strings.TrimSpace(timesPart)
	first, last, isRange := strings.Cut(daysPart, "-")
	a, ok1 := dayNames[strings.ToLower(first)]
	b, ok2 := a, true
	if isRange {
		b, ok2 = dayNames[strings.ToLower(last)]
	}
	if !ok1 || !ok2 {
		return bad("days are Mon, Tue, Wed, Thu, Fri, Sat, Sun or a range such as Mon-Fri")
	}
	for d := a; ; d = (d + 1) % 7 {
		w.days[d] = true
		if d == b {
			break
		}
	}
	if !hasTimes || timesPart == "" {
		w.allDay = true
		return w, nil
	}
	from, to, ok := strings.Cut(timesPart, "-")
	if !ok {
		return bad("times are HH:MM-HH:MM")
	}
	var err error
	if w.from, err = clock(from); err != nil {
		return bad("%v", err)
	}
	if w.to, err = clock(to); err != nil {
		return bad("%v", err)
	}
	if w.from == w.to {
		return bad("the window is empty (from equals to); a whole day is written without times")
	}
	return w, nil
}

// clock reads HH:MM (00:00 to 24:00) as minutes from midnight.
func clock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || len(h) == 0 || len(h) > 2 || len(m) != 2 {
		return 0, fmt.Errorf("time %q is not HH:MM", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || hh == 24 && mm != 0 {
		return 0, fmt.Errorf("time %q is not a time of day", s)
	}
	return hh*60 + mm, nil
}

// String is the schedule as written, with its zone.
func (s *Schedule) String() string {
	if s == nil {
		return ""
	}
	return s.src + " (" + s.loc.String() + ")"
}

// Location is the schedule's time zone.
func (s *Schedule) Location() *time.Location { return s.loc }

// Off reports whether t falls in an off window or on a holiday.
func (s *Schedule) Off(t time.Time) bool {
	if s == nil {
		return false
	}
	lt := t.In(s.loc)
	y, mo, d := lt.Date()
	if s.holidays[civil{y, mo, d}] {
		return true
	}
	wd := lt.Weekday()
	prev := (wd + 6) % 7
	m := lt.Hour()*60 + lt.Minute()
	for _, w := range s.windows {
		switch {
		case w.allDay:
			if w.days[wd] {
				return true
			}
		case w.from < w.to:
			if w.days[wd] && m >= w.from && m < w.to {
				return true
			}
		default: // runs past midnight
			if w.days[wd] && m >= w.from || w.days[prev] && m < w.to {
				return true
			}
		}
	}
	return false
}

// maxHorizon bounds Next's search: a schedule off (or on) for longer has
// no transition worth waiting for.
const maxHorizon = 400

// Next is the first instant after t at which Off changes, and whether
// there is one within 400 days. Off changes only where the local clock
// reaches a window's edge or midnight, or jumps (a zone transition): those
// instants are the candidates, each local time taken at every offset the
// zone has that day, so that a time in the repeated hour of a fall-back
// day counts twice and one in a spring-forward gap starts when the clock
// jumps past it.
func (s *Schedule) Next(t time.Time) (time.Time, bool) {
	if s == nil {
		return time.Time{}, false
	}
	cur := s.Off(t)
	edges := []int{0}
	for _, w := range s.windows {
		if !w.allDay {
			edges = append(edges, w.from, w.to)
		}
	}
	lt := t.In(s.loc)
	y, mo, d := lt.Date()
	type period struct {
		start, end time.Time
		offset     time.Duration
	}
	var cands []time.Time
	var periods []period
	for i := 0; i <= maxHorizon; i++ {
		dayStart := time.Date(y, mo, d+i, 0, 0, 0, 0, s.loc)
		// The zone's periods around the day, and its transitions in it.
		periods = periods[:0]
		cands = cands[:0]
		for at := dayStart.Add(-30 * time.Hour); at.Before(dayStart.Add(54 * time.Hour)); {
			_, off := at.Zone()
			start, end := at.ZoneBounds()
			periods = append(periods, period{start, end, time.Duration(off) * time.Second})
			if end.IsZero() {
				break
			}
			cands = append(cands, end)
			at = end
		}
		for _, e := range edges {
			wall := time.Date(y, mo, d+i, e/60, e%60, 0, 0, time.UTC)
			for _, p := range periods {
				inst := wall.Add(-p.offset)
				if !inst.Before(p.start) && (p.end.IsZero() || inst.Before(p.end)) {
					cands = append(cands, inst)
				}
			}
		}
		slices.SortFunc(cands, func(a, b time.Time) int { return a.Compare(b) })
		nextDay := time.Date(y, mo, d+i+1, 0, 0, 0, 0, s.loc)
		for _, c := range cands {
			// This day's candidates only: a later day's are its own, in order.
			if c.After(t) && !c.Before(dayStart) && c.Before(nextDay) && s.Off(c) != cur {
				return c, true
			}
		}
	}
	return time.Time{}, false
}
