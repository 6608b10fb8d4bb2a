package latency

import (
	"sort"
	"testing"
)

// expired is the binary search it shortcuts, for every cutoff around
// runs of every length up to past its look-ahead.
func TestExpiredMatchesSearch(t *testing.T) {
	t.Parallel()
	id := func(x int64) int64 { return x }
	for n := range 12 {
		run := make([]int64, n)
		for i := range run {
			run[i] = int64(10 * i)
		}
		for cutoff := int64(-5); cutoff <= int64(10*n+5); cutoff += 5 {
			want := sort.Search(n, func(i int) bool { return run[i] >= cutoff })
			if got := expired(run, id, cutoff); got != want {
				t.Fatalf("run of %d, cutoff %d: %d expired, want %d", n, cutoff, got, want)
			}
		}
	}
}
