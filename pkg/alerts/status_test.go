package alerts

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// defaultRule returns the default rule called name, failing when there is
// none.
func defaultRule(t *testing.T, name string) Rule {
	t.Helper()
	for _, r := range Defaults() {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no default rule %s", name)
	return Rule{}
}

// hold evaluates u every 5 s from from to to and returns the transitions.
func hold(e *Engine, from, to time.Duration, u *metrics.Update) []Transition {
	var out []Transition
	for d := from; d <= to; d += 5 * time.Second {
		out = append(out, e.Evaluate(t0.Add(d), u)...)
	}
	return out
}

func states(trs []Transition) string {
	var s []string
	for _, tr := range trs {
		s = append(s, tr.Rule+" "+tr.Host+"/"+tr.Target+" "+string(tr.State)+"/"+string(tr.Severity))
	}
	return strings.Join(s, ", ")
}

// The default power rule compares the draw with the card's own limit, so
// a busy 700 W card is fine at 500 W; the seed's watts apply only to a GPU
// whose limit is unknown, and each rule leaves the other's GPUs alone.
func TestPowerRelativeToTheLimit(t *testing.T) {
	power := defaultRule(t, "gpu_power")
	watts := defaultRule(t, "gpu_power_watts")
	if power.Metric != "gpu_power_percent" || power.Warning.Threshold != 90 || power.Warning.For != 2*time.Minute ||
		power.Critical.Threshold != 98 || power.Critical.For != time.Minute || power.Hysteresis != 3 {
		t.Errorf("gpu_power %+v, want gpu_power_percent > 90 for 2m, > 98 for 1m, hysteresis 3", power)
	}
	if watts.Metric != "gpu_power_no_limit" || watts.Warning.Threshold != 300 || watts.Warning.For != 2*time.Minute ||
		watts.Critical.Threshold != 350 || watts.Critical.For != time.Minute || watts.Hysteresis != 20 {
		t.Errorf("gpu_power_watts %+v, want gpu_power_no_limit > 300 W for 2m, > 350 W for 1m, hysteresis 20", watts)
	}
	h200 := func(w float64) metrics.GPUView {
		return metrics.GPUView{Host: "h1", Index: ptr(0), PowerWatts: f(w), PowerLimitWatts: f(700)}
	}
	noLimit := func(w float64) metrics.GPUView { return metrics.GPUView{Host: "h1", Index: ptr(1), PowerWatts: f(w)} }
	update := func(g ...metrics.GPUView) *metrics.Update { return &metrics.Update{GPUs: g} }

	e := mustNew(t, power, watts)
	// 500 W of 700 W (71 %) for ten minutes: nothing, although 500 W is
	// past the seed's 350 W.
	if trs := hold(e, 0, 10*time.Minute, update(h200(500))); len(trs) != 0 {
		t.Fatalf("500 W on a 700 W card: %s", states(trs))
	}
	// 650 W is 92.9 %: warning after 2 minutes, named in percent.
	trs := hold(e, 10*time.Minute+5*time.Second, 12*time.Minute+5*time.Second, update(h200(650)))
	if got := states(trs); got != "gpu_power h1/gpu0 pending/warning, gpu_power h1/gpu0 firing/warning" {
		t.Fatalf("650 W on a 700 W card: %s", got)
	}
	if a := trs[1].Alert; a.Value < 92.8 || a.Value > 92.9 || a.Threshold != 90 || !strings.Contains(a.Message, "92.86% of its power limit") {
		t.Errorf("alert %+v", a)
	}
	// Within the hysteresis (88 % > 90 - 3) it keeps firing; below, it
	// resolves after keep_firing_for.
	if trs := hold(e, 12*time.Minute+10*time.Second, 13*time.Minute, update(h200(616))); len(trs) != 0 {
		t.Fatalf("88 %%: %s", states(trs))
	}
	trs = hold(e, 13*time.Minute+5*time.Second, 14*time.Minute, update(h200(560)))
	if got := states(trs); got != "gpu_power h1/gpu0 resolved/warning" {
		t.Fatalf("80 %%: %s", got)
	}

	// A GPU without a known limit falls back to watts; the percent rule
	// has no value for it and stays quiet.
	e = mustNew(t, power, watts)
	trs = hold(e, 0, 2*time.Minute, update(h200(100), noLimit(320)))
	if got := states(trs); got != "gpu_power_watts h1/gpu1 pending/warning, gpu_power_watts h1/gpu1 firing/warning" {
		t.Fatalf("320 W without a limit: %s", got)
	}
	if m := trs[1].Message; !strings.Contains(m, "320 W") || !strings.Contains(m, "power limit unknown") {
		t.Errorf("message %q", m)
	}
	// A limit of 0 is a limit NVML could not read.
	zero := noLimit(360)
	zero.PowerLimitWatts = f(0)
	e = mustNew(t, power, watts)
	if trs := hold(e, 0, time.Minute, update(zero)); states(trs) != "gpu_power_watts h1/gpu1 pending/critical, gpu_power_watts h1/gpu1 firing/critical" {
		t.Fatalf("360 W with limit 0: %s", states(trs))
	}
}

func modelUpdate(host string, online bool, models map[string]metrics.ModelView) *metrics.Update {
	return &metrics.Update{Hosts: []metrics.HostStatus{{Host: host, Online: online, Models: models}}}
}

// A model server that stops answering raises model_down after 30 s,
// naming the server, its host and why; "unknown" and "unconfigured" (the
// hub has heard nothing yet) neither start nor resolve it; a long load
// raises model_loading after 10 minutes; degraded is up.
func TestModelStatusRules(t *testing.T) {
	down, loading := defaultRule(t, "model_down"), defaultRule(t, "model_loading")
	down.KeepFiringFor, loading.KeepFiringFor = 0, 0
	e := mustNew(t, down, loading)
	st := func(status metrics.Status, reason string) *metrics.Update {
		return modelUpdate("box1", true, map[string]metrics.ModelView{
			"rtdetr":   {Status: status, Reason: reason, Host: "box1"},
			"nemotron": {Status: metrics.StatusHealthy, Host: "box1"},
		})
	}
	for _, status := range []metrics.Status{metrics.StatusUnknown, metrics.StatusUnconfigured, metrics.StatusHealthy, metrics.StatusDegraded} {
		if trs := hold(e, 0, 5*time.Minute, st(status, "")); len(trs) != 0 {
			t.Fatalf("status %s: %s", status, states(trs))
		}
	}
	trs := hold(e, 5*time.Minute+5*time.Second, 5*time.Minute+35*time.Second, st(metrics.StatusUnreachable, "connection refused"))
	if got := states(trs); got != "model_down box1/rtdetr pending/critical, model_down box1/rtdetr firing/warning" {
		t.Fatalf("unreachable: %s", got)
	}
	if m := trs[1].Message; m != "Model server rtdetr on box1 is unreachable: connection refused" {
		t.Errorf("message %q", m)
	}
	since := trs[1].Since
	// The hub restarted: the model is "unknown" until the agent reports,
	// and then an offline host's model is stale. Neither is news.
	if trs := hold(e, 5*time.Minute+40*time.Second, 6*time.Minute, st("unknown", "")); len(trs) != 0 {
		t.Fatalf("unknown while firing: %s", states(trs))
	}
	stale := modelUpdate("box1", false, map[string]metrics.ModelView{"rtdetr": {Status: metrics.StatusUnreachable, Stale: true}})
	if trs := hold(e, 6*time.Minute+5*time.Second, 6*time.Minute+30*time.Second, stale); len(trs) != 0 {
		t.Fatalf("stale while firing: %s", states(trs))
	}
	// Still unreachable past 2 minutes: critical, same start.
	trs = hold(e, 6*time.Minute+35*time.Second, 7*time.Minute+5*time.Second, st(metrics.StatusUnhealthy, "HTTP 500"))
	if got := states(trs); got != "model_down box1/rtdetr firing/critical" || !trs[0].Since.Equal(since) {
		t.Fatalf("unhealthy past 2m: %s since %v, want since %v", got, trs[0].Since, since)
	}
	if a := e.Active(); len(a) != 1 || a[0].Message != "Model server rtdetr on box1 is unhealthy: HTTP 500" {
		t.Errorf("active %+v", a)
	}
	trs = hold(e, 7*time.Minute+10*time.Second, 7*time.Minute+10*time.Second, st(metrics.StatusHealthy, ""))
	if got := states(trs); got != "model_down box1/rtdetr resolved/critical" {
		t.Fatalf("healthy again: %s", got)
	}

	// Loading: 9 minutes is a model load, 10 is stuck.
	if trs := hold(e, 8*time.Minute, 17*time.Minute, st(metrics.StatusLoading, "loading model")); states(trs) != "model_loading box1/rtdetr pending/critical" {
		t.Fatalf("loading 9m: %s", states(trs))
	}
	trs = hold(e, 17*time.Minute+5*time.Second, 18*time.Minute, st(metrics.StatusLoading, "loading model"))
	if got := states(trs); got != "model_loading box1/rtdetr firing/warning" {
		t.Fatalf("loading 10m: %s", got)
	}
	if m := trs[0].Message; m != "Model server rtdetr on box1 has been loading for too long (loading: loading model)" {
		t.Errorf("message %q", m)
	}

	// A single-host update without hosts falls back to ai_models.
	e = mustNew(t, down)
	u := &metrics.Update{AIModels: metrics.AIModels{Nemotron: metrics.ModelView{Status: metrics.StatusUnreachable, Host: "h"}, RTDETR: metrics.ModelView{Status: "unconfigured"}}}
	if got := states(hold(e, 0, 30*time.Second, u)); got != "model_down h/nemotron pending/critical, model_down h/nemotron firing/warning" {
		t.Fatalf("ai_models fallback: %s", got)
	}
}

// A database that cannot be reached raises database_unreachable with the
// reason; a source that has not answered yet ("unknown") is not healthy
// and does not resolve it. Every configured PostgreSQL is watched.
func TestDatabaseUnreachable(t *testing.T) {
	r := defaultRule(t, "database_unreachable")
	r.KeepFiringFor = 0
	e := mustNew(t, r)
	dbs := func(pg, redis, extra metrics.Status) *metrics.Update {
		u := &metrics.Update{}
		u.Databases.PostgreSQL = metrics.PostgreSQL{Status: pg, Reason: "dial tcp 127.0.0.1:5432: connection refused"}
		u.Databases.Redis = metrics.Redis{Status: redis, Reason: "redis down"}
		u.Databases.PostgreSQLExtra = []metrics.PostgreSQL{{Status: extra, Database: "events", Reason: "timeout"}}
		return u
	}
	if trs := hold(e, 0, time.Minute, dbs("unknown", "unconfigured", "unknown")); len(trs) != 0 {
		t.Fatalf("nothing answered yet: %s", states(trs))
	}
	trs := hold(e, time.Minute+5*time.Second, time.Minute+35*time.Second, dbs(metrics.StatusHealthy, metrics.StatusUnreachable, metrics.StatusUnreachable))
	got := states(trs)
	want := "database_unreachable /redis pending/critical, database_unreachable /postgresql/events pending/critical, " +
		"database_unreachable /redis firing/warning, database_unreachable /postgresql/events firing/warning"
	if got != want {
		t.Fatalf("redis and events down:\n got %s\nwant %s", got, want)
	}
	if m := trs[2].Message; m != "Database redis is unreachable: redis down" {
		t.Errorf("message %q", m)
	}
	if trs := hold(e, time.Minute+40*time.Second, 2*time.Minute, dbs("unknown", "unknown", "unknown")); len(trs) != 0 {
		t.Fatalf("unknown while firing: %s", states(trs))
	}
	trs = hold(e, 2*time.Minute+5*time.Second, 2*time.Minute+5*time.Second, dbs(metrics.StatusHealthy, metrics.StatusHealthy, metrics.StatusUnreachable))
	if got := states(trs); got != "database_unreachable /redis resolved/warning" {
		t.Fatalf("redis back: %s", got)
	}
}

// The container alert names the failing containers and how each fails.
func TestContainersAlertNamesThem(t *testing.T) {
	r := defaultRule(t, "containers_unhealthy")
	e := mustNew(t, r)
	u := &metrics.Update{Containers: []metrics.Container{
		{Name: "backend", Status: "running", Health: metrics.StatusHealthy},
		{Name: "frontend", Status: "running", Health: metrics.StatusUnhealthy, Reason: "HTTP 500"},
		{Name: "worker", Status: "exited", Health: "none"},
		{Name: "cache", Status: "restarting", Health: "starting"},
		{Name: "nginx", Status: "unknown", Health: "unknown"},
	}}
	trs := hold(e, 0, 30*time.Second, u)
	if len(trs) != 2 || trs[1].State != StateFiring || trs[1].Severity != SeverityCritical {
		t.Fatalf("transitions %s", states(trs))
	}
	want := "3 container(s) failing: frontend (unhealthy: HTTP 500), worker (exited), cache (restarting)"
	if m := trs[1].Message; m != want {
		t.Errorf("message\n got %q\nwant %q", m, want)
	}
}

// gpu_throttled fires for the hardware's own slow-downs (HW slowdown,
// HW/SW thermal, power brake), from the mask or, without one, the names,
// and not for idle, application clocks, sync boost or the SW power cap.
func TestGPUThrottled(t *testing.T) {
	r := defaultRule(t, "gpu_throttled")
	r.Warning.For, r.KeepFiringFor = 0, 0
	mask := func(m uint64) *uint64 { return &m }
	cases := []struct {
		name   string
		g      metrics.GPUView
		want   *float64 // nil: no data
		detail string
	}{
		{"nothing known", metrics.GPUView{}, nil, ""},
		{"mask 0", metrics.GPUView{ThrottleMask: mask(0)}, f(0), ""},
		{"idle, app clocks, power cap, sync boost", metrics.GPUView{ThrottleMask: mask(0x1 | 0x2 | 0x4 | 0x10),
			Throttle: []string{"gpu_idle", "applications_clocks_setting", "sw_power_cap", "sync_boost"}}, f(0), ""},
		{"hw slowdown", metrics.GPUView{ThrottleMask: mask(0x8)}, f(1), "hw_slowdown"},
		{"sw thermal and power cap", metrics.GPUView{ThrottleMask: mask(0x20 | 0x4)}, f(1), "sw_thermal_slowdown"},
		{"hw thermal", metrics.GPUView{ThrottleMask: mask(0x40 | 0x8)}, f(1), "hw_slowdown, hw_thermal_slowdown"},
		{"power brake", metrics.GPUView{ThrottleMask: mask(0x80)}, f(1), "hw_power_brake"},
		{"names only", metrics.GPUView{Throttle: []string{"sw_power_cap", "hw_power_brake"}}, f(1), "hw_power_brake"},
		{"names only, benign", metrics.GPUView{Throttle: []string{"gpu_idle"}}, f(0), ""},
		{"stale", metrics.GPUView{ThrottleMask: mask(0x40), Stale: true}, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.g
			g.Host, g.Index = "h1", ptr(3)
			obs := gpuThrottled(&metrics.Update{GPUs: []metrics.GPUView{g}}, nil)
			if len(obs) != 1 || obs[0].target != "gpu3" || obs[0].host != "h1" {
				t.Fatalf("observations %+v", obs)
			}
			if o := obs[0]; (o.value == nil) != (tc.want == nil) || o.value != nil && *o.value != *tc.want || o.detail != tc.detail {
				t.Fatalf("value %v detail %q, want %v %q", deref(o.value), o.detail, deref(tc.want), tc.detail)
			}
			e := mustNew(t, r)
			trs := e.Evaluate(t0, &metrics.Update{GPUs: []metrics.GPUView{g}})
			fires := len(trs) == 1 && trs[0].State == StateFiring
			if fires != (tc.want != nil && *tc.want == 1) {
				t.Fatalf("transitions %s", states(trs))
			}
			if fires && trs[0].Message != "GPU gpu3 on h1 is slowing itself down: "+tc.detail {
				t.Errorf("message %q", trs[0].Message)
			}
		})
	}
}

