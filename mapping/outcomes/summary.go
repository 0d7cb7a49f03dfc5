package outcomes

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"infusion/mapping"
)

// Record is everything about one patient that the summaries of the
// patient's courses need, as the store reads it: the courses, and the
// patient's pain scores, side effects, findings and opioid orders.
type Record struct {
	Patient     string // "Patient/id"
	Courses     []Course
	Pain        []Score      // by time
	SideEffects []SideEffect // by time
	Findings    []Finding
	Opioids     []mapping.Order
}

// Course is an infusion order and its sessions (entered-in-error left out),
// by start.
type Course struct {
	Order    mapping.Order
	Sessions []mapping.Administration
}

// Score is one pain score.
type Score struct {
	At             time.Time
	Value          float64
	Administration string // the session it is part of, "" when none
}

// SideEffect is one side effect reported (a denial, valueBoolean false,
// is not one).
type SideEffect struct {
	At             time.Time
	Code           mapping.Coding
	Administration string
}

// Finding is one open protocol finding, by its owner ("Type/id").
type Finding struct {
	Owner string
	Code  string
}

// Options are the parameters of the summaries.
type Options struct {
	// SessionWindow is how long after a session's end a score or side
	// effect still belongs to it (when not partOf it); default 2 h.
	SessionWindow time.Duration
	// MME converts opioid orders to morphine milligram equivalents.
	MME *MMETable
}

// WithDefaults fills in the defaults: a 2 h session window, the embedded
// CDC 2022 MME table.
func (o Options) WithDefaults() (Options, error) {
	if o.SessionWindow <= 0 {
		o.SessionWindow = 2 * time.Hour
	}
	if o.MME == nil {
		t, err := LoadMME("")
		if err != nil {
			return o, err
		}
		o.MME = t
	}
	return o, nil
}

// summaryVersion changes whenever what Summarize makes of a record does,
// including the code lists it consults (mapping.IsSideEffect for the
// reasons a session was stopped): stored summaries of another version are
// made again when the store opens.
const summaryVersion = 2

// Fingerprint identifies what the summaries depend on besides the data:
// the summary's definition, the session window and the MME table. Stored
// summaries made with another fingerprint are made again.
func (o Options) Fingerprint() string {
	table, _ := json.Marshal(o.MME)
	return fmt.Sprintf("v%d:%x", summaryVersion, sha256.Sum256(fmt.Appendf(table, "|%d", o.SessionWindow)))
}

// Summary is what the figures need of one course: everything is known
// when the patient's data is written, except the outcome score, which
// depends on the outcome window asked for and is read with the summary.
type Summary struct {
	Order     string // the order's id
	Class     mapping.DrugClass
	Condition mapping.Coding  // the order's first reason code; zero when none
	Setting   mapping.Setting // the order's, or its first session's that says
	Start     time.Time       // the first session's start, or authoredOn when none

	// The sessions given (completed or stopped), stopped, not done; those
	// stopped for a side effect, and those with one.
	Given, Stopped, NotDone, StoppedForSideEffect, WithSideEffect int
	SideEffects                                                   []CodeCount // sessions with each side effect
	Findings                                                      []CodeCount // open findings about the order or its sessions, by code

	// First is the start of the first session given and Last the latest
	// end of one; both zero when none was given.
	First, Last time.Time
	// Baseline is the last pain score before First, part of no session.
	Baseline *float64
	// Sessions are the sessions given, by start.
	Sessions []SessionScore
	// MMEBefore is the mean daily MME in the 30 days before First, and
	// MMEAfter in days 30–90 after Last; nil when an opioid order there
	// cannot be converted.
	MMEBefore, MMEAfter *float64

	// Outcome is the last pain score in the outcome window after Last
	// (later than SessionWindow after it), part of no session; the store
	// finds it when it reads the summary.
	Outcome *float64
}

// SessionScore is a session given and the pain score after it: the last
// one after its start that belongs to it.
type SessionScore struct {
	Start time.Time
	Score *float64
}

// Summarize returns the summary of each course of a patient.
func Summarize(rec Record, opts Options) []Summary {
	pain := newTimeline(len(rec.Pain), func(i int) (time.Time, string) { return rec.Pain[i].At, rec.Pain[i].Administration })
	sideEffects := newTimeline(len(rec.SideEffects), func(i int) (time.Time, string) {
		return rec.SideEffects[i].At, rec.SideEffects[i].Administration
	})
	out := make([]Summary, 0, len(rec.Courses))
	for _, c := range rec.Courses {
		out = append(out, summarize(rec, c, pain, sideEffects, opts))
	}
	return out
}

