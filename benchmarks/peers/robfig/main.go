// Command robfig-peer answers Headwater's schedule-peer cases with
// github.com/robfig/cron/v3 (v3.0.1), the parser and Next() that the
// Kubernetes CronJob controller and Argo CronWorkflows use.
//
// Input (stdin): a JSON list of cases
//
//	{"id", "kind", "expression", "timezone", "anchor", "start", "end"}
//
// Output (stdout): {"engine", "results", "us_per_tick"}; see
// benchmarks/peers/robfig_peer.py for the shared format.
//
// Time zone: the CronJob controller (pkg/controller/cronjob, formatSchedule)
// hands .spec.timeZone to the parser by prefixing the schedule text with
// "TZ=<zone> " and calling cron.ParseStandard on the result; a schedule that
// already contains "TZ" is passed through unchanged. Argo prefixes
// "CRON_TZ=<zone> ", which robfig treats identically. This program does the
// same as CronJob: it builds "TZ=<zone> <expression>" and lets robfig convert
// each instant into that location inside Next(). The instants handed to
// Next() are UTC; with a location in the spec, robfig ignores the input's
// own location.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	cron "github.com/robfig/cron/v3"
)

const engineName = "robfig/cron v3.0.1 (Kubernetes CronJob, Argo)"

// timingTicks is the number of consecutive Next() calls in one timing round.
const timingTicks = 2000

// timingRounds is how many rounds are timed; the fastest one is reported.
const timingRounds = 5

// maxFires stops a runaway enumeration (for example an every-second
// schedule over a long window).
const maxFires = 1000000

type caseIn struct {
	ID         string  `json:"id"`
	Kind       string  `json:"kind"`
	Expression string  `json:"expression"`
	Timezone   *string `json:"timezone"`
	Anchor     *string `json:"anchor"`
	Start      string  `json:"start"`
	End        string  `json:"end"`
}

type result struct {
	ID          string   `json:"id"`
	Fires       []string `json:"fires,omitempty"`
	Unsupported string   `json:"unsupported,omitempty"`
}

// MarshalJSON keeps "fires": [] for a supported case with no fire, and
// leaves it out for an unsupported one.
func (r result) MarshalJSON() ([]byte, error) {
	if r.Unsupported != "" {
		return json.Marshal(struct {
			ID          string `json:"id"`
			Unsupported string `json:"unsupported"`
		}{r.ID, r.Unsupported})
	}
	fires := r.Fires
	if fires == nil {
		fires = []string{}
	}
	return json.Marshal(struct {
		ID    string   `json:"id"`
		Fires []string `json:"fires"`
	}{r.ID, fires})
}

type answer struct {
	Engine    string             `json:"engine"`
	Results   []result           `json:"results"`
	UsPerTick map[string]float64 `json:"us_per_tick"`
}

// scheduleText mirrors what the CronJob controller gives the parser.
func scheduleText(expression string, timezone string) string {
	if strings.Contains(expression, "TZ") || timezone == "" {
		return expression
	}
	return "TZ=" + timezone + " " + expression
}

// parse calls cron.ParseStandard, turning a parser panic (robfig indexes
// past a "TZ=zone" with no following space) into an error.
func parse(text string) (sched cron.Schedule, err error) {
	defer func() {
		if p := recover(); p != nil {
			sched = nil
			err = fmt.Errorf("parser panicked: %v", p)
		}
	}()
	return cron.ParseStandard(text)
}