// Alert lists lead with critical, then the oldest; a firing alert goes
// before a pending one that started at the same time.
func TestSortAlertsBySeverityThenAge(t *testing.T) {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	list := []metrics.Alert{
		{Rule: "a", Severity: SeverityWarning, State: StateFiring, Since: at(1)},
		{Rule: "b", Severity: SeverityCritical, State: StateFiring, Since: at(5)},
		{Rule: "c", Severity: SeverityWarning, State: StatePending, Since: at(0)},
		{Rule: "d", Severity: SeverityCritical, State: StatePending, Since: at(2)},
		{Rule: "e", Severity: SeverityWarning, State: StatePending, Since: at(1)},
		{Rule: "f", Severity: SeverityCritical, State: StateResolved, Since: at(2), At: at(9)},
	}
	SortAlerts(list)
	var got []string
	for _, a := range list {
		got = append(got, a.Rule)
	}
	if strings.Join(got, "") != "fdbcae" {
		t.Fatalf("order %v, want f d b c a e", got)
	}
	// One alert's transitions (the recent list): newest first.
	trs := []metrics.Alert{
		{Rule: "x", Severity: SeverityWarning, State: StatePending, Since: at(0), At: at(0)},
		{Rule: "x", Severity: SeverityWarning, State: StateFiring, Since: at(0), At: at(1)},
		{Rule: "x", Severity: SeverityWarning, State: StateResolved, Since: at(0), At: at(2)},
	}
	SortAlerts(trs)
	if trs[0].State != StateResolved || trs[1].State != StateFiring || trs[2].State != StatePending {
		t.Fatalf("transitions %+v, want resolved, firing, pending", trs)
	}
}

