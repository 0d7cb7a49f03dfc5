package outcomes

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"infusion/mapping"
)

// Record is everything about one patient that the figures need, as the
// store reads it: the patient's courses that the filter selects, and the
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

// Options are the definitions' parameters.
type Options struct {
	// OutcomeWindow is how long after the last session the outcome pain
	// score may be taken; default 30 days.
	OutcomeWindow time.Duration
	// SessionWindow is how long after a session's end a score or side
	// effect still belongs to it (when not partOf it); default 2 h.
	SessionWindow time.Duration
	MME           *MMETable
}

// The definitions' fixed parameters.
const (
	moderateResponse    = 30.0 // % pain reduction (IMMPACT: moderately important)
	substantialResponse = 50.0 // % (IMMPACT: substantial)
	mmeReduction        = 50.0 // % fall in mean daily MME
)

// The opioid windows: the 30 days before the first session, and days 30 to
// 90 after the last.
var (
	mmeBefore                = 30 * 24 * time.Hour
	mmeAfterFrom, mmeAfterTo = 30 * 24 * time.Hour, 90 * 24 * time.Hour
)

// Key is the value of one dimension of a group.
type Key struct {
	By      GroupBy
	Code    string // drug class, system|code, setting, or yyyy-mm; "unknown" when the course does not say
	Display string // the condition's display
}

// Group holds the figures of one group of courses.
type Group struct {
	Keys                                             []Key
	Patients, Courses                                int
	SessionsGiven, SessionsStopped, SessionsNotDone  int
	StoppedForSideEffect, SessionsWithSideEffect     int
	NoSessionsGiven                                  int // patients
	NoBaseline, NoFollowUp, BaselineZero, PainData   int // patients
	Responders30, Responders50, RespondedInSession   int
	Baseline, Last, Change, PercentChange, ToRespond []float64
	SideEffects                                      map[string]*CodeCount // by system|code
	Findings                                         map[string]*CodeCount // by code
	MMEBefore, MMEAfter                              []float64             // per patient with MME data
	MMENotComputable, OnOpioidsBefore, MMEReduced50  int
}

// CodeCount counts the sessions (side effects) or findings of one code.
type CodeCount struct {
	Code  mapping.Coding
	Count int
}

// Report is the figures of every group.
type Report struct {
	Groups []*Group
	by     []GroupBy
	index  map[string]*Group
	opts   Options
}

// NewReport starts a report grouped by the dimensions by (none: one group
// of every course).
func NewReport(by []GroupBy, opts Options) *Report {
	if opts.OutcomeWindow <= 0 {
		opts.OutcomeWindow = 30 * 24 * time.Hour
	}
	if opts.SessionWindow <= 0 {
		opts.SessionWindow = 2 * time.Hour
	}
	r := &Report{by: by, index: map[string]*Group{}, opts: opts}
	if len(by) == 0 {
		r.group(nil)
	}
	return r
}

func (r *Report) group(keys []Key) *Group {
	var id strings.Builder
	for _, k := range keys {
		id.WriteString(k.Code + "\x00")
	}
	g := r.index[id.String()]
	if g == nil {
		g = &Group{Keys: keys, SideEffects: map[string]*CodeCount{}, Findings: map[string]*CodeCount{}}
		r.index[id.String()] = g
		r.Groups = append(r.Groups, g)
	}
	return g
}

// Merge adds the figures of another report, made with the same group-by
// and options over other patients.
func (r *Report) Merge(o *Report) {
	for _, og := range o.Groups {
		g := r.group(og.Keys)
		for _, n := range [][2]*int{{&g.Patients, &og.Patients}, {&g.Courses, &og.Courses}, {&g.SessionsGiven, &og.SessionsGiven},
			{&g.SessionsStopped, &og.SessionsStopped}, {&g.SessionsNotDone, &og.SessionsNotDone},
			{&g.StoppedForSideEffect, &og.StoppedForSideEffect}, {&g.SessionsWithSideEffect, &og.SessionsWithSideEffect},
			{&g.NoSessionsGiven, &og.NoSessionsGiven}, {&g.NoBaseline, &og.NoBaseline}, {&g.NoFollowUp, &og.NoFollowUp},
			{&g.BaselineZero, &og.BaselineZero}, {&g.PainData, &og.PainData}, {&g.Responders30, &og.Responders30},
			{&g.Responders50, &og.Responders50}, {&g.RespondedInSession, &og.RespondedInSession},
			{&g.MMENotComputable, &og.MMENotComputable}, {&g.OnOpioidsBefore, &og.OnOpioidsBefore}, {&g.MMEReduced50, &og.MMEReduced50}} {
			*n[0] += *n[1]
		}
		for _, v := range [][2]*[]float64{{&g.Baseline, &og.Baseline}, {&g.Last, &og.Last}, {&g.Change, &og.Change},
			{&g.PercentChange, &og.PercentChange}, {&g.ToRespond, &og.ToRespond}, {&g.MMEBefore, &og.MMEBefore}, {&g.MMEAfter, &og.MMEAfter}} {
			*v[0] = append(*v[0], *v[1]...)
		}
		for _, m := range [][2]map[string]*CodeCount{{g.SideEffects, og.SideEffects}, {g.Findings, og.Findings}} {
			for k, c := range m[1] {
				if m[0][k] == nil {
					m[0][k] = &CodeCount{Code: c.Code}
				}
				m[0][k].Count += c.Count
			}
		}
	}
}

