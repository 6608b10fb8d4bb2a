package server

import (
	"encoding/json"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/poll"
)

// BenchmarkFanOut is one tick of the load test's heaviest case inside one
// process: 200 hosts of 8 GPUs, 1,000 clients spread over the host views,
// each draining its socket. An op publishes the update and waits until
// every client's write has returned. cpu-ms/tick is the process's CPU per
// op: building and encoding the 200 views, queueing and the 1,000 writes,
// plus the clients' reads of the bytes (kernel copies, no decoding);
// last-write-ms is from PublishUpdate to the last write's return, queued-ms
// to every view built and its clients queued. ns/op
// holds the wait's polling too (internal/poll, every 20 ms).
func BenchmarkFanOut(b *testing.B) {
	const hosts, clients = 200, 1000
	s := start(b, Config{MaxClients: clients + 16})
	names := make([]string, hosts)
	for i := range names {
		names[i] = fmt.Sprintf("gpu%03d", i)
	}
	u := site(time.Now().UTC(), 8, names...)
	full, err := json.Marshal(u)
	if err != nil {
		b.Fatal(err)
	}
	s.PublishUpdate(u, full) // a host view's clients need its host known
	for i := range clients {
		conn, _ := rawDial(b, s, "view=host&host="+names[i%hosts])
		go func() { _, _ = io.Copy(io.Discard, conn) }()
	}
	poll.Until(b, "the clients to register", func() bool { return s.Clients() == clients })

	cpu0 := cpuTime()
	var last, queued time.Duration
	b.ResetTimer()
	for b.Loop() {
		s.PublishUpdate(u, full)
		t := s.cur.Load()
		poll.Until(b, "every client's write", func() bool { return t.written.Load() == clients })
		last += time.Unix(0, t.last.Load()).Sub(t.start)
		queued += time.Unix(0, t.queued.Load()).Sub(t.start)
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/tick")
	b.ReportMetric(float64(last)/float64(b.N)/1e6, "last-write-ms")
	b.ReportMetric(float64(queued)/float64(b.N)/1e6, "queued-ms")
}

// cpuTime is this process's user and system CPU so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
