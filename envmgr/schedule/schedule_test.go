package schedule

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func mustParse(t testing.TB, off, tz string, holidays ...string) *Schedule {
	t.Helper()
	s, err := Parse(off, tz, holidays)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func at(t testing.TB, loc, s string) time.Time {
	t.Helper()
	l, err := time.LoadLocation(loc)
	if err != nil {
		t.Fatal(err)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04", s, l)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOffWindows: weekday evenings into the next morning, weekends, and
// holidays, in the schedule's zone.
func TestOffWindows(t *testing.T) {
	const tz = "America/Chicago"
	s := mustParse(t, "Mon-Fri 20:00-07:00, Sat-Sun", tz, "2026-12-25")
	for _, tc := range []struct {
		when string
		off  bool
	}{
		{"2026-12-07 12:00", false}, // Monday noon
		{"2026-12-07 19:59", false},
		{"2026-12-07 20:00", true}, // Monday evening
		{"2026-12-08 06:59", true}, // into Tuesday morning
		{"2026-12-08 07:00", false},
		{"2026-12-11 23:00", true},  // Friday night
		{"2026-12-12 10:00", true},  // Saturday
		{"2026-12-13 23:59", true},  // Sunday
		{"2026-12-14 06:00", false}, // Monday early: Sunday's whole day ended at midnight; no window from Sunday evening
		{"2026-12-25 12:00", true},  // a holiday (a Friday)
		{"2026-12-24 12:00", false},
	} {
		if got := s.Off(at(t, tz, tc.when)); got != tc.off {
			t.Errorf("%s: off %v, want %v", tc.when, got, tc.off)
		}
	}
	// The same instant in UTC is judged in the schedule's zone.
	if !s.Off(time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)) { // Mon 21:00 in Chicago
		t.Error("Monday 21:00 Chicago, given in UTC, is not off")
	}
	var zero *Schedule
	if zero.Off(time.Now()) {
		t.Error("no schedule is off")
	}
}

// TestNextAcrossDaylightSaving: windows stay on the local clock across
// both transitions, and Next lands on the instants the clock shows them.
func TestNextAcrossDaylightSaving(t *testing.T) {
	const tz = "America/New_York"
	loc, _ := time.LoadLocation(tz)
	s := mustParse(t, "Mon-Sun 20:00-07:00", tz)
	for _, tc := range []struct{ from, want string }{
		// Spring forward (2026-03-08, 02:00 -> 03:00): the night still ends
		// at 07:00 local, which is 11:00 UTC, not 12:00.
		{"2026-03-08 01:00", "2026-03-08 07:00"},
		{"2026-03-08 07:00", "2026-03-08 20:00"},
		// Fall back (2026-11-01, 02:00 -> 01:00).
		{"2026-11-01 01:30", "2026-11-01 07:00"},
		{"2026-10-31 12:00", "2026-10-31 20:00"},
	} {
		from := at(t, tz, tc.from)
		got, ok := s.Next(from)
		want := at(t, tz, tc.want)
		if !ok || !got.Equal(want) {
			t.Errorf("Next(%s) = %s %v, want %s", tc.from, got.In(loc), ok, want.In(loc))
		}
	}
	// A night over the spring-forward day is 10 hours of clock but 9 of time.
	start, _ := s.Next(at(t, tz, "2026-03-07 12:00"))
	end, _ := s.Next(start)
	if d := end.Sub(start); d != 10*time.Hour { // 20:00 EST Sat -> 07:00 EDT Sun: 10 h
		t.Errorf("the night across spring forward lasts %v", d)
	}
	start, _ = s.Next(at(t, tz, "2026-10-31 12:00"))
	end, _ = s.Next(start)
	if d := end.Sub(start); d != 12*time.Hour { // 20:00 EDT Sat -> 07:00 EST Sun: 12 h
		t.Errorf("the night across fall back lasts %v", d)
	}
}

// TestWindowInTheDaylightSavingGapAndRepeat: a window starting at 02:30
// on the spring-forward day starts when the clock jumps to 03:00; one
// starting in the repeated hour of the fall-back day starts at its first
// occurrence.
func TestWindowInTheDaylightSavingGapAndRepeat(t *testing.T) {
	const tz = "America/New_York"
	s := mustParse(t, "Sun 02:30-04:00", tz)
	got, ok := s.Next(at(t, tz, "2026-03-08 00:00"))
	jump := time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC) // 02:00 EST = 03:00 EDT
	if !ok || !got.Equal(jump) {
		t.Errorf("spring forward: next %s, want the jump at %s", got.UTC(), jump)
	}
	s = mustParse(t, "Sun 01:30-01:45", tz)
	first := time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC) // 01:30 EDT
	got, ok = s.Next(time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC))
	if !ok || !got.Equal(first) {
		t.Errorf("fall back: next %s, want %s", got.UTC(), first)
	}
	// After its first occurrence ends, the repeated 01:30 EST starts it again.
	end, _ := s.Next(first)
	again, ok := s.Next(end)
	if want := time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC); !ok || !again.Equal(want) {
		t.Errorf("fall back, the repeated hour: next %s, want %s", again.UTC(), want)
	}
}