func summarize(rec Record, c Course, pain, sideEffects timeline, opts Options) Summary {
	s := Summary{Order: c.Order.ID, Class: c.Order.Drug.Class, Setting: courseSetting(c), Start: courseStart(c)}
	for _, ind := range c.Order.Indications {
		if ind.Code != "" {
			s.Condition = ind
			break
		}
	}
	owners := map[string]bool{"MedicationRequest/" + c.Order.ID: true}
	var sessions []mapping.Administration
	for _, a := range c.Sessions {
		owners["MedicationAdministration/"+a.ID] = true
		switch {
		case given(a):
			sessions = append(sessions, a)
		case a.Status == "not-done":
			s.NotDone++
		}
	}
	slices.SortStableFunc(sessions, func(a, b mapping.Administration) int { return a.Start.Compare(b.Start) })
	findings := map[string]*CodeCount{}
	for _, f := range rec.Findings {
		if owners[f.Owner] {
			count(findings, mapping.Coding{Code: f.Code})
		}
	}
	s.Findings = Sorted(findings)
	s.Given = len(sessions)
	counts := map[string]*CodeCount{}
	for _, a := range sessions {
		if a.Status == "stopped" {
			s.Stopped++
			if slices.ContainsFunc(a.StatusReason, mapping.IsSideEffect) {
				s.StoppedForSideEffect++
			}
		}
		seen := map[string]bool{}
		for _, i := range sideEffects.of(a, opts.SessionWindow) {
			se := rec.SideEffects[i]
			if k := se.Code.System + "|" + se.Code.Code; !seen[k] {
				seen[k] = true
				count(counts, se.Code)
			}
		}
		if len(seen) > 0 {
			s.WithSideEffect++
		}
		score := SessionScore{Start: a.Start}
		for _, i := range pain.of(a, opts.SessionWindow) {
			if p := &rec.Pain[i]; p.At.After(a.Start) {
				score.Score = &p.Value
			}
		}
		s.Sessions = append(s.Sessions, score)
	}
	s.SideEffects = Sorted(counts)
	if len(sessions) == 0 {
		return s
	}
	s.First, s.Last = sessions[0].Start, sessionEnd(sessions[0])
	for _, a := range sessions {
		s.Last = later(s.Last, sessionEnd(a))
	}
	if i, ok := pain.lastBefore(s.First); ok {
		s.Baseline = &rec.Pain[i].Value
	}
	s.MMEBefore, s.MMEAfter = meanMME(rec.Opioids, s.First, s.Last, opts.MME)
	return s
}

// timeline finds a patient's pain scores or side effects (by time) that
// belong to a session without looking at every one: those part of a
// session by the session, the others by time.
type timeline struct {
	at     func(int) time.Time
	free   []int            // part of no session, by time
	partOf map[string][]int // part of a session, by time, by the session's id
}

func newTimeline(n int, of func(int) (time.Time, string)) timeline {
	tl := timeline{at: func(i int) time.Time { t, _ := of(i); return t }, partOf: map[string][]int{}}
	for i := range n {
		if _, admin := of(i); admin != "" {
			tl.partOf[admin] = append(tl.partOf[admin], i)
		} else {
			tl.free = append(tl.free, i)
		}
	}
	return tl
}

// of returns, in their order, the entries that belong to session a: part
// of it, or, part of none, taken from its start to window after its end.
func (tl timeline) of(a mapping.Administration, window time.Duration) []int {
	from := sort.Search(len(tl.free), func(k int) bool { return !tl.at(tl.free[k]).Before(a.Start) })
	end := sessionEnd(a).Add(window)
	to := from + sort.Search(len(tl.free)-from, func(k int) bool { return tl.at(tl.free[from+k]).After(end) })
	linked := tl.partOf[a.ID]
	if len(linked) == 0 {
		return tl.free[from:to]
	}
	out := make([]int, 0, to-from+len(linked))
	out = append(append(out, tl.free[from:to]...), linked...)
	slices.Sort(out)
	return out
}

// lastBefore returns the last entry part of no session taken before t.
func (tl timeline) lastBefore(t time.Time) (int, bool) {
	k := sort.Search(len(tl.free), func(k int) bool { return !tl.at(tl.free[k]).Before(t) })
	if k == 0 {
		return 0, false
	}
	return tl.free[k-1], true
}

// courseStart is the earliest start of a session, or the order's
// authoredOn when no session has one.
func courseStart(c Course) time.Time {
	for _, s := range c.Sessions { // by start, those without one first
		if !s.Start.IsZero() {
			return s.Start
		}
	}
	return c.Order.AuthoredOn
}

// courseSetting is the order's setting, or its first session's with one.
func courseSetting(c Course) mapping.Setting {
	if c.Order.Setting != "" {
		return c.Order.Setting
	}
	for _, s := range c.Sessions {
		if s.Setting != "" {
			return s.Setting
		}
	}
	return ""
}

// given reports whether a session was given: completed, or started and
// stopped early.
func given(s mapping.Administration) bool { return s.Status == "completed" || s.Status == "stopped" }

func sessionEnd(s mapping.Administration) time.Time {
	if s.End.After(s.Start) {
		return s.End
	}
	return s.Start
}

func count(m map[string]*CodeCount, c mapping.Coding) {
	k := c.System + "|" + c.Code
	if m[k] == nil {
		m[k] = &CodeCount{Code: c}
	}
	m[k].Count++
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// The opioid windows: the 30 days before the first session, and days 30 to
// 90 after the last.
var (
	mmeBefore                = 30 * 24 * time.Hour
	mmeAfterFrom, mmeAfterTo = 30 * 24 * time.Hour, 90 * 24 * time.Hour
)

// meanMME returns the mean daily MME of a patient's opioid orders in the
// 30 days before first and in days 30–90 after last. A window is not
// computable (nil) when an order counted in MME overlaps it but cannot be
// converted; both are not when such an order has no active period.
func meanMME(orders []mapping.Order, first, last time.Time, table *MMETable) (before, after *float64) {
	windows := [2][2]time.Time{{first.Add(-mmeBefore), first}, {last.Add(mmeAfterFrom), last.Add(mmeAfterTo)}}
	var mean [2]float64
	var failed [2]bool
	for _, o := range orders {
		daily, counted, err := table.DailyMME(o)
		if !counted {
			continue
		}
		start, end, ok := ActivePeriod(o)
		if !ok {
			return nil, nil
		}
		for i, w := range windows {
			days := overlapDays(start, end, w[0], w[1])
			switch {
			case days <= 0:
			case err != nil:
				failed[i] = true
			default:
				mean[i] += daily * days / (w[1].Sub(w[0]).Hours() / 24)
			}
		}
	}
	if !failed[0] {
		before = &mean[0]
	}
	if !failed[1] {
		after = &mean[1]
	}
	return before, after
}