func formatUTC(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// fires returns every instant t with start < t <= end, walking
// t = sched.Next(t) from start. This is the running controller's steady
// state: it requeues itself for Next(now), creates the Job for that time and
// records it as status.lastScheduleTime. (After downtime, recent controllers
// estimate the missed count from Next(t1)-t1 arithmetic and start only the
// most recent missed Job; that catch-up path is not modelled here.)
func fires(sched cron.Schedule, start time.Time, end time.Time) ([]string, string) {
	out := []string{}
	t := start.UTC()
	for len(out) < maxFires {
		n := sched.Next(t)
		if n.IsZero() || n.After(end) {
			return out, ""
		}
		if !n.After(t) {
			return out, fmt.Sprintf("Next(%s) returned %s, not later: stopped", formatUTC(t), formatUTC(n))
		}
		out = append(out, formatUTC(n))
		t = n.UTC()
	}
	return out, fmt.Sprintf("stopped after %d fires", maxFires)
}

// usPerTick times timingTicks consecutive Next() calls from start, best of
// timingRounds rounds. A zero answer (no fire within robfig's five-year
// search) restarts the walk at start, so every round makes the same calls.
func usPerTick(sched cron.Schedule, start time.Time) float64 {
	best := time.Duration(-1)
	sink := 0
	for round := 0; round < timingRounds; round++ {
		t := start.UTC()
		began := time.Now()
		for i := 0; i < timingTicks; i++ {
			n := sched.Next(t)
			if n.IsZero() || !n.After(t) {
				t = start.UTC()
				continue
			}
			t = n
		}
		elapsed := time.Since(began)
		sink += t.Second()
		if best < 0 || elapsed < best {
			best = elapsed
		}
	}
	if sink < 0 {
		fmt.Fprintln(os.Stderr, sink)
	}
	return float64(best.Nanoseconds()) / 1000.0 / float64(timingTicks)
}

func runCase(c caseIn, ans *answer) {
	if c.Kind != "cron" {
		ans.Results = append(ans.Results, result{ID: c.ID, Unsupported: "robfig/cron has only cron expressions"})
		return
	}
	zone := ""
	if c.Timezone != nil {
		zone = *c.Timezone
	}
	if zone != "" {
		if _, err := time.LoadLocation(zone); err != nil {
			ans.Results = append(ans.Results, result{ID: c.ID, Unsupported: fmt.Sprintf("time zone %q not loadable: %v", zone, err)})
			return
		}
	}
	text := scheduleText(c.Expression, zone)
	sched, err := parse(text)
	if err != nil {
		ans.Results = append(ans.Results, result{ID: c.ID, Unsupported: fmt.Sprintf("cron.ParseStandard(%q) rejected it: %v", text, err)})
		return
	}
	start, err := time.Parse(time.RFC3339, c.Start)
	if err != nil {
		ans.Results = append(ans.Results, result{ID: c.ID, Unsupported: fmt.Sprintf("bad start %q: %v", c.Start, err)})
		return
	}
	end, err := time.Parse(time.RFC3339, c.End)
	if err != nil {
		ans.Results = append(ans.Results, result{ID: c.ID, Unsupported: fmt.Sprintf("bad end %q: %v", c.End, err)})
		return
	}
	got, stopped := fires(sched, start, end)
	if stopped != "" {
		fmt.Fprintf(os.Stderr, "robfig-peer: case %s: %s\n", c.ID, stopped)
	}
	ans.Results = append(ans.Results, result{ID: c.ID, Fires: got})
	// A schedule with no fire within robfig's five-year search (say
	// "0 0 30 2 *") has no ticks to time.
	if !sched.Next(start.UTC()).IsZero() {
		ans.UsPerTick[c.ID] = usPerTick(sched, start)
	}
}

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "robfig-peer: reading stdin: %v\n", err)
		os.Exit(2)
	}
	var cases []caseIn
	if err := json.Unmarshal(raw, &cases); err != nil {
		fmt.Fprintf(os.Stderr, "robfig-peer: stdin is not a JSON list of cases: %v\n", err)
		os.Exit(2)
	}
	ans := answer{Engine: engineName, Results: []result{}, UsPerTick: map[string]float64{}}
	for _, c := range cases {
		runCase(c, &ans)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(ans); err != nil {
		fmt.Fprintf(os.Stderr, "robfig-peer: writing answer: %v\n", err)
		os.Exit(1)
	}
}
