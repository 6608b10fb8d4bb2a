package alerts

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func f(v float64) *float64 { return &v }

// gpuUpdate is an update with one GPU (host h1, index 0) at utilization v.
func gpuUpdate(v float64) *metrics.Update {
	return &metrics.Update{GPUs: []metrics.GPUView{{Host: "h1", Index: ptr(0), Utilization: f(v)}}}
}

func utilRule() Rule {
	return Rule{
		Name: "util", Metric: "gpu_utilization", Target: KindGPU, Comparison: Above,
		Warning: &Level{Threshold: 90, For: 2 * time.Minute},
		Message: "util {{.Value}} > {{.Threshold}}",
	}
}

// restarted is a new engine with rules that restores the state e saved,
// passed through JSON as a hub saves it.
func restarted(t *testing.T, e *Engine, rules ...Rule) *Engine {
	t.Helper()
	b, err := json.Marshal(e.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var st Snapshot
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	e2 := mustNew(t, rules...)
	e2.Restore(st)
	return e2
}

func mustNew(t *testing.T, rules ...Rule) *Engine {
	t.Helper()
	e, err := New(rules)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// step is one evaluation: the value at an offset from t0, and the states
// of the transitions it must cause (empty: none).
type step struct {
	at    time.Duration
	value *float64 // nil: no data
	want  []string // "state/severity" of each transition
}

func run(t *testing.T, e *Engine, mk func(v *float64) *metrics.Update, steps []step) {
	t.Helper()
	for i, s := range steps {
		got := e.Evaluate(t0.Add(s.at), mk(s.value))
		var states []string
		for _, tr := range got {
			states = append(states, string(tr.State)+"/"+string(tr.Severity))
		}
		if strings.Join(states, ",") != strings.Join(s.want, ",") {
			t.Fatalf("step %d (t0+%s, value %v): transitions %v, want %v", i, s.at, deref(s.value), states, s.want)
		}
	}
}

func deref(v *float64) any {
	if v == nil {
		return "no data"
	}
	return *v
}

func gpuMk(v *float64) *metrics.Update {
	return &metrics.Update{GPUs: []metrics.GPUView{{Host: "h1", Index: ptr(0), Utilization: v}}}
}

// every5s returns steps every 5 s from from to to (inclusive) at value v,
// expecting no transition.
func every5s(from, to time.Duration, v float64) []step {
	var out []step
	for d := from; d <= to; d += 5 * time.Second {
		out = append(out, step{at: d, value: f(v)})
	}
	return out
}

func concat(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestStateMachine(t *testing.T) {
	withHyst := utilRule()
	withHyst.Hysteresis = 5
	withKeep := utilRule()
	withKeep.KeepFiringFor = 30 * time.Second
	twoLevels := utilRule()
	twoLevels.Critical = &Level{Threshold: 98, For: time.Minute}
	twoLevels.Hysteresis = 2
	clearAt := utilRule()
	clearAt.Warning.Clear = f(70)
	zeroFor := utilRule()
	zeroFor.Warning.For = 0

	cases := []struct {
		name  string
		rule  Rule
		steps []step
	}{
		{"single spike never fires", utilRule(), concat(
			every5s(0, 30*time.Second, 50),
			[]step{{at: 35 * time.Second, value: f(99), want: []string{"pending/warning"}}},
			[]step{{at: 40 * time.Second, value: f(50), want: []string{"inactive/warning"}}},
			every5s(45*time.Second, 5*time.Minute, 50),
		)},
		{"sustained fires after for", utilRule(), concat(
			[]step{{at: 0, value: f(95), want: []string{"pending/warning"}}},
			every5s(5*time.Second, 115*time.Second, 95),
			[]step{{at: 120 * time.Second, value: f(95), want: []string{"firing/warning"}}},
			every5s(125*time.Second, 10*time.Minute, 95),
			[]step{{at: 11 * time.Minute, value: f(10), want: []string{"resolved/warning"}}},
			every5s(11*time.Minute+5*time.Second, 12*time.Minute, 10),
		)},
		{"for boundary: 1ns short is still pending", utilRule(), []step{
			{at: 0, value: f(91), want: []string{"pending/warning"}},
			{at: 2*time.Minute - time.Nanosecond, value: f(91)},
			{at: 2 * time.Minute, value: f(91), want: []string{"firing/warning"}},
		}},
		{"a dip restarts the timer without hysteresis", utilRule(), []step{
			{at: 0, value: f(95), want: []string{"pending/warning"}},
			{at: 60 * time.Second, value: f(89), want: []string{"inactive/warning"}},
			{at: 65 * time.Second, value: f(95), want: []string{"pending/warning"}},
			{at: 120 * time.Second, value: f(95)},
			{at: 185 * time.Second, value: f(95), want: []string{"firing/warning"}},
		}},
		{"hysteresis keeps a pending timer through a small dip", withHyst, []step{
			{at: 0, value: f(95), want: []string{"pending/warning"}},
			{at: 60 * time.Second, value: f(87)}, // below 90, above clear 85
			{at: 120 * time.Second, value: f(91), want: []string{"firing/warning"}},
			{at: 130 * time.Second, value: f(86)},
			{at: 140 * time.Second, value: f(85), want: []string{"resolved/warning"}},
		}},
		{"hysteresis: below clear value is needed to start again", withHyst, []step{
			{at: 0, value: f(88)}, // not breaching: nothing starts
			{at: 5 * time.Second, value: f(90)},
			{at: 10 * time.Second, value: f(90.5), want: []string{"pending/warning"}},
		}},
		{"explicit clear value", clearAt, []step{
			{at: 0, value: f(95), want: []string{"pending/warning"}},
			{at: 2 * time.Minute, value: f(95), want: []string{"firing/warning"}},
			{at: 3 * time.Minute, value: f(71)},
			{at: 4 * time.Minute, value: f(70), want: []string{"resolved/warning"}},
		}},
		{"keep_firing_for rides out one good sample", withKeep, []step{
			{at: 0, value: f(95), want: []string{"pending/warning"}},
			{at: 2 * time.Minute, value: f(95), want: []string{"firing/warning"}},
			{at: 2*time.Minute + 5*time.Second, value: f(10)},
			{at: 2*time.Minute + 10*time.Second, value: f(95)},
			{at: 2*time.Minute + 15*time.Second, value: f(10)},
			{at: 2*time.Minute + 44*time.Second, value: f(10)},
			{at: 2*time.Minute + 45*time.Second, value: f(10), want: []string{"resolved/warning"}},
		}},
		{"escalation to critical and back", twoLevels, []step{
			{at: 0, value: f(95), want: []string{"pending/warning"}},
			{at: 30 * time.Second, value: f(99), want: []string{"pending/critical"}},
			{at: 90 * time.Second, value: f(99), want: []string{"firing/critical"}},
			{at: 3 * time.Minute, value: f(97)}, // hysteresis: clear at 96
			{at: 4 * time.Minute, value: f(95), want: []string{"firing/warning"}},
			{at: 5 * time.Minute, value: f(80), want: []string{"resolved/warning"}},
		}},
		{"warning fires first, then critical", twoLevels, []step{
			{at: 0, value: f(95), want: []string{"pending/warning"}},
			{at: 2 * time.Minute, value: f(95), want: []string{"firing/warning"}},
			{at: 3 * time.Minute, value: f(99)},
			{at: 4 * time.Minute, value: f(99), want: []string{"firing/critical"}},
		}},
		{"for 0 fires on the first sample", zeroFor, []step{
			{at: 0, value: f(95), want: []string{"firing/warning"}},
			{at: 5 * time.Second, value: f(10), want: []string{"resolved/warning"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run(t, mustNew(t, tc.rule), gpuMk, tc.steps)
		})
	}
}

func TestNoData(t *testing.T) {
	rule := func(policy string) Rule {
		r := utilRule()
		r.NoData = policy
		return r
	}
	cases := []struct {
		name  string
		rule  Rule
		steps []step
	}{
		{"keep: firing stays firing, pending does not advance", rule(NoDataKeep), []step{
			{at: 0, value: f(95), want: []string{"pending/warning"}},
			{at: 1 * time.Minute, value: nil},
			{at: 3 * time.Minute, value: nil}, // past for, but no data: still pending
			{at: 4 * time.Minute, value: f(95), want: []string{"firing/warning"}},
			{at: 5 * time.Minute, value: nil},
			{at: 50 * time.Minute, value: nil},
			{at: 51 * time.Minute, value: f(10), want: []string{"resolved/warning"}},
		}},
		{"keep: NaN is no data, not a value that clears", rule(NoDataKeep), []step{
			{at: 0, value: f(95), want: []string{"pending/warning"}},
			{at: 2 * time.Minute, value: f(95), want: []string{"firing/warning"}},
			{at: 3 * time.Minute, value: f(math.NaN())},
			{at: 4 * time.Minute, value: f(math.Inf(1))},
			{at: 5 * time.Minute, value: f(10), want: []string{"resolved/warning"}},
		}},
		{"resolve: no data ends the alert", rule(NoDataResolve), []step{
			{at: 0, value: f(95), want: []string{"pending/warning"}},
			{at: 2 * time.Minute, value: f(95), want: []string{"firing/warning"}},
			{at: 3 * time.Minute, value: nil, want: []string{"resolved/warning"}},
			{at: 4 * time.Minute, value: nil},
			{at: 5 * time.Minute, value: f(95), want: []string{"pending/warning"}},
			{at: 6 * time.Minute, value: nil, want: []string{"inactive/warning"}},
		}},
		{"alert: missing data on a known target fires", rule(NoDataAlert), []step{
			{at: 0, value: nil}, // never seen: nothing to alert on
			{at: 5 * time.Second, value: f(10)},
			{at: 10 * time.Second, value: nil, want: []string{"pending/warning"}},
			{at: 130 * time.Second, value: nil, want: []string{"firing/warning"}},
			{at: 135 * time.Second, value: f(10), want: []string{"resolved/warning"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run(t, mustNew(t, tc.rule), gpuMk, tc.steps)
		})
	}

	t.Run("vanished target counts as no data", func(t *testing.T) {
		e := mustNew(t, rule(NoDataResolve))
		e.Evaluate(t0, gpuUpdate(95))
		e.Evaluate(t0.Add(2*time.Minute), gpuUpdate(95))
		got := e.Evaluate(t0.Add(3*time.Minute), &metrics.Update{})
		if len(got) != 1 || got[0].State != StateResolved || got[0].Target != "gpu0" || got[0].Host != "h1" {
			t.Fatalf("transitions %+v, want gpu0 on h1 resolved", got)
		}
	})
	t.Run("a NaN never becomes the alert's value", func(t *testing.T) {
		r := rule(NoDataKeep)
		r.Warning.For, r.Warning.Clear = 0, f(80)
		e := mustNew(t, r)
		e.Evaluate(t0, gpuUpdate(95))
		e.Evaluate(t0.Add(5*time.Second), gpuUpdate(math.NaN()))
		if a := e.Active(); len(a) != 1 || a[0].Value != 95 {
			t.Fatalf("active %+v, want firing at 95", a)
		}
		if _, err := json.Marshal(e.Snapshot()); err != nil {
			t.Fatalf("state cannot be saved: %v", err)
		}
	})
	t.Run("no-data alert says so", func(t *testing.T) {
		r := rule(NoDataAlert)
		r.Warning.For = 0
		e := mustNew(t, r)
		e.Evaluate(t0, gpuUpdate(10))
		got := e.Evaluate(t0.Add(5*time.Second), &metrics.Update{})
		if len(got) != 1 || got[0].State != StateFiring || !strings.HasSuffix(got[0].Message, "(no data)") {
			t.Fatalf("transitions %+v, want one firing no-data alert", got)
		}
	})
}

func TestAlertFields(t *testing.T) {
	e := mustNew(t, Defaults()...)
	u := &metrics.Update{GPUs: []metrics.GPUView{
		{Host: "h1", Index: ptr(0), Temperature: f(82)},
		{Host: "h1", Index: ptr(1), Temperature: f(40)},
		{Host: "h2", Index: ptr(0), Temperature: f(90)},
	}}
	e.Evaluate(t0, u)
	got := e.Evaluate(t0.Add(time.Minute), u)
	if len(got) != 2 {
		t.Fatalf("transitions %+v, want two (h1 gpu0 warning, h2 gpu0 critical)", got)
	}
	active := e.Active()
	if len(active) != 2 {
		t.Fatalf("active %+v", active)
	}
	crit, warn := active[0], active[1]
	want := metrics.Alert{
		Severity: SeverityWarning, Metric: "gpu_temperature", Value: 82, Threshold: 75,
		Message: "GPU temperature high: 82°C on h1 gpu0 (threshold: 75°C)",
		Host:    "h1", Target: "gpu0", State: StateFiring, Since: t0, Rule: "gpu_temperature",
	}
	if warn != want {
		t.Errorf("warning alert\n got %+v\nwant %+v", warn, want)
	}
	if crit.Severity != SeverityCritical || crit.Host != "h2" || crit.Threshold != 85 || crit.Value != 90 {
		t.Errorf("critical alert %+v", crit)
	}
}

// TestRestartMidPending checks that state handed over through Snapshot,
// JSON and Restore keeps a pending timer's start and a firing alert firing.
func TestRestartMidPending(t *testing.T) {
	rules := []Rule{utilRule(), func() Rule {
		r := utilRule()
		r.Name = "util_fast"
		r.Warning.For = 10 * time.Second
		return r
	}()}
	e1 := mustNew(t, rules...)
	for d := time.Duration(0); d <= 60*time.Second; d += 5 * time.Second {
		e1.Evaluate(t0.Add(d), gpuUpdate(95))
	}
	e2 := restarted(t, e1, rules...)
	active := e2.Active()
	if len(active) != 2 || active[0].Rule != "util_fast" || active[0].State != StateFiring || active[1].State != StatePending {
		t.Fatalf("restored active %+v, want util_fast firing and util pending", active)
	}
	if !active[1].Since.Equal(t0) {
		t.Errorf("pending since %v, want %v", active[1].Since, t0)
	}
	// The hub was down for 30 s. The first update after restart must not
	// re-announce util_fast, and util fires at t0+2m, not 2m after restart.
	if got := e2.Evaluate(t0.Add(90*time.Second), gpuUpdate(95)); len(got) != 0 {
		t.Fatalf("first evaluation after restart: %+v", got)
	}
	if got := e2.Evaluate(t0.Add(115*time.Second), gpuUpdate(95)); len(got) != 0 {
		t.Fatalf("before for: %+v", got)
	}
	got := e2.Evaluate(t0.Add(120*time.Second), gpuUpdate(95))
	if len(got) != 1 || got[0].Rule != "util" || got[0].State != StateFiring || !got[0].Since.Equal(t0) {
		t.Fatalf("at t0+2m: %+v, want util firing since t0", got)
	}

	t.Run("unknown rule and bad state are dropped", func(t *testing.T) {
		e := mustNew(t, utilRule())
		e.Restore(Snapshot{Alerts: []SavedAlert{
			{Rule: "gone", State: StateFiring},
			{Rule: "util", Host: "h1", Target: "gpu0", State: "weird"},
		}})
		if a := e.Active(); len(a) != 0 {
			t.Fatalf("active %+v", a)
		}
	})
	t.Run("restored firing alert resolves normally", func(t *testing.T) {
		e := restarted(t, e1, rules...)
		got := e.Evaluate(t0.Add(2*time.Minute), gpuUpdate(10))
		if len(got) != 2 || got[0].State != StateInactive || got[1].State != StateResolved {
			t.Fatalf("transitions %+v", got)
		}
		if a := e.Active(); len(a) != 0 {
			t.Fatalf("active %+v", a)
		}
		if s := e.Snapshot(); len(s.Alerts) != 0 {
			t.Fatalf("snapshot keeps %+v", s.Alerts)
		}
	})
}

// defaultUpdate builds an update in which the default rule r's metric has
// value v, for the host "h1".
func defaultUpdate(t *testing.T, r Rule, v float64) *metrics.Update {
	t.Helper()
	u := &metrics.Update{}
	host := func(sys metrics.HostView) {
		u.Hosts = []metrics.HostStatus{{Host: "h1", Online: true, System: sys}}
	}
	switch r.Metric {
	case "gpu_utilization":
		u.GPUs = []metrics.GPUView{{Host: "h1", Index: ptr(0), Utilization: f(v)}}
	case "gpu_temperature":
		u.GPUs = []metrics.GPUView{{Host: "h1", Index: ptr(0), Temperature: f(v)}}
	case "gpu_power":
		u.GPUs = []metrics.GPUView{{Host: "h1", Index: ptr(0), PowerWatts: f(v)}}
	case "gpu_power_percent":
		u.GPUs = []metrics.GPUView{{Host: "h1", Index: ptr(0), PowerWatts: f(v * 7), PowerLimitWatts: f(700)}}
	case "gpu_power_no_limit":
		u.GPUs = []metrics.GPUView{{Host: "h1", Index: ptr(0), PowerWatts: f(v)}}
	case "gpu_throttled":
		mask := uint64(0x1) // gpu_idle: not a breach
		if v >= 1 {
			mask |= 0x40 // hw_thermal_slowdown
		}
		u.GPUs = []metrics.GPUView{{Host: "h1", Index: ptr(0), ThrottleMask: &mask}}
	case "model_unhealthy", "model_loading":
		status := metrics.StatusUnreachable
		if r.Metric == "model_loading" {
			status = metrics.StatusLoading
		}
		u.Hosts = []metrics.HostStatus{{Host: "h1", Online: true, Models: map[string]metrics.ModelView{
			"rtdetr": {Status: status, Reason: "connection refused", Host: "h1"},
		}}}
	case "database_unreachable":
		u.Databases.PostgreSQL = metrics.PostgreSQL{Status: metrics.StatusUnreachable, Reason: "connection refused"}
	case "gpu_vram_percent":
		u.GPUs = []metrics.GPUView{{Host: "h1", Index: ptr(0), VRAMUsedGB: f(v * 0.8), VRAMTotalGB: f(80)}}
	case "model_latency_p95_ms":
		switch r.Match {
		case "rtdetr":
			u.Inference.RTDETR.P95 = f(v)
		case "nemotron":
			u.Inference.Nemotron.P95 = f(v)
		default:
			t.Fatalf("no builder for model %q", r.Match)
		}
	case "postgresql_connections_percent":
		u.Databases.PostgreSQL.ConnectionsActive = ptr(int(math.Round(v * 10)))
		u.Databases.PostgreSQL.ConnectionsMax = ptr(1000)
	case "postgresql_cache_hit_ratio":
		u.Databases.PostgreSQL.CacheHitRatio = f(v)
	case "redis_memory_mb":
		u.Databases.Redis.MemoryMB = f(v)
	case "redis_hit_ratio":
		u.Databases.Redis.HitRatio = f(v)
	case "host_cpu_percent":
		host(metrics.HostView{CPUPercent: f(v)})
	case "host_ram_percent":
		host(metrics.HostView{RAMUsedGB: f(v * 0.64), RAMTotalGB: f(64)})
	case "host_disk_percent":
		host(metrics.HostView{DiskUsedGB: f(v * 5), DiskTotalGB: f(500)})
	case "containers_unhealthy":
		u.Containers = []metrics.Container{{Name: "backend", Status: "running", Health: "healthy"}}
		for i := 0; i < int(v); i++ {
			u.Containers = append(u.Containers, metrics.Container{Name: "c" + string(rune('a'+i)), Status: "running", Health: "unhealthy"})
		}
	case "host_offline":
		u.Hosts = []metrics.HostStatus{{Host: "h1", Online: v < 1}}
	// GPU health (issue 14).
	case "gpu_xid_severity":
		code := map[float64]uint64{1: 94, 2: 79}[v]
		u.GPUs = []metrics.GPUView{{Host: "h1", Index: ptr(0), XIDs: []metrics.XIDView{{Code: 13, Count: 1}, {Code: code, Count: 1}}}}
	case "gpu_ecc_uncorrected":
		u.GPUs = []metrics.GPUView{{Host: "h1", Index: ptr(0), ECC: &metrics.ECC{VolatileUncorrected: ptr(uint64(v))}}}
	case "gpu_row_remap":
		u.GPUs = []metrics.GPUView{{Host: "h1", Index: ptr(0), ECC: &metrics.ECC{RemapPending: ptr(v >= 1), RemapFailure: ptr(v >= 2)}}}
	case "gpu_pcie_degraded":
		u.GPUs = []metrics.GPUView{{Host: "h1", Index: ptr(0), PCIe: &metrics.PCIeView{Degraded: ptr(v >= 1)}}}
	default:
		t.Fatalf("no builder for default rule %s's metric %s", r.Name, r.Metric)
	}
	return u
}

// breachValue is a value past level l of r that does not reach the
// next level, so the test sees exactly that severity.
func breachValue(r Rule, l, next *Level) float64 {
	up := r.Comparison == Above || r.Comparison == AboveOrEqual
	inclusive := r.Comparison == AboveOrEqual || r.Comparison == BelowOrEqual
	switch {
	case inclusive:
		return l.Threshold
	case next != nil && next.Threshold != l.Threshold:
		return (l.Threshold + next.Threshold) / 2
	case up:
		return l.Threshold * 1.05
	default:
		return l.Threshold * 0.9
	}
}

func TestEveryDefaultRuleFires(t *testing.T) {
	defaults := Defaults()
	seedRows := []string{
		"gpu_utilization", "gpu_temperature", "gpu_vram", "gpu_power", "rtdetr_latency_p95",
		"nemotron_latency_p95", "postgresql_connections", "postgresql_cache_hit", "redis_memory",
		"redis_hit_ratio", "host_cpu", "host_ram", "host_disk", "containers_unhealthy", "host_offline",
		// issue 12: everything that can be down, and power's fallback.
		"gpu_power_watts", "gpu_throttled", "model_down", "model_loading", "database_unreachable",
	}
	have := map[string]bool{}
	for _, r := range defaults {
		have[r.Name] = true
	}
	for _, name := range seedRows {
		if !have[name] {
			t.Errorf("default rule %s (a row of the seed's table) is missing", name)
		}
	}
	for _, r := range defaults {
		for _, sev := range []Severity{SeverityWarning, SeverityCritical} {
			t.Run(r.Name+"/"+string(sev), func(t *testing.T) {
				l, next := r.Warning, r.Critical
				if sev == SeverityCritical {
					l, next = r.Critical, nil
				}
				if l == nil {
					t.Fatalf("rule has no %s level", sev)
				}
				v := breachValue(r, l, next)
				e := mustNew(t, Defaults()...) // all rules at once: others must stay quiet
				u := defaultUpdate(t, r, v)
				maxFor := l.For
				var fired *Transition
				for d := time.Duration(0); d <= maxFor; d += 5 * time.Second {
					for _, tr := range e.Evaluate(t0.Add(d), u) {
						if tr.Rule != r.Name {
							t.Fatalf("rule %s fired on %s's update: %+v", tr.Rule, r.Name, tr)
						}
						if tr.State == StateFiring {
							if fired != nil && d < maxFor {
								continue
							}
							tr := tr
							fired = &tr
						}
					}
				}
				if fired == nil {
					t.Fatalf("value %v held for %s did not fire", v, maxFor)
				}
				a := fired.Alert
				if a.Severity != sev || a.Metric != r.Metric || a.Threshold != l.Threshold || a.Message == "" ||
					a.Target == "" || a.Since.IsZero() || a.State != StateFiring {
					t.Fatalf("alert %+v, want %s at threshold %v", a, sev, l.Threshold)
				}
				if sev == SeverityWarning && r.Critical != nil && r.Critical.Threshold != l.Threshold {
					// Held long enough for critical's for, it must not escalate.
					for d := maxFor; d <= maxFor+r.Critical.For+time.Minute; d += 5 * time.Second {
						for _, tr := range e.Evaluate(t0.Add(d), u) {
							t.Fatalf("warning-level value %v caused %+v", v, tr)
						}
					}
				}
			})
		}
	}
}

func TestNewRejectsBadRules(t *testing.T) {
	mod := func(fn func(r *Rule)) Rule {
		r := utilRule()
		fn(&r)
		return r
	}
	cases := []struct {
		name  string
		rules []Rule
		field string
	}{
		{"empty name", []Rule{mod(func(r *Rule) { r.Name = "" })}, "name"},
		{"duplicate name", []Rule{utilRule(), utilRule()}, "name"},
		{"unknown kind", []Rule{mod(func(r *Rule) { r.Target = "gpus" })}, "target"},
		{"metric of another kind", []Rule{mod(func(r *Rule) { r.Metric = "host_cpu_percent" })}, "metric"},
		{"bad comparison", []Rule{mod(func(r *Rule) { r.Comparison = "=>" })}, "comparison"},
		{"no level", []Rule{mod(func(r *Rule) { r.Warning = nil })}, "warning"},
		{"NaN threshold", []Rule{mod(func(r *Rule) { r.Warning.Threshold = math.NaN() })}, "warning.threshold"},
		{"negative for", []Rule{mod(func(r *Rule) { r.Warning.For = -time.Second })}, "warning.for"},
		{"critical milder than warning", []Rule{mod(func(r *Rule) { r.Critical = &Level{Threshold: 80} })}, "critical.threshold"},
		{"clear on the alerting side", []Rule{mod(func(r *Rule) { r.Warning.Clear = f(95) })}, "warning.clear"},
		{"negative hysteresis", []Rule{mod(func(r *Rule) { r.Hysteresis = -1 })}, "hysteresis"},
		{"negative keep_firing_for", []Rule{mod(func(r *Rule) { r.KeepFiringFor = -time.Second })}, "keep_firing_for"},
		{"bad no_data", []Rule{mod(func(r *Rule) { r.NoData = "ignore" })}, "no_data"},
		{"empty message", []Rule{mod(func(r *Rule) { r.Message = "" })}, "message"},
		{"broken template", []Rule{mod(func(r *Rule) { r.Message = "{{.Value" })}, "message"},
		{"unknown template field", []Rule{mod(func(r *Rule) { r.Message = "{{.Nope}}" })}, "message"},
		{"bad host glob", []Rule{mod(func(r *Rule) { r.Host = "[" })}, "host"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.rules)
			if err == nil {
				t.Fatal("New accepted it")
			}
			name := tc.rules[len(tc.rules)-1].Name
			if name == "" {
				name = "(unnamed)"
			}
			if !strings.Contains(err.Error(), `"`+name+`"`) || !strings.Contains(err.Error(), ": "+tc.field+": ") {
				t.Errorf("error %q does not name rule %q and field %q", err, name, tc.field)
			}
		})
	}
	if _, err := New(Defaults()); err != nil {
		t.Fatalf("defaults are invalid: %v", err)
	}
}

func TestSelectors(t *testing.T) {
	r := utilRule()
	r.Warning.For = 0
	r.Host = "gpu-*"
	r.Match = "gpu1"
	e := mustNew(t, r)
	u := &metrics.Update{GPUs: []metrics.GPUView{
		{Host: "gpu-a", Index: ptr(0), Utilization: f(99)},
		{Host: "gpu-a", Index: ptr(1), Utilization: f(99)},
		{Host: "cpu-a", Index: ptr(1), Utilization: f(99)},
		{Host: "gpu-b", Index: ptr(1), Utilization: f(99), Stale: true},
	}}
	got := e.Evaluate(t0, u)
	if len(got) != 1 || got[0].Host != "gpu-a" || got[0].Target != "gpu1" {
		t.Fatalf("transitions %+v, want only gpu-a/gpu1", got)
	}
}

func TestOfflineHostHasNoFigures(t *testing.T) {
	e := mustNew(t, Defaults()...)
	u := &metrics.Update{Hosts: []metrics.HostStatus{{Host: "h1", Online: false, System: metrics.HostView{CPUPercent: f(99)}}}}
	for d := time.Duration(0); d <= 10*time.Minute; d += 5 * time.Second {
		for _, tr := range e.Evaluate(t0.Add(d), u) {
			if tr.Rule != "host_offline" {
				t.Fatalf("an offline host's stale figures raised %+v", tr)
			}
		}
	}
	a := e.Active()
	if len(a) != 1 || a[0].Rule != "host_offline" || a[0].Severity != SeverityCritical {
		t.Fatalf("active %+v, want host_offline critical", a)
	}
}

// BenchmarkEvaluate is one update of 100 hosts with 8 GPUs each against
// the default rules, a tenth of the GPUs hot enough to hold alerts.
func BenchmarkEvaluate(b *testing.B) {
	u := &metrics.Update{}
	for h := range 100 {
		host := "gpu-host-" + string(rune('a'+h%26)) + string(rune('a'+h/26))
		u.Hosts = append(u.Hosts, metrics.HostStatus{Host: host, Online: true, System: metrics.HostView{
			CPUPercent: f(50), RAMUsedGB: f(100), RAMTotalGB: f(512), DiskUsedGB: f(1000), DiskTotalGB: f(4000),
		}})
		for i := range 8 {
			temp := 60.0
			if (h*8+i)%10 == 0 {
				temp = 80
			}
			u.GPUs = append(u.GPUs, metrics.GPUView{Host: host, Index: ptr(i), Utilization: f(70), Temperature: f(temp),
				VRAMUsedGB: f(60), VRAMTotalGB: f(141), PowerWatts: f(250)})
		}
	}
	e, err := New(Defaults())
	if err != nil {
		b.Fatal(err)
	}
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(5 * time.Second)
		e.Evaluate(now, u)
	}
	b.ReportMetric(float64(len(e.Active())), "alerts")
}

// TestContainerStates pins which container states count as unhealthy:
// a container nobody could ask about (no health URL, no engine socket:
// status "unknown") is no data, not a failure, so the example config's
// containers without a health_url raise no alert on a box without Docker.
func TestContainerStates(t *testing.T) {
	cases := []struct {
		name   string
		status string
		health metrics.Status
		want   any // 0, 1 or "no data"
	}{
		{"ping healthy, no engine", "unknown", "healthy", 0.0},
		{"ping failing, no engine", "unknown", "unhealthy", 1.0},
		{"no health URL, no engine", "unknown", "unknown", "no data"},
		{"nothing at all", "", "", "no data"},
		{"running without healthcheck", "running", "none", 0.0},
		{"running, starting", "running", "starting", 0.0},
		{"exited without healthcheck", "exited", "none", 1.0},
		{"missing from the engine", "missing", "unknown", 1.0},
		{"engine healthcheck failing", "running", "unhealthy", 1.0},
	}
	count := extractor(KindContainersCount, "containers_unhealthy")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := metrics.Container{Name: "c", Status: tc.status, Health: tc.health}
			if got := deref(containerUnhealthy(c)); got != tc.want {
				t.Errorf("container_unhealthy = %v, want %v", got, tc.want)
			}
			obs := count(&metrics.Update{Containers: []metrics.Container{c, {Name: "up", Status: "running", Health: "healthy"}}}, nil)
			want := 0.0
			if tc.want == 1.0 {
				want = 1
			}
			if len(obs) != 1 || obs[0].value == nil || *obs[0].value != want {
				t.Errorf("containers_unhealthy = %+v, want %v", obs, want)
			}
		})
	}
}

// Changes moves when an alert's timers do (it starts, fires, starts its
// keep-firing time, resolves), not when only its value does.
func TestChangesCountTimersNotValues(t *testing.T) {
	e, err := New([]Rule{{
		Name: "util", Metric: "gpu_utilization", Target: KindGPU, Comparison: Above,
		Warning: &Level{Threshold: 90, For: 10 * time.Second}, KeepFiringFor: 10 * time.Second, Message: "util",
	}})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	util := func(v float64) *metrics.Update {
		idx := 0
		return &metrics.Update{GPUs: []metrics.GPUView{{Host: "h1", Index: &idx, Utilization: &v}}}
	}
	steps := []struct {
		after   time.Duration
		v       float64
		changed bool
	}{
		{0, 50, false},                // nothing to alert on
		{5 * time.Second, 95, true},   // pending starts
		{10 * time.Second, 97, false}, // value only
		{15 * time.Second, 96, true},  // fires
		{20 * time.Second, 99, false}, // value only
		{25 * time.Second, 50, true},  // keep-firing time starts
		{30 * time.Second, 40, false}, // still within it
		{35 * time.Second, 40, true},  // resolved
		{40 * time.Second, 30, false}, // nothing to alert on
	}
	last := e.Changes()
	for _, s := range steps {
		e.Evaluate(at.Add(s.after), util(s.v))
		n := e.Changes()
		if (n != last) != s.changed {
			t.Fatalf("at +%s (%v): changes %d → %d, want changed=%v", s.after, s.v, last, n, s.changed)
		}
		last = n
	}
}
