// Package poll is the one way tests wait: they poll for the state they
// need instead of sleeping a fixed time, with one default deadline that
// is a hang guard, not a timing.
package poll

import (
	"testing"
	"time"
)

// Deadline is how long Until waits before it fails the test. It is
// generous because a loaded CI machine can be slow; a condition that
// holds returns at once.
const Deadline = 30 * time.Second

// Every is the pause between two checks.
const Every = 20 * time.Millisecond

// Until checks cond every Every until it holds, and fails the test naming
// what it waited for when Deadline passes first.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	UntilWithin(t, Deadline, what, cond)
}

// UntilWithin is Until with another deadline, for the few waits whose
// bound is part of what a test shows.
func UntilWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(Every)
	}
}
