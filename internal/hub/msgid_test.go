package hub

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sysperf/sysperf/internal/agent"
	"github.com/sysperf/sysperf/internal/collect"
	"github.com/sysperf/sysperf/internal/enroll"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// TestMsgIDCannotBePoisoned runs a real agent for gpu01 and lets the
// enrolled gpu02 claim gpu01's next de-duplication ids first, on gpu02's
// own subject (which its credential may publish), built from all that
// gpu02 can observe: gpu01's host, boot and sequence from the API, and
// the id format. JetStream de-duplicates across the stream, so any guess
// that hit would make gpu01's real sample a duplicate; every one of
// gpu01's samples must still be stored, and every forged one dropped and
// counted by the hub.
func TestMsgIDCannotBePoisoned(t *testing.T) {
	t.Parallel()
	const interval = 250 * time.Millisecond
	h := startHub(t, testConfig(t))
	credsA := enrol(t, h, "gpu01", enroll.Agent)
	credsB := enrol(t, h, "gpu02", enroll.Agent)

	cfg := agent.DefaultConfig()
	cfg.NATSURL, cfg.NATSCreds, cfg.HostID, cfg.Interval = h.NATSURL(), credsA, "gpu01", interval
	a, err := agent.New(cfg, agent.Plugs{Collectors: []collect.Collector{}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
		_ = a.Close()
	})

	// What gpu02 sees of gpu01 on the dashboard.
	u := performance(t, h, hasHost("gpu01"))
	seen := hostOf(&u, "gpu01")
	// Ids from 5 s ahead on, so the forgeries are stored first even on a
	// loaded machine.
	first := seen.Seq + uint64(5*time.Second/interval)
	const n = 16
	candidates := func(seq uint64) map[string]bool {
		base := "gpu01/" + seen.Boot + "/" + strconv.FormatUint(seq, 10)
		return set(
			base, // the id format before the key
			base+"/",
			base+"/"+seen.Boot,
			base+"/"+"gpu01",
			base+"/"+"00000000000000000000000000000000",
			metrics.MsgID(&metrics.Sample{Host: "gpu01", Boot: seen.Boot, Seq: seq}, "k"),
		)
	}
	js := jsAs(t, h, "gpu02", credsB)
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pcancel()
	forged, lastForged := 0, uint64(0)
	for seq := first; seq < first+n; seq++ {
		for id := range candidates(seq) {
			s := &metrics.Sample{Host: "gpu02", Boot: "evil", Seq: seq, TS: time.Now().UnixNano(), System: system()}
			ack, err := js.Publish(pctx, metrics.SampleSubject("gpu02"), encode(t, s), jetstream.WithMsgID(id))
			if err != nil {
				t.Fatalf("gpu02 publishing on its own subject: %v", err)
			}
			if ack.Duplicate {
				t.Fatalf("forged id %q taken for a duplicate", id)
			}
			forged++
			lastForged = ack.Sequence
		}
	}

	poll.Until(t, "gpu01 past the ids gpu02 claimed", func() bool {
		return hostOf(h.Latest(), "gpu01").Seq >= first+n
	})
	stored := storedSeqs(t, h, "gpu01")
	for seq := first; seq < first+n; seq++ {
		at, ok := stored[seq]
		if !ok {
			t.Errorf("gpu01's sample %d is not in the stream (dropped as a duplicate of a forgery)", seq)
			continue
		}
		if at < lastForged {
			t.Fatalf("gpu01's sample %d was stored before the forgeries: the test came too late", seq)
		}
	}
	poll.Until(t, "every forgery dropped and counted", func() bool {
		return h.Stats().Dropped[DropMsgID] == uint64(forged)
	})
}

func set(ids ...string) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// hostOf is host's status in u, or the zero one.
func hostOf(u *metrics.Update, host string) metrics.HostStatus {
	if u != nil {
		for _, s := range u.Hosts {
			if s.Host == host {
				return s
			}
		}
	}
	return metrics.HostStatus{}
}

// storedSeqs reads host's samples from the samples stream with the hub's
// own connection: sample seq → stream sequence.
func storedSeqs(t *testing.T, h *Hub, host string) map[uint64]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := h.js.OrderedConsumer(ctx, metrics.StreamSamples, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{metrics.SampleSubject(host)},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]uint64{}
	for {
		msg, err := c.Next(jetstream.FetchMaxWait(time.Second))
		if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			return out
		}
		if err != nil {
			t.Fatalf("read the samples stream: %v", err)
		}
		s, err := metrics.Decode(msg.Data())
		if err != nil {
			t.Fatal(err)
		}
		md, err := msg.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		out[s.Seq] = md.Sequence.Stream
		if md.NumPending == 0 {
			return out
		}
	}
}
