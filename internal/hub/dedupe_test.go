package hub

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/enroll"
	"github.com/sysperf/sysperf/internal/history"
	"github.com/sysperf/sysperf/internal/latency"
	"github.com/sysperf/sysperf/internal/natsx/natsxtest"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// TestStoredDuplicateCountsOnce: a sample the stream stores twice (here
// under two ids, as a copy re-sent after the stream's de-duplication
// window is) counts once in the hub's counters, history and latency
// windows, live and when the stream is replayed at the next start.
func TestStoredDuplicateCountsOnce(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	stores := func() Plugs {
		return Plugs{History: &countingHistory{Store: history.New()}, Latency: latency.New(latency.Config{Retain: time.Hour})}
	}
	check := func(h *Hub, p Plugs, when string) {
		t.Helper()
		poll.Until(t, when+": 3 samples and a duplicate handled", func() bool {
			st := h.Stats()
			return st.Samples == 3 && st.Dropped[DropDuplicate] == 1
		})
		if st := h.Stats(); len(st.Dropped) != 1 {
			t.Fatalf("%s: dropped %v", when, st.Dropped)
		}
		hist := p.History.(*countingHistory)
		if n, st := hist.added(), hist.Stats(); n != 3 || st.Duplicates != 0 {
			t.Fatalf("%s: history given %d samples, %d duplicates; want 3, 0", when, n, st.Duplicates)
		}
		inc, _, ok := p.Latency.(*latency.Tracker).HostIncrease("gpu01", "requests", time.Now(), time.Hour)
		if !ok || inc != 200 {
			t.Fatalf("%s: requests increase %v (ok %v), want 200", when, inc, ok)
		}
	}

	p1 := stores()
	h1, err := Start(context.Background(), cfg, p1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	js := natsxtest.Connect(t, h1.NATSURL(), as(t, "gpu01", enrol(t, h1, "gpu01", enroll.Agent))...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base := time.Now().Add(-time.Minute)
	for i, key := range []string{"k", "k", "k", "other"} {
		seq := min(i, 2)
		if key == "other" {
			seq = 1
		}
		s := &metrics.Sample{Host: "gpu01", Boot: "b1", Seq: uint64(seq), TS: base.Add(time.Duration(seq) * 5 * time.Second).UnixNano(),
			Interval: int64(5 * time.Second), Inference: &metrics.Inference{Counters: map[string]float64{"requests": float64(100 * seq)}}}
		ack, err := js.Publish(ctx, metrics.SampleSubject("gpu01"), encode(t, s), jetstream.WithMsgID(metrics.MsgID(s, key)))
		if err != nil {
			t.Fatal(err)
		}
		if ack.Duplicate {
			t.Fatalf("message %d taken as a duplicate by the stream", i)
		}
	}
	check(h1, p1, "live")
	if err := h1.Close(); err != nil {
		t.Fatal(err)
	}

	p2 := stores()
	h2 := startHub(t, cfg, p2)
	check(h2, p2, "replayed")
}

// countingHistory counts the samples the history is given.
type countingHistory struct {
	*history.Store
	n atomic.Int64
}

func (c *countingHistory) Add(f *view.Figures) {
	c.n.Add(1)
	c.Store.Add(f)
}

func (c *countingHistory) added() int64 { return c.n.Load() }
