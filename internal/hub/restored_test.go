package hub

import (
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// coveredHistory answers Covered as told and records what it was asked.
type coveredHistory struct {
	History
	cover bool
	asked []string
}

func (c *coveredHistory) Covered(host, boot string, seq uint64, _ time.Time) bool {
	c.asked = append(c.asked, fmt.Sprintf("%s %s %d", host, boot, seq))
	return c.cover
}

// TestRestoredSampleIsNotDecoded: a replayed sample the history already
// holds is known by its Nats-Msg-Id alone, counted as an accepted late
// sample and handled; any other goes on to be decoded.
func TestRestoredSampleIsNotDecoded(t *testing.T) {
	h := &coveredHistory{cover: true}
	in := newIngest(slog.New(slog.DiscardHandler), h, nil)
	if !in.restored("gpu01/boot-1/42/secret") {
		t.Fatal("a covered sample was not skipped")
	}
	if len(h.asked) != 1 || h.asked[0] != "gpu01 boot-1 42" {
		t.Fatalf("asked %q, want [gpu01 boot-1 42]", h.asked)
	}
	if st := in.Stats(); st.Samples != 1 || st.Late != 1 || in.handled.Load() != 1 {
		t.Fatalf("samples %d, late %d, handled %d; want 1 each", st.Samples, st.Late, in.handled.Load())
	}
	for _, id := range []string{"", "gpu01/boot-1/x/secret", "gpu01"} {
		if in.restored(id) {
			t.Errorf("id %q skipped", id)
		}
	}
	h.cover = false
	if in.restored("gpu01/boot-1/43/secret") || in.handled.Load() != 1 {
		t.Fatal("a sample the history does not hold was skipped")
	}
	// A history that cannot tell decodes every sample.
	if newIngest(slog.New(slog.DiscardHandler), nil, nil).restored("gpu01/boot-1/42/secret") {
		t.Fatal("skipped without a history")
	}
}