// TestNextSkipsHolidaysAndWeekends: Friday evening's stop lasts until
// Monday morning, and through a Monday holiday to Tuesday.
func TestNextSkipsHolidaysAndWeekends(t *testing.T) {
	const tz = "Europe/London"
	s := mustParse(t, "Mon-Fri 18:00-08:00, Sat-Sun", tz, "2026-12-28")
	got, ok := s.Next(at(t, tz, "2026-12-25 19:00")) // Friday evening
	if want := at(t, tz, "2026-12-29 08:00"); !ok || !got.Equal(want) {
		t.Errorf("next after Friday evening: %s, want Tuesday 08:00 %s", got, want)
	}
	s = mustParse(t, "", tz, "2026-12-28")
	if got, ok := s.Next(at(t, tz, "2026-12-28 10:00")); !ok || !got.Equal(at(t, tz, "2026-12-29 00:00")) {
		t.Errorf("a holiday ends at midnight: %s %v", got, ok)
	}
	always := mustParse(t, "Mon-Sun", tz)
	if _, ok := always.Next(at(t, tz, "2026-12-28 10:00")); ok {
		t.Error("a schedule always off has no next change")
	}
}

// TestNextIsExact: over a year of instants, Off is constant up to Next
// and changes at it.
func TestNextIsExact(t *testing.T) {
	for _, tz := range []string{"America/Chicago", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"} {
		s := mustParse(t, "Mon-Fri 19:30-06:15, Sat 00:00-12:00, Sun", tz, "2026-04-03")
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for at.Before(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
			next, ok := s.Next(at)
			if !ok {
				t.Fatalf("%s: no next after %s", tz, at)
			}
			cur := s.Off(at)
			for probe := at; probe.Before(next); probe = probe.Add(7 * time.Minute) {
				if s.Off(probe) != cur {
					t.Fatalf("%s: off changed at %s, before Next %s (from %s)", tz, probe, next, at)
				}
			}
			if s.Off(next) == cur || s.Off(next.Add(-time.Nanosecond)) != cur {
				t.Fatalf("%s: Off does not change at Next %s", tz, next)
			}
			at = next
		}
	}
}

func TestParseRefusesWhatItCannotRead(t *testing.T) {
	for _, tc := range []struct{ off, tz string }{
		{"Mon-Fri 20:00", ""},
		{"Mon-Fry 20:00-07:00", ""},
		{"Mon 25:00-07:00", ""},
		{"Mon 20:00-20:00", ""},
		{"Mon 20:60-21:00", ""},
		{"Mon,,Tue", ""},
		{"", ""},
		{"Mon", "Mars/Olympus"},
		{"Mon", "Local"},
	} {
		if _, err := Parse(tc.off, tc.tz, nil); !errors.Is(err, ErrSchedule) {
			t.Errorf("Parse(%q, %q): %v", tc.off, tc.tz, err)
		}
	}
	if _, err := Parse("Mon", "UTC", []string{"2026-13-01"}); !errors.Is(err, ErrSchedule) {
		t.Errorf("a bad holiday: %v", err)
	}
	if _, err := Parse("Fri-Mon 22:00-24:00", "UTC", nil); err != nil {
		t.Errorf("a wrapping day range to midnight: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"Mon-Fri 20:00-07:00, Sat-Sun", "Sun 02:30-04:00", "Fri-Mon", "Mon 24:00-01:00", "x", ""} {
		f.Add(s, "America/Chicago", "2026-12-25")
	}
	f.Fuzz(func(t *testing.T, off, tz, holiday string) {
		s, err := Parse(off, tz, []string{holiday})
		if err != nil {
			if !errors.Is(err, ErrSchedule) {
				t.Fatalf("an error that is not ErrSchedule: %v", err)
			}
			return
		}
		now := time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC)
		if next, ok := s.Next(now); ok && (!next.After(now) || s.Off(next) == s.Off(now)) {
			t.Fatalf("%q: Next %s does not change Off", off, next)
		}
	})
}

// BenchmarkSchedulePass decides for 10,000 environments, each with its
// own schedule, whether it is off now and when that changes: a scheduler
// pass (target < 100 ms).
func BenchmarkSchedulePass(b *testing.B) {
	zones := []string{"America/Chicago", "America/New_York", "Europe/London", "Asia/Tokyo", "UTC"}
	var ss []*Schedule
	for i := range 10_000 {
		ss = append(ss, mustParse(b, fmt.Sprintf("Mon-Fri %02d:00-07:00, Sat-Sun", 17+i%6), zones[i%len(zones)], "2026-12-25"))
	}
	now := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		off := 0
		for _, s := range ss {
			if s.Off(now) {
				off++
			}
			if _, ok := s.Next(now); !ok {
				b.Fatal("no next")
			}
		}
		_ = off
	}
}
