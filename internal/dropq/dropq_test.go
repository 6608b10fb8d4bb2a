package dropq

import (
	"slices"
	"sync"
	"testing"
)

// step is one call on the queue: Push(push...) when push is set, else Pop,
// which must return pop (ok false when pop is -1).
type step struct {
	push []int
	pop  int
}

func TestQueue(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limit   int
		steps   []step
		left    []int // Drain at the end
		dropped uint64
	}{
		{"under the limit keeps all", 3, []step{{push: []int{1, 2}}}, []int{1, 2}, 0},
		{"exactly full drops nothing", 3, []step{{push: []int{1}}, {push: []int{2}}, {push: []int{3}}}, []int{1, 2, 3}, 0},
		{"over the limit drops the oldest", 3,
			[]step{{push: []int{1}}, {push: []int{2}}, {push: []int{3}}, {push: []int{4}}, {push: []int{5}}}, []int{3, 4, 5}, 2},
		{"one batch larger than the limit keeps its newest", 2, []step{{push: []int{1, 2, 3, 4}}}, []int{3, 4}, 2},
		{"a pop makes room", 2, []step{{push: []int{1, 2}}, {pop: 1}, {push: []int{3}}}, []int{2, 3}, 0},
		{"pop after a drop gives the oldest kept", 2, []step{{push: []int{1, 2, 3}}, {pop: 2}, {pop: 3}, {pop: -1}}, nil, 1},
		{"pop on empty", 2, []step{{pop: -1}}, nil, 0},
		{"zero limit holds one", 0, []step{{push: []int{1}}, {push: []int{2}}}, []int{2}, 1},
		{"negative limit holds one", -5, []step{{push: []int{1, 2, 3}}}, []int{3}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := New[int](tc.limit)
			for i, s := range tc.steps {
				if s.push != nil {
					q.Push(s.push...)
					continue
				}
				got, ok := q.Pop()
				if want := s.pop; (want == -1) == ok || (ok && got != want) {
					t.Fatalf("step %d: Pop = %d, %v; want %d (-1: empty)", i, got, ok, want)
				}
			}
			if n := q.Len(); n != len(tc.left) {
				t.Errorf("Len = %d, want %d", n, len(tc.left))
			}
			if d := q.Dropped(); d != tc.dropped {
				t.Errorf("Dropped = %d, want %d", d, tc.dropped)
			}
			if got := q.Drain(); !slices.Equal(got, tc.left) {
				t.Errorf("Drain = %v, want %v", got, tc.left)
			}
			if got, n := q.Drain(), q.Len(); got != nil || n != 0 {
				t.Errorf("after Drain: Drain = %v, Len = %d; want empty", got, n)
			}
		})
	}
}

// TestQueueConcurrent pushes from several goroutines while one pops: every
// item is popped, left or counted as dropped, exactly once, and each
// producer's items come out in the order it pushed them.
func TestQueueConcurrent(t *testing.T) {
	const producers, each, limit = 4, 500, 16
	q := New[[2]int](limit)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				q.Push([2]int{p, i})
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var got [][2]int
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if it, ok := q.Pop(); ok {
			got = append(got, it)
		}
	}
	got = append(got, q.Drain()...)
	if n := uint64(len(got)) + q.Dropped(); n != producers*each {
		t.Fatalf("%d popped or left + %d dropped = %d, want %d", len(got), q.Dropped(), n, producers*each)
	}
	last := map[int]int{}
	for _, it := range got {
		if prev, ok := last[it[0]]; ok && it[1] <= prev {
			t.Fatalf("producer %d: item %d came after %d", it[0], it[1], prev)
		}
		last[it[0]] = it[1]
	}
}