// Sort orders the groups by their keys.
func (r *Report) Sort() {
	slices.SortFunc(r.Groups, func(a, b *Group) int {
		for i := range a.Keys {
			if c := cmp.Compare(a.Keys[i].Code, b.Keys[i].Code); c != 0 {
				return c
			}
		}
		return 0
	})
}

// keys returns the group keys of a course.
func (r *Report) keys(c Course) []Key {
	var keys []Key
	for _, by := range r.by {
		k := Key{By: by, Code: "unknown"}
		switch by {
		case ByDrugClass:
			k.Code = string(c.Order.Drug.Class)
		case ByCondition:
			for _, ind := range c.Order.Indications {
				if ind.Code != "" {
					k.Code, k.Display = ind.System+"|"+ind.Code, ind.Display
					break
				}
			}
		case BySetting:
			if s := courseSetting(c); s != "" {
				k.Code = string(s)
			}
		case ByMonth:
			if t := courseStart(c); !t.IsZero() {
				k.Code = t.UTC().Format("2006-01")
			}
		}
		keys = append(keys, k)
	}
	return keys
}

// courseStart is the first session's start, or the order's authoredOn.
func courseStart(c Course) time.Time {
	if len(c.Sessions) > 0 {
		return c.Sessions[0].Start
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

// Add adds one patient's record to the groups of its courses.
func (r *Report) Add(rec Record) {
	byGroup := map[*Group][]Course{}
	var groups []*Group
	for _, c := range rec.Courses {
		g := r.group(r.keys(c))
		if _, ok := byGroup[g]; !ok {
			groups = append(groups, g)
		}
		byGroup[g] = append(byGroup[g], c)
	}
	for _, g := range groups {
		r.addPatient(g, rec, byGroup[g])
	}
}

// addPatient adds a patient's courses of one group.
func (r *Report) addPatient(g *Group, rec Record, courses []Course) {
	g.Patients++
	g.Courses += len(courses)
	owners := map[string]bool{}
	var sessions []mapping.Administration
	for _, c := range courses {
		owners["MedicationRequest/"+c.Order.ID] = true
		for _, s := range c.Sessions {
			owners["MedicationAdministration/"+s.ID] = true
			switch {
			case given(s):
				sessions = append(sessions, s)
			case s.Status == "not-done":
				g.SessionsNotDone++
			}
		}
	}
	slices.SortFunc(sessions, func(a, b mapping.Administration) int { return a.Start.Compare(b.Start) })
	for _, f := range rec.Findings {
		if owners[f.Owner] {
			count(g.Findings, mapping.Coding{Code: f.Code})
		}
	}
	g.SessionsGiven += len(sessions)
	for _, s := range sessions {
		if s.Status == "stopped" {
			g.SessionsStopped++
			if slices.ContainsFunc(s.StatusReason, mapping.IsSideEffect) {
				g.StoppedForSideEffect++
			}
		}
		seen := map[string]bool{}
		for _, se := range rec.SideEffects {
			if r.during(s, se.At, se.Administration) && !seen[se.Code.System+"|"+se.Code.Code] {
				seen[se.Code.System+"|"+se.Code.Code] = true
				count(g.SideEffects, se.Code)
			}
		}
		if len(seen) > 0 {
			g.SessionsWithSideEffect++
		}
	}
	if len(sessions) == 0 {
		g.NoSessionsGiven++
		return
	}
	first, last := sessions[0].Start, sessionEnd(sessions[0])
	for _, s := range sessions {
		last = later(last, sessionEnd(s))
	}
	r.addPain(g, rec.Pain, sessions, first, last)
	r.addOpioids(g, rec.Opioids, first, last)
}

// during reports whether something at t (part of administration admin, or
// of none) belongs to session s: part of it, or, when part of no session,
// taken from its start to SessionWindow after its end.
func (r *Report) during(s mapping.Administration, t time.Time, admin string) bool {
	if admin != "" {
		return admin == s.ID
	}
	return !t.Before(s.Start) && !t.After(sessionEnd(s).Add(r.opts.SessionWindow))
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

// addPain adds a patient's pain response: baseline the last score before
// the first session, outcome the last within OutcomeWindow after the last
// session (neither part of a session, and the outcome after the session
// window too), and the first session after which the score fell by 30 %.
func (r *Report) addPain(g *Group, pain []Score, sessions []mapping.Administration, first, last time.Time) {
	var baseline, outcome *Score
	for i := range pain {
		p := &pain[i]
		if p.Administration != "" {
			continue
		}
		if p.At.Before(first) {
			baseline = p
		}
		if p.At.After(last.Add(r.opts.SessionWindow)) && !p.At.After(last.Add(r.opts.OutcomeWindow)) {
			outcome = p
		}
	}
	switch {
	case baseline == nil:
		g.NoBaseline++
	case baseline.Value <= 0:
		g.BaselineZero++
	case outcome == nil:
		g.NoFollowUp++
	}
	if baseline != nil {
		g.Baseline = append(g.Baseline, baseline.Value)
	}
	if outcome != nil {
		g.Last = append(g.Last, outcome.Value)
	}
	if baseline == nil || baseline.Value <= 0 {
		return
	}
	for i, s := range sessions {
		var after *Score
		for j := range pain {
			if p := &pain[j]; p.At.After(s.Start) && r.during(s, p.At, p.Administration) {
				after = p
			}
		}
		if after != nil && reduction(baseline.Value, after.Value) >= moderateResponse {
			g.RespondedInSession++
			g.ToRespond = append(g.ToRespond, float64(i+1))
			break
		}
	}
	if outcome == nil {
		return
	}
	g.PainData++
	g.Change = append(g.Change, outcome.Value-baseline.Value)
	pct := -reduction(baseline.Value, outcome.Value)
	g.PercentChange = append(g.PercentChange, pct)
	if -pct >= moderateResponse {
		g.Responders30++
	}
	if -pct >= substantialResponse {
		g.Responders50++
	}
}

// reduction is the fall from before to after, in % of before.
func reduction(before, after float64) float64 { return (before - after) / before * 100 }

// addOpioids adds a patient's mean daily MME in the 30 days before the
// first session and in days 30–90 after the last.
func (r *Report) addOpioids(g *Group, orders []mapping.Order, first, last time.Time) {
	if r.opts.MME == nil {
		return
	}
	windows := [2][2]time.Time{{first.Add(-mmeBefore), first}, {last.Add(mmeAfterFrom), last.Add(mmeAfterTo)}}
	var mean [2]float64
	for _, o := range orders {
		start, end, ok := ActivePeriod(o)
		if !ok {
			if _, counted, _ := r.opts.MME.DailyMME(o); counted {
				g.MMENotComputable++
				return
			}
			continue
		}
		overlaps := false
		for _, w := range windows {
			overlaps = overlaps || overlapDays(start, end, w[0], w[1]) > 0
		}
		if !overlaps {
			continue
		}
		daily, counted, err := r.opts.MME.DailyMME(o)
		if !counted {
			continue
		}
		if err != nil {
			g.MMENotComputable++
			return
		}
		for i, w := range windows {
			mean[i] += daily * overlapDays(start, end, w[0], w[1]) / (w[1].Sub(w[0]).Hours() / 24)
		}
	}
	g.MMEBefore = append(g.MMEBefore, mean[0])
	g.MMEAfter = append(g.MMEAfter, mean[1])
	if mean[0] > 0 {
		g.OnOpioidsBefore++
		if reduction(mean[0], mean[1]) >= mmeReduction {
			g.MMEReduced50++
		}
	}
}

// Quartiles returns the median and the first and third quartiles of
// values (linear interpolation between closest ranks); ok is false when
// there are none.
func Quartiles(values []float64) (q1, median, q3 float64, ok bool) {
	if len(values) == 0 {
		return 0, 0, 0, false
	}
	s := slices.Clone(values)
	slices.Sort(s)
	at := func(p float64) float64 {
		x := p * float64(len(s)-1)
		lo := math.Floor(x)
		i := int(lo)
		if i+1 >= len(s) {
			return s[i]
		}
		return s[i] + (x-lo)*(s[i+1]-s[i])
	}
	return at(0.25), at(0.5), at(0.75), true
}

// Mean returns the mean of values; ok is false when there are none.
func Mean(values []float64) (float64, bool) {
	if len(values) == 0 {
		return 0, false
	}
	sum := 0.0
	for _, v := range values {
		sum += v
	}
	return sum / float64(len(values)), true
}

// Sorted returns the counts of a map by count, largest first, then code.
func Sorted(m map[string]*CodeCount) []CodeCount {
	out := make([]CodeCount, 0, len(m))
	for _, c := range m {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b CodeCount) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return cmp.Compare(a.Code.System+"|"+a.Code.Code, b.Code.System+"|"+b.Code.Code)
	})
	return out
}
