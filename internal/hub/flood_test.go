package hub

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/sysperf/sysperf/internal/agentcost"
	"github.com/sysperf/sysperf/internal/enroll"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// seqs records which (host, seq) samples reached the history.
type seqs struct {
	recorder
	mu   sync.Mutex
	seen map[string]map[uint64]bool
}

func (s *seqs) Add(smp *view.Figures) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[smp.Host] == nil {
		s.seen[smp.Host] = map[uint64]bool{}
	}
	s.seen[smp.Host][smp.Seq] = true
}

func (s *seqs) complete(host string, n uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := uint64(1); i <= n; i++ {
		if !s.seen[host][i] {
			return false
		}
	}
	return true
}

// oversizedPub authenticates as the credential in creds over plain TCP
// and announces a message over the server's limit; it returns what the
// server answered before closing the connection.
func oversizedPub(t *testing.T, addr string, kp nkeys.KeyPair, subject string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(line), "INFO ")), &info); err != nil {
		t.Fatalf("INFO %q: %v", line, err)
	}
	sig, err := kp.Sign([]byte(info.Nonce))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	connect, _ := json.Marshal(map[string]any{"verbose": false, "pedantic": false, "protocol": 1, "nkey": pub, "sig": base64.RawURLEncoding.EncodeToString(sig)})
	fmt.Fprintf(c, "CONNECT %s\r\nPING\r\nPUB %s %d\r\n", connect, subject, 2*natsx.MaxMsgSize)
	var got strings.Builder
	for {
		l, err := r.ReadString('\n')
		got.WriteString(l)
		if err != nil {
			return got.String()
		}
	}
}

func TestFloodLeavesTheHubHealthyAndEveryGoodSampleStored(t *testing.T) {
	hist := &seqs{seen: map[string]map[uint64]bool{}}
	cfg := testConfig(t)
	h := startHub(t, cfg, Plugs{History: hist})

	// The process's resident memory (the hub runs in it) before the
	// flood: what the "RSS back under 2x" is measured against.
	runtime.GC()
	base := rss(t)

	// Two agents publish every second while the flood runs.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	published := map[string]*uint64{}
	for _, host := range []string{"gpu01", "gpu02"} {
		js := jsAs(t, h, host, enrol(t, h, host, enroll.Agent))
		n := new(uint64)
		published[host] = n
		boot := host + "-boot"
		wg.Go(func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				*n++
				s := &metrics.Sample{Host: host, Boot: boot, Seq: *n, TS: time.Now().UnixNano()}
				pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := js.Publish(pctx, metrics.SampleSubject(host), encode(t, s), jetstream.WithMsgID(metrics.MsgID(s, "k")))
				cancel()
				if err != nil {
					t.Errorf("%s seq %d: %v", host, *n, err)
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}

	// The flood, from a third enrolled host (the only subject it may use):
	// 10,000 malformed messages, counted by the hub as invalid or of an
	// unknown version, and 1,000 announced over the size limit, which the
	// server refuses before reading them.
	evilCreds := enrol(t, h, "evil", enroll.Agent)
	nc, err := nats.Connect(h.NATSURL(), as(t, "evil", evilCreds)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	junk := make([]byte, 200)
	for range 10_000 {
		_, _ = rand.Read(junk)
		if err := nc.Publish(metrics.SampleSubject("evil"), junk); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(evilCreds)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(h.NATSURL(), "nats://")
	for i := range 1_000 {
		if got := oversizedPub(t, addr, kp, metrics.SampleSubject("evil")); !strings.Contains(got, "Maximum Payload") {
			t.Fatalf("oversized message %d: server said %q", i, got)
		}
	}

	malformed := func() uint64 {
		st := h.Stats()
		return st.Dropped[DropInvalid] + st.Dropped[DropVersion]
	}
	poll.Until(t, "every malformed message counted", func() bool { return malformed() == 10_000 })
	stop()
	wg.Wait()
	for host, n := range published {
		poll.Until(t, fmt.Sprintf("all %d samples of %s stored", *n, host), func() bool { return hist.complete(host, *n) })
	}
	if st := h.Stats(); st.Samples != *published["gpu01"]+*published["gpu02"] || malformed() != 10_000 {
		t.Fatalf("stats %+v: want every good sample and 10,000 malformed drops", st)
	}
	resp, err := http.Get("http://" + h.HTTPAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz %d after the flood", resp.StatusCode)
	}
	if raceDetector {
		// Measured so, the shadow memory the flood made resident (not the
		// hub's, and not returned even by debug.FreeOSMemory) takes the
		// process to about 1.9x; make test-go runs this test without -race.
		t.Logf("RSS not checked under -race: %d MiB before the flood, %d MiB after", base>>20, rss(t)>>20)
		return
	}
	// The hub must give the memory back by itself: no GC or
	// FreeOSMemory from here.
	var now uint64
	poll.UntilWithin(t, time.Minute, fmt.Sprintf("RSS back under twice its %d bytes before the flood", base), func() bool {
		now = rss(t)
		return now < 2*base
	})
	t.Logf("RSS %d MiB before the flood, %d MiB after", base>>20, now>>20)
}

// rss is this process's resident set (VmRSS).
func rss(t *testing.T) uint64 {
	t.Helper()
	m, err := agentcost.ReadMemory("/proc", os.Getpid())
	if err != nil {
		t.Skipf("no resident memory to measure: %v", err)
	}
	return m.RSS
}
