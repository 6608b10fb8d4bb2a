package hub

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// tickSample is host's sample of tick k: every figure the update shows of
// it says k, so a part mixing two samples, or a list reused while still
// read, shows.
func tickSample(host string, k int) *metrics.Sample {
	s := agentSample(host, k, 2+k%2)
	x := float64(k)
	for i := range s.GPUs {
		s.GPUs[i].Util, s.GPUs[i].Temp = f64(x), f64(x)
	}
	s.Models[metrics.RoleRTDETR] = metrics.Model{Status: "healthy", MemUsed: u64(uint64(k) * gib)}
	return s
}

// consistent reports what in u is not of the one sample its host's status
// says it shows.
func consistent(u *metrics.Update) error {
	ticks := map[string]float64{}
	for _, h := range u.Hosts {
		ticks[h.Host] = float64(h.Seq - 1)
	}
	for _, g := range u.GPUs {
		if k := ticks[g.Host]; *g.Utilization != k || *g.Temperature != k {
			return fmt.Errorf("%s GPU %d shows tick %v/%v, its host tick %v", g.Host, *g.Index, *g.Utilization, *g.Temperature, k)
		}
	}
	for _, e := range u.Models {
		if k := ticks[e.Host]; e.Name == metrics.RoleRTDETR && *e.VRAMGB != k {
			return fmt.Errorf("%s model %s shows tick %v, its host tick %v", e.Host, e.Name, *e.VRAMGB, k)
		}
	}
	return nil
}

// The memory of a host's sample is reused once the merger has taken a
// newer sample of the host in its place (spares): not before, while the
// merger's part is still read, and never changing an update built.
func TestSparesReuse(t *testing.T) {
	t.Parallel()
	in := newIngest(slog.New(slog.DiscardHandler), nil, nil)
	var m merger
	send := func(k int) *held {
		t.Helper()
		if !in.sample(metrics.SampleSubject("a"), encode(t, tickSample("a", k))) {
			t.Fatal("rejected")
		}
		return in.snapshot(time.Time{})["a"].e
	}
	first := send(0)
	u0 := m.merge(now, in.snapshot(time.Time{}), 5*time.Second)
	want, _ := json.Marshal(u0)
	second := send(1)
	if second == first {
		t.Fatal("a sample reused the memory of the merger's part")
	}
	m.merge(now, in.snapshot(time.Time{}), 5*time.Second) // gives back first
	if third := send(2); third != first {
		t.Fatal("the memory of a replaced part was not reused")
	}
	u2 := m.merge(now, in.snapshot(time.Time{}), 5*time.Second)
	if err := consistent(&u2); err != nil {
		t.Fatal(err)
	}
	if u2.Hosts[0].Seq != 3 {
		t.Fatalf("update shows seq %d, want 3", u2.Hosts[0].Seq)
	}
	if got, _ := json.Marshal(u0); string(got) != string(want) {
		t.Fatalf("the first update changed when its sample's memory was reused:\n got %s\nwant %s", got, want)
	}
}

// While samples arrive on several goroutines and the merger builds
// update after update, each update shows each host's one sample
// whole, and the updates built earlier never change: run with -race, a
// sample's memory reused while still read is a data race.
func TestSparesConcurrent(t *testing.T) {
	t.Parallel()
	in := newIngest(slog.New(slog.DiscardHandler), nil, nil)
	const hosts, ticks = 4, 60
	bodies := make([][][]byte, hosts)
	for h := range hosts {
		for k := range ticks {
			bodies[h] = append(bodies[h], encode(t, tickSample(fmt.Sprintf("h%d", h), k)))
		}
	}
	var wg sync.WaitGroup
	for h := range hosts {
		wg.Go(func() {
			for k := range ticks {
				if !in.sample(metrics.SampleSubject(fmt.Sprintf("h%d", h)), bodies[h][k]) {
					t.Error("rejected")
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var m merger
	var kept []metrics.Update
	var wants [][]byte
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		u := m.merge(now, in.snapshot(time.Time{}), 5*time.Second)
		if err := consistent(&u); err != nil {
			t.Fatal(err)
		}
		if len(kept) < 200 {
			b, _ := json.Marshal(u)
			kept, wants = append(kept, u), append(wants, b)
		}
	}
	u := m.merge(now, in.snapshot(time.Time{}), 5*time.Second)
	for _, h := range u.Hosts {
		if h.Seq != ticks {
			t.Fatalf("%s at seq %d, want %d", h.Host, h.Seq, ticks)
		}
	}
	for i := range kept {
		if got, _ := json.Marshal(kept[i]); string(got) != string(wants[i]) {
			t.Fatalf("update %d changed after later samples:\n got %s\nwant %s", i, got, wants[i])
		}
	}
}

// Entries given back are kept for reuse up to the fleet's size (at
// least minSpares): what a shrunk fleet gave back goes, with what its
// old views point at.
func TestSparesBounded(t *testing.T) {
	t.Parallel()
	var sp spares
	for range 3 * minSpares {
		sp.put(&held{}, 2*minSpares)
	}
	if len(sp.free) != 2*minSpares {
		t.Fatalf("%d kept for a fleet of %d", len(sp.free), 2*minSpares)
	}
	sp.put(&held{}, 10)
	if len(sp.free) != minSpares {
		t.Fatalf("%d kept once the fleet shrank to 10, want %d", len(sp.free), minSpares)
	}
	if e := sp.get(); e == nil || len(sp.free) != minSpares-1 {
		t.Fatal("get did not take a kept entry")
	}
}
