package agent

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

func ids(b *backlog) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, e := range b.items {
		out = append(out, e.id)
	}
	return out
}

func mkEntry(i int, ts time.Time, size int) entry {
	return entry{id: fmt.Sprint(i), subject: "s", ts: ts, data: make([]byte, size)}
}

func TestBacklogBounds(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_767_268_800, 0)
	cases := []struct {
		name      string
		maxAge    time.Duration
		maxBytes  int
		pushes    int
		size      int
		step      time.Duration // between samples' ts
		now       time.Duration // after t0, when the last push happens
		wantIDs   []string
		wantDrops uint64
	}{
		{"all fit", time.Hour, 1000, 5, 100, time.Second, 5 * time.Second, []string{"0", "1", "2", "3", "4"}, 0},
		{"bytes drop the oldest", time.Hour, 350, 5, 100, time.Second, 5 * time.Second, []string{"2", "3", "4"}, 2},
		{"age drops the oldest", 10 * time.Second, 1 << 20, 5, 10, 5 * time.Second, 25 * time.Second, []string{"3", "4"}, 3},
		{"a sample bigger than the bound is dropped itself", time.Hour, 50, 2, 100, time.Second, 2 * time.Second, nil, 2},
	}
	// The disk backlog bounds alike; its segments of two samples each
	// make drops cross and delete segments.
	kinds := []struct {
		name string
		open func(t *testing.T, maxAge time.Duration, maxBytes int) queue
	}{
		{"memory", func(_ *testing.T, maxAge time.Duration, maxBytes int) queue { return newBacklog(maxAge, maxBytes) }},
		{"disk", func(t *testing.T, maxAge time.Duration, maxBytes int) queue {
			return openDisk(t, t.TempDir(), maxAge, maxBytes, 250, nil)
		}},
	}
	for _, k := range kinds {
		for _, tc := range cases {
			t.Run(k.name+"/"+tc.name, func(t *testing.T) {
				b := k.open(t, tc.maxAge, tc.maxBytes)
				for i := range tc.pushes {
					now := t0.Add(time.Duration(i) * tc.step)
					if i == tc.pushes-1 {
						now = t0.Add(tc.now)
					}
					b.push(mkEntry(i, t0.Add(time.Duration(i)*tc.step), tc.size), now)
				}
				if got := queuedIDs(b); !reflect.DeepEqual(got, tc.wantIDs) {
					t.Errorf("kept %v, want %v", got, tc.wantIDs)
				}
				n, bytes, dropped := b.stats()
				if dropped != tc.wantDrops || n != len(tc.wantIDs) || bytes != n*tc.size {
					t.Errorf("stats = %d samples, %d bytes, %d dropped; want %d dropped", n, bytes, dropped, tc.wantDrops)
				}
			})
		}
	}
}

func TestBacklogFIFOAndPop(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_767_268_800, 0)
	b := newBacklog(time.Hour, 1<<20)
	for i := range 3 {
		b.push(mkEntry(i, t0, 1), t0)
	}
	e, ok := b.peek(t0)
	if !ok || e.id != "0" {
		t.Fatalf("peek = %v %v, want the oldest", e.id, ok)
	}
	b.pop("1") // not the head: a concurrent drop made it so; nothing happens
	if got := ids(b); !reflect.DeepEqual(got, []string{"0", "1", "2"}) {
		t.Fatalf("pop of a non-head removed something: %v", got)
	}
	b.pop("0")
	b.pop("1")
	if e, _ := b.peek(t0); e.id != "2" {
		t.Fatalf("after two pops the head is %q", e.id)
	}
	if empty, _ := b.drained(); empty {
		t.Fatal("drained while a sample waits")
	}
	b.pop("2")
	if _, ok := b.peek(t0); ok {
		t.Fatal("peek on an empty backlog")
	}
	if _, bytes, _ := b.stats(); bytes != 0 {
		t.Errorf("bytes = %d when empty", bytes)
	}
}

// The agent logs the first drop of an outage and the total at its end; the
// backlog tells it which drop is the first.
func TestBacklogFirstDropPerOutage(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_767_268_800, 0)
	b := newBacklog(time.Hour, 2)
	var firsts int
	for i := range 5 {
		if _, first := b.push(mkEntry(i, t0, 1), t0); first {
			firsts++
		}
	}
	if firsts != 1 {
		t.Errorf("%d first drops in one outage", firsts)
	}
	b.pop("3")
	b.pop("4")
	empty, dropped := b.drained()
	if !empty || dropped != 3 {
		t.Errorf("drained = %v, %d dropped; want true, 3", empty, dropped)
	}
	for i := 5; i < 8; i++ {
		if _, first := b.push(mkEntry(i, t0, 1), t0); first {
			firsts++
		}
	}
	if firsts != 2 {
		t.Errorf("the next outage's first drop was not reported (%d)", firsts)
	}
}