// A restored alert keeps the detail its message names.
func TestRestoreKeepsDetail(t *testing.T) {
	r := defaultRule(t, "database_unreachable")
	e1 := mustNew(t, r)
	u := &metrics.Update{}
	u.Databases.PostgreSQL.Status = "unknown"
	u.Databases.Redis = metrics.Redis{Status: metrics.StatusUnreachable, Reason: "connection refused"}
	hold(e1, 0, 30*time.Second, u)
	e2 := restarted(t, e1, r)
	if a := e2.Active(); len(a) != 1 || a[0].State != StateFiring || a[0].Message != "Database redis is unreachable: connection refused" || !a[0].Since.Equal(t0) {
		t.Fatalf("restored %+v", a)
	}
}

// The hub sends an empty container list, filled by no source, until its
// containers source first answers: that is no data, not "all healthy", so
// a firing containers alert survives a hub restart even with no
// keep_firing_for. A stale list is no data too; an empty list the source
// sent is nothing to watch.
func TestContainersNoData(t *testing.T) {
	count, each := defaultRule(t, "containers_unhealthy"), Rule{
		Name: "one", Metric: "container_unhealthy", Target: KindContainer, Comparison: AboveOrEqual,
		Warning: &Level{Threshold: 1}, Message: "{{.Target}}: {{.Detail}}",
	}
	count.KeepFiringFor, count.Warning.For = 0, 0
	e := mustNew(t, count, each)
	down := &metrics.Update{
		Containers: []metrics.Container{{Name: "frontend", Status: "running", Health: metrics.StatusUnhealthy, Reason: "HTTP 500"}},
		Sources:    map[string]string{metrics.SectionContainers: "ping"},
	}
	if got := states(e.Evaluate(t0, down)); got != "containers_unhealthy /containers firing/warning, one /frontend firing/warning" {
		t.Fatalf("frontend down: %s", got)
	}
	waiting := &metrics.Update{Containers: []metrics.Container{}, Sources: map[string]string{metrics.SectionContainers: "none"}}
	stale := &metrics.Update{
		Containers: []metrics.Container{{Name: "frontend", Status: "running", Health: metrics.StatusHealthy}},
		Sources:    map[string]string{metrics.SectionContainers: "ping"}, Stale: map[string]bool{metrics.SectionContainers: true},
	}
	for name, u := range map[string]*metrics.Update{"waiting for the first poll": waiting, "stale": stale} {
		if trs := hold(e, 5*time.Second, time.Minute, u); len(trs) != 0 {
			t.Fatalf("%s: %s", name, states(trs))
		}
	}
	if a := e.Active(); len(a) != 2 || !a[0].Since.Equal(t0) || !a[1].Since.Equal(t0) {
		t.Fatalf("active %+v", a)
	}
	empty := &metrics.Update{Containers: []metrics.Container{}, Sources: map[string]string{metrics.SectionContainers: "ping"}}
	if got := states(e.Evaluate(t0.Add(2*time.Minute), empty)); got != "containers_unhealthy /containers resolved/warning" {
		t.Fatalf("the source lists none: %s", got)
	}
}

