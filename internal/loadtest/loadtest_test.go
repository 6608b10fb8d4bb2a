package loadtest

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// The tool reads an update's age off the hub's own JSON without decoding
// it; this holds only while "type" and "timestamp" lead the message.
func TestUpdateStampReadsTheHubsJSON(t *testing.T) {
	at := time.Date(2026, 12, 3, 14, 0, 0, 123456789, time.UTC)
	b, err := json.Marshal(metrics.Update{Type: metrics.TypeUpdate, Timestamp: at})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := updateStamp(b)
	if !ok || !got.Equal(at) {
		t.Fatalf("updateStamp = %v, %v; want %v", got, ok, at)
	}
	f, err := json.Marshal(metrics.FleetUpdate{Type: metrics.TypeFleet, Timestamp: at})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := updateStamp(f); !ok || !got.Equal(at) {
		t.Fatalf("fleet updateStamp = %v, %v; want %v", got, ok, at)
	}
	h, err := json.Marshal(metrics.History{Type: metrics.TypeHistory})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := updateStamp(h); ok {
		t.Fatal("a history message was taken for an update")
	}
}

// The samples it plays must be what a hub accepts from a real agent.
func TestSampleDecodesAsAnAgentsWould(t *testing.T) {
	cfg := Config{GPUs: 8, Procs: 2, Interval: 5 * time.Second}
	s := Sample("load0001", "boot", 3, time.Now(), cfg, rand.New(rand.NewPCG(1, 2)))
	b, err := metrics.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	d, err := metrics.Decode(b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(d.GPUs) != 8 || len(d.GPUs[7].Processes) != 2 || d.GPUs[0].Processes[1].Model != "nemotron" {
		t.Fatalf("decoded sample lost its GPUs or processes: %+v", d.GPUs)
	}
	t.Logf("one %d-GPU sample encodes to %d bytes", len(d.GPUs), len(b))
}

func TestQuantile(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if q := quantile(d, 0.5); q != 5 {
		t.Fatalf("p50 = %d, want 5", q)
	}
	if q := quantile(d, 0.99); q != 10 {
		t.Fatalf("p99 = %d, want 10", q)
	}
	if q := quantile(nil, 0.99); q != 0 {
		t.Fatalf("empty p99 = %d, want 0", q)
	}
}
