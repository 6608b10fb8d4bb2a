package poll

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// fatalTB records Fatalf and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls wait with a fatalTB in its own goroutine, since Fatalf ends
// the goroutine it is called on, and returns what Fatalf was told.
func run(wait func(testing.TB)) string {
	tb := &fatalTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait(tb)
	}()
	<-done
	return tb.msg
}

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	t.Parallel()
	calls := 0
	msg := run(func(tb testing.TB) {
		Until(tb, "the third call", func() bool { calls++; return calls == 3 })
	})
	if msg != "" || calls != 3 {
		t.Fatalf("failed with %q after %d calls, want a return on the third", msg, calls)
	}
}

func TestUntilWithinFailsNamingWhatItWaitedFor(t *testing.T) {
	t.Parallel()
	start := time.Now()
	msg := run(func(tb testing.TB) {
		UntilWithin(tb, 50*time.Millisecond, "the door to open", func() bool { return false })
	})
	if msg != "timed out after 50ms waiting for the door to open" {
		t.Fatalf("message %q", msg)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("gave up after %s, before its deadline", took)
	}
}
