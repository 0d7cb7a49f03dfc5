package outcomes

import (
	"cmp"
	"math"
	"slices"
	"strings"

	"infusion/mapping"
)

// The definitions' fixed parameters.
const (
	moderateResponse    = 30.0 // % pain reduction (IMMPACT: moderately important)
	substantialResponse = 50.0 // % (IMMPACT: substantial)
	mmeReduction        = 50.0 // % fall in mean daily MME
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
}

// NewReport starts a report grouped by the dimensions by (none: one group
// of every course).
func NewReport(by []GroupBy) *Report {
	r := &Report{by: by, index: map[string]*Group{}}
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
// over other patients.
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
func (r *Report) keys(c *Summary) []Key {
	var keys []Key
	for _, by := range r.by {
		k := Key{By: by, Code: "unknown"}
		switch by {
		case ByDrugClass:
			k.Code = string(c.Class)
		case ByCondition:
			if c.Condition.Code != "" {
				k.Code, k.Display = c.Condition.System+"|"+c.Condition.Code, c.Condition.Display
			}
		case BySetting:
			if c.Setting != "" {
				k.Code = string(c.Setting)
			}
		case ByMonth:
			if !c.Start.IsZero() {
				k.Code = c.Start.UTC().Format("2006-01")
			}
		}
		keys = append(keys, k)
	}
	return keys
}

// Add adds one patient's courses to their groups.
func (r *Report) Add(courses []Summary) {
	if len(r.by) == 0 {
		r.addPatient(r.Groups[0], courses)
		return
	}
	byGroup := map[*Group][]Summary{}
	var groups []*Group
	for i := range courses {
		g := r.group(r.keys(&courses[i]))
		if _, ok := byGroup[g]; !ok {
			groups = append(groups, g)
		}
		byGroup[g] = append(byGroup[g], courses[i])
	}
	for _, g := range groups {
		r.addPatient(g, byGroup[g])
	}
}

// addPatient adds a patient's courses of one group. The patient's first
// session is the earliest course's, and the last the latest course's.
func (r *Report) addPatient(g *Group, courses []Summary) {
	g.Patients++
	g.Courses += len(courses)
	var earliest, latest *Summary
	for i := range courses {
		c := &courses[i]
		g.SessionsGiven += c.Given
		g.SessionsStopped += c.Stopped
		g.SessionsNotDone += c.NotDone
		g.StoppedForSideEffect += c.StoppedForSideEffect
		g.SessionsWithSideEffect += c.WithSideEffect
		addCounts(g.SideEffects, c.SideEffects)
		addCounts(g.Findings, c.Findings)
		if c.Given == 0 {
			continue
		}
		if earliest == nil || c.First.Before(earliest.First) {
			earliest = c
		}
		if latest == nil || c.Last.After(latest.Last) {
			latest = c
		}
	}
	if earliest == nil {
		g.NoSessionsGiven++
		return
	}
	sessions := courses[0].Sessions
	if len(courses) > 1 {
		sessions = nil
		for _, c := range courses {
			sessions = append(sessions, c.Sessions...)
		}
		slices.SortStableFunc(sessions, func(a, b SessionScore) int { return a.Start.Compare(b.Start) })
	}
	addPain(g, earliest.Baseline, latest.Outcome, sessions)
	addOpioids(g, earliest.MMEBefore, latest.MMEAfter)
}

func addCounts(to map[string]*CodeCount, counts []CodeCount) {
	for _, c := range counts {
		k := c.Code.System + "|" + c.Code.Code
		if to[k] == nil {
			to[k] = &CodeCount{Code: c.Code}
		}
		to[k].Count += c.Count
	}
}

// addPain adds a patient's pain response: the baseline and outcome scores,
// and the first session after which the score fell by 30 %.
func addPain(g *Group, baseline, outcome *float64, sessions []SessionScore) {
	switch {
	case baseline == nil:
		g.NoBaseline++
	case *baseline <= 0:
		g.BaselineZero++
	case outcome == nil:
		g.NoFollowUp++
	}
	if baseline != nil {
		g.Baseline = append(g.Baseline, *baseline)
	}
	if outcome != nil {
		g.Last = append(g.Last, *outcome)
	}
	if baseline == nil || *baseline <= 0 {
		return
	}
	for i, s := range sessions {
		if s.Score != nil && reduction(*baseline, *s.Score) >= moderateResponse {
			g.RespondedInSession++
			g.ToRespond = append(g.ToRespond, float64(i+1))
			break
		}
	}
	if outcome == nil {
		return
	}
	g.PainData++
	g.Change = append(g.Change, *outcome-*baseline)
	pct := -reduction(*baseline, *outcome)
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

// addOpioids adds a patient's mean daily MME before the first session and
// after the last.
func addOpioids(g *Group, before, after *float64) {
	if before == nil || after == nil {
		g.MMENotComputable++
		return
	}
	g.MMEBefore = append(g.MMEBefore, *before)
	g.MMEAfter = append(g.MMEAfter, *after)
	if *before > 0 {
		g.OnOpioidsBefore++
		if reduction(*before, *after) >= mmeReduction {
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
