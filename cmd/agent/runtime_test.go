package main

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// TestTuneRuntime checks the agent's runtime defaults apply only where the
// environment leaves them: the runtime has already read GOMAXPROCS, GOGC
// and GOMEMLIMIT by the time init runs, so overriding them would undo what
// the user asked for.
func TestTuneRuntime(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	gc := debug.SetGCPercent(100)
	t.Cleanup(func() {
		runtime.GOMAXPROCS(procs)
		debug.SetGCPercent(gc)
	})
	for _, tc := range []struct {
		name      string
		env       map[string]string
		procs, gc int
	}{
		{"nothing set", nil, 1, gcPercent},
		{"GOMAXPROCS set", map[string]string{"GOMAXPROCS": "3"}, 3, gcPercent},
		{"GOGC set", map[string]string{"GOGC": "50"}, 1, 100},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "64MiB"}, 1, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// What the runtime would have set from the environment.
			runtime.GOMAXPROCS(3)
			debug.SetGCPercent(100)
			tuneRuntime(func(k string) string { return tc.env[k] })
			if got := runtime.GOMAXPROCS(0); got != tc.procs {
				t.Errorf("GOMAXPROCS = %d, want %d", got, tc.procs)
			}
			if got := debug.SetGCPercent(100); got != tc.gc {
				t.Errorf("GC percent = %d, want %d", got, tc.gc)
			}
		})
	}
}