// A stale database section is an old answer: no data.
func TestDatabaseStaleIsNoData(t *testing.T) {
	r := defaultRule(t, "database_unreachable")
	r.KeepFiringFor, r.Warning.For = 0, 0
	e := mustNew(t, r)
	u := &metrics.Update{}
	u.Databases.Redis = metrics.Redis{Status: metrics.StatusUnreachable, Reason: "connection refused"}
	if got := states(e.Evaluate(t0, u)); got != "database_unreachable /redis firing/warning" {
		t.Fatalf("redis down: %s", got)
	}
	u = &metrics.Update{Stale: map[string]bool{metrics.SectionRedis: true}}
	u.Databases.Redis = metrics.Redis{Status: metrics.StatusHealthy}
	if trs := hold(e, 5*time.Second, time.Minute, u); len(trs) != 0 {
		t.Fatalf("stale healthy: %s", states(trs))
	}
}

// SortAlerts moves every alert exactly once into its place: a large list
// with many ties comes out a permutation of what went in, in order, and
// alerts that tie keep the order they came in (the recent list's
// transitions of one alert).
func TestSortAlertsPermutesLargeListsStably(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sev := []Severity{SeverityWarning, SeverityCritical}
	st := []State{StatePending, StateFiring, StateResolved}
	list := make([]metrics.Alert, 3000)
	for i := range list {
		list[i] = metrics.Alert{
			Rule: fmt.Sprintf("r%d", rng.IntN(3)), Host: fmt.Sprintf("h%d", rng.IntN(4)), Target: "gpu0",
			Severity: sev[rng.IntN(2)], State: st[rng.IntN(3)],
			Since: t0.Add(time.Duration(rng.IntN(5)) * time.Minute), At: t0.Add(time.Duration(rng.IntN(3)) * time.Minute),
			Message: strconv.Itoa(i), // where it came in
		}
	}
	in := slices.Clone(list)
	SortAlerts(list)
	seen := make([]bool, len(in))
	for k, a := range list {
		i, err := strconv.Atoi(a.Message)
		if err != nil || seen[i] || in[i] != a {
			t.Fatalf("position %d holds %+v: not the alert that came in at %s, or twice", k, a, a.Message)
		}
		seen[i] = true
		if k == 0 {
			continue
		}
		prev := &list[k-1]
		p, _ := strconv.Atoi(prev.Message)
		switch c := compareAlerts(prev, &a); {
		case c > 0:
			t.Fatalf("positions %d and %d out of order: %+v before %+v", k-1, k, *prev, a)
		case c == 0 && p > i:
			t.Fatalf("tied alerts that came in at %d and %d swapped", p, i)
		}
	}
}
