// Package loadtest plays a fleet against a running hub: H hosts of G GPUs
// publish real samples on NATS exactly as the agent does (pkg/metrics,
// JetStream publish with Nats-Msg-Id), and K browsers per view read the
// WebSocket feed. It reports what an operator of a large site would ask:
// the hub's CPU per sample and share of a core, its memory, the bytes each
// browser receives per tick and how late the updates arrive.
package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sysperf/sysperf/internal/enroll"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Config is what one run plays.
type Config struct {
	NATSURL   string
	NATSOpts  []nats.Option
	HubURL    string // http://host:port of the hub's dashboard
	Header    http.Header
	Hosts     int
	GPUs      int
	Procs     int    // GPU processes per GPU
	Figures   string // FiguresWalk ("" too) or FiguresUniform (walk.go)
	Interval  time.Duration
	Duration  time.Duration
	Warmup    time.Duration
	Browsers  int    // browsers on the default feed (or View)
	View      string // query string of /ws/system, e.g. "view=fleet" or "view=host&host=*" (* spreads over the hosts)
	HubPID    int    // 0: no CPU or memory figures
	HostShift int    // first host number, so two tools can share a hub
	// DataDir is the hub's data directory: each played host is enrolled
	// there (as `hub agent add` does) and connects with its own
	// credential, as real agents do on the embedded NATS. Empty: one
	// shared connection without a credential (an open NATS).
	DataDir string
	// CredsDir is where the enrolled hosts' credentials files go.
	CredsDir string
	// Creds, when set, are the hosts' credentials files already enrolled
	// (Enroll), so runs one after another (a prefill, then the live load)
	// do not enrol every host again.
	Creds []string
}

// Result holds the figures of one run.
type Result struct {
	Samples       int64
	PublishErrors int64
	AckP50        time.Duration
	AckP99        time.Duration
	Messages      int64 // updates received, all browsers
	Missed        int64 // updates a browser did not get that another did
	BytesPerTick  float64
	AgeP50        time.Duration
	AgeP99        time.Duration
	AgeMax        time.Duration
	HubCPU        time.Duration
	ToolCPU       time.Duration // this tool's own, on the cores it may share with the hub
	Wall          time.Duration
	HubRSSMax     int64
	HubRSSEnd     int64
	// HubMemory is the hub's Go memory at the end; HubMemoryOK false
	// when its /metrics could not be read.
	HubMemory   HubMemory
	HubMemoryOK bool
}

// Run plays the fleet until cfg.Duration has passed after the warm-up.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (Result, error) {
	if cfg.Hosts <= 0 || cfg.GPUs < 0 || cfg.Interval <= 0 || cfg.Duration <= 0 {
		return Result{}, errors.New("loadtest: hosts, interval and duration must be positive")
	}
	conns, err := connect(cfg)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		for _, c := range conns {
			c.nc.Close()
		}
	}()

	ctx, cancel := context.WithTimeout(ctx, cfg.Warmup+cfg.Duration)
	defer cancel()
	var measuring atomic.Bool
	pub := &publishers{}
	var wg sync.WaitGroup
	for i := range cfg.Hosts {
		c := conns[min(i, len(conns)-1)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			pub.host(ctx, c.js, cfg, i+cfg.HostShift, &measuring)
		}()
	}
	br := &browsers{}
	for i := range cfg.Browsers {
		// "host=*" spreads the browsers over the played hosts' views.
		view := strings.ReplaceAll(cfg.View, "host=*", "host="+HostName(cfg.HostShift+i%cfg.Hosts))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := br.read(ctx, cfg, view, &measuring); err != nil && ctx.Err() == nil {
				log.Warn("browser stopped", "err", err)
			}
		}()
	}

	select {
	case <-time.After(cfg.Warmup):
	case <-ctx.Done():
	}
	cpu0, tool0 := procCPU(cfg.HubPID), procCPU(os.Getpid())
	start := time.Now()
	measuring.Store(true)
	rssMax := peakRSS(cfg.HubPID, 500*time.Millisecond)
	<-ctx.Done()
	measuring.Store(false)
	wall := time.Since(start)
	cpu1, tool1 := procCPU(cfg.HubPID), procCPU(os.Getpid())
	hubRSSMax := rssMax()
	wg.Wait()

	r := Result{
		Samples: pub.samples.Load(), PublishErrors: pub.errors.Load(),
		Wall: wall, HubCPU: cpu1 - cpu0, ToolCPU: tool1 - tool0, HubRSSMax: hubRSSMax, HubRSSEnd: procRSS(cfg.HubPID),
	}
	if cfg.HubURL != "" {
		r.HubMemory, r.HubMemoryOK = hubMemory(context.Background(), cfg)
	}
	acks := pub.acks()
	r.AckP50, r.AckP99 = quantile(acks, 0.5), quantile(acks, 0.99)
	ages, perTick, msgs, missed := br.figures()
	r.AgeP50, r.AgeP99 = quantile(ages, 0.5), quantile(ages, 0.99)
	if len(ages) > 0 {
		r.AgeMax = ages[len(ages)-1]
	}
	r.BytesPerTick, r.Messages, r.Missed = perTick, msgs, missed
	return r, nil
}

// HostName is the name of played host n.
func HostName(n int) string { return fmt.Sprintf("load%04d", n) }

type conn struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// connect opens one connection per host, each with the host's own
// credential, when cfg.DataDir is set; else one shared connection.
func connect(cfg Config) ([]conn, error) {
	open := func(name string, extra ...nats.Option) (conn, error) {
		opts := append([]nats.Option{nats.Name(name), nats.Timeout(10 * time.Second)}, cfg.NATSOpts...)
		nc, err := nats.Connect(cfg.NATSURL, append(opts, extra...)...)
		if err != nil {
			return conn{}, fmt.Errorf("loadtest: nats connect %s as %s: %w", cfg.NATSURL, name, err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return conn{}, fmt.Errorf("loadtest: jetstream: %w", err)
		}
		return conn{nc, js}, nil
	}
	if cfg.DataDir == "" {
		c, err := open("sysperf-loadtest")
		return []conn{c}, err
	}
	creds := cfg.Creds
	if len(creds) != cfg.Hosts {
		var err error
		if creds, err = Enroll(cfg.DataDir, cfg.CredsDir, cfg.HostShift, cfg.Hosts); err != nil {
			return nil, err
		}
	}
	conns := make([]conn, 0, cfg.Hosts)
	for i, path := range creds {
		name := HostName(i + cfg.HostShift)
		auth, err := natsx.Auth{Creds: path}.Options()
		if err != nil {
			return conns, err
		}
		// The hub reads its enrolment file every second: a host enrolled
		// just now may be refused for that long.
		var c conn
		for try := 0; ; try++ {
			if c, err = open("sysperf-loadtest "+name, append(auth, nats.CustomInboxPrefix(natsx.InboxPrefix(name)))...); err == nil || try == 20 {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			return conns, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// Enroll enrols hosts shift … shift+n-1 in the hub's data directory and
// writes their credentials files into credsDir, returning their paths.
func Enroll(dataDir, credsDir string, shift, n int) ([]string, error) {
	if err := os.MkdirAll(credsDir, 0o700); err != nil {
		return nil, fmt.Errorf("loadtest: creds dir: %w", err)
	}
	store := enroll.Open(dataDir)
	paths := make([]string, 0, n)
	for i := range n {
		name := HostName(i + shift)
		b, err := store.Add(name, enroll.Agent)
		if err != nil {
			return paths, fmt.Errorf("loadtest: enrol %s: %w", name, err)
		}
		path := filepath.Join(credsDir, name+".creds")
		if err := enroll.WriteFile(path, b); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

type publishers struct {
	samples atomic.Int64
	errors  atomic.Int64
	mu      sync.Mutex
	ackLat  []time.Duration
}

func (p *publishers) acks() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := slices.Clone(p.ackLat)
	slices.Sort(a)
	return a
}

// host publishes one host's samples on its own schedule, spread over the
// interval as real agents' clocks are.
func (p *publishers) host(ctx context.Context, js jetstream.JetStream, cfg Config, n int, measuring *atomic.Bool) {
	name := HostName(n)
	boot := strconv.FormatInt(time.Now().UnixNano(), 36)
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	// Stands in for an agent's secret key; ids stay unique by boot.
	key := strconv.FormatUint(rng.Uint64(), 16)
	select {
	case <-time.After(time.Duration(rng.Int64N(int64(cfg.Interval)))):
	case <-ctx.Done():
		return
	}
	gen, err := NewGenerator(cfg, name, rng)
	if err != nil {
		p.errors.Add(1)
		return
	}
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for seq := uint64(0); ; seq++ {
		s := gen.Sample(boot, seq, time.Now())
		b, err := metrics.Encode(s)
		if err != nil {
			p.errors.Add(1)
			return
		}
		msg := &nats.Msg{Subject: metrics.SampleSubject(name), Data: b, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, metrics.MsgID(s, key))
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		sent := time.Now()
		_, err = js.PublishMsg(pctx, msg)
		cancel()
		// A publish the run's end cut short is neither: the end cancels
		// ctx before it stops measuring.
		if measuring.Load() && ctx.Err() == nil {
			if err != nil {
				p.errors.Add(1)
			} else {
				p.samples.Add(1)
				p.mu.Lock()
				p.ackLat = append(p.ackLat, time.Since(sent))
				p.mu.Unlock()
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// Sample builds one realistic sample: every section the agent fills, with
// figures that move, and processes of two models on each GPU.
func Sample(host, boot string, seq uint64, now time.Time, cfg Config, rng *rand.Rand) *metrics.Sample {
	f := func(lo, hi float64) *float64 { v := lo + rng.Float64()*(hi-lo); return &v }
	u := func(v uint64) *uint64 { return &v }
	s := &metrics.Sample{
		Host: host, Boot: boot, Seq: seq, TS: now.UnixNano(), Interval: int64(cfg.Interval),
		System: &metrics.System{
			CPUPercent: f(5, 95), Load1: f(0, 8), Load5: f(0, 8), Load15: f(0, 8),
			MemUsed: 200 << 30, MemTotal: 512 << 30, SwapTotal: 8 << 30, Uptime: 86400,
			Disks:       []metrics.Disk{{Mount: "/", Used: 300 << 30, Total: 1 << 40}},
			DiskReadBps: f(0, 1e8), DiskWriteBps: f(0, 1e8), NetRxBps: f(0, 1e9), NetTxBps: f(0, 1e9),
		},
	}
	for i := range cfg.GPUs {
		g := metrics.GPU{
			Index: i, UUID: fmt.Sprintf("GPU-%s-%02d", host, i), Name: "NVIDIA H200",
			Util: f(0, 100), MemUtil: f(0, 100), MemUsed: u(uint64(rng.Int64N(140 << 30))), MemTotal: u(143771 << 20),
			Temp: f(30, 80), Power: f(100, 700), PowerLimit: f(700, 700), Energy: f(1e6, 1e7),
			Processes: []metrics.Process{},
		}
		for p := range cfg.Procs {
			model := "rtdetr"
			if p%2 == 1 {
				model = "nemotron"
			}
			g.Processes = append(g.Processes, metrics.Process{
				PID: uint32(1000 + i*10 + p), Name: "python3", MemUsed: u(uint64(rng.Int64N(20 << 30))),
				SMUtil: f(0, 100), Container: model + "-server", Model: model,
			})
		}
		s.GPUs = append(s.GPUs, g)
	}
	return s
}

type browsers struct {
	mu     sync.Mutex
	ages   []time.Duration
	bytes  int64
	msgs   int64
	stamps map[int64]int // update timestamp → browsers that got it
	n      int
}

// read is one browser: it connects to the feed and notes each update's
// size and age (arrival minus the update's own timestamp).
func (b *browsers) read(ctx context.Context, cfg Config, view string, measuring *atomic.Bool) error {
	u, err := url.Parse(cfg.HubURL)
	if err != nil {
		return fmt.Errorf("hub url: %w", err)
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.Path = "/ws/system"
	u.RawQuery = view
	// A host's view exists once the host has published: until then the
	// hub answers 404, so the browser tries again, as the page does.
	var c *websocket.Conn
	for {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var err error
		// Offer permessage-deflate as every browser does, so the hub pays
		// what it pays for real browsers.
		c, _, err = websocket.Dial(dctx, u.String(), &websocket.DialOptions{HTTPHeader: cfg.Header, CompressionMode: websocket.CompressionContextTakeover})
		cancel()
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dial %s: %w", u.Redacted(), err)
		case <-time.After(time.Second):
		}
	}
	defer c.CloseNow()
	c.SetReadLimit(-1)
	b.mu.Lock()
	b.n++
	b.mu.Unlock()
	// One buffer per browser, reused: the readers run on the cores the hub
	// uses, all at once each tick, so what they allocate and collect is
	// taken from the hub right when it writes.
	var buf bytes.Buffer
	for {
		_, r, err := c.Reader(ctx)
		if err != nil {
			return err
		}
		// Arrival is when the frame's header is read, before the payload
		// is inflated and read: the tool's own decoding, on cores it shares
		// with the hub, is no part of the update's age.
		got := time.Now()
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return err
		}
		data := buf.Bytes()
		if !measuring.Load() {
			continue
		}
		ts, ok := updateStamp(data)
		if !ok {
			continue // the history sent on connect
		}
		b.mu.Lock()
		b.ages = append(b.ages, got.Sub(ts))
		b.bytes += int64(len(data))
		b.msgs++
		if b.stamps == nil {
			b.stamps = map[int64]int{}
		}
		b.stamps[ts.UnixNano()]++
		b.mu.Unlock()
	}
}

// updateStamp finds a performance_update's or fleet_update's timestamp without decoding the
// whole message: the tool must stay cheaper than the hub it measures.
func updateStamp(b []byte) (time.Time, bool) {
	head := b[:min(len(b), 256)]
	if !bytes.Contains(head, []byte(`"type":"`+metrics.TypeUpdate+`"`)) && !bytes.Contains(head, []byte(`"type":"`+metrics.TypeFleet+`"`)) {
		return time.Time{}, false
	}
	const key = `"timestamp":"`
	i := bytes.Index(head, []byte(key))
	if i < 0 {
		return time.Time{}, false
	}
	rest := head[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return time.Time{}, false
	}
	ts, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
	return ts, err == nil
}

func (b *browsers) figures() (ages []time.Duration, bytesPerTick float64, msgs, missed int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ages = slices.Clone(b.ages)
	slices.Sort(ages)
	if b.msgs > 0 {
		bytesPerTick = float64(b.bytes) / float64(b.msgs)
	}
	for _, n := range b.stamps {
		missed += int64(b.n - n)
	}
	return ages, bytesPerTick, b.msgs, missed
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(math.Ceil(q*float64(len(sorted))))-1]
}

// procCPU is the process's user+system CPU time from /proc/<pid>/stat.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it are fixed.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks
}

// peakRSS samples pid's resident set every interval until the function
// it returns is first called, which returns the highest seen (again on
// later calls).
func peakRSS(pid int, every time.Duration) func() int64 {
	stop, done := make(chan struct{}), make(chan struct{})
	var peak int64
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			peak = max(peak, procRSS(pid))
			select {
			case <-t.C:
			case <-stop:
				return
			}
		}
	}()
	return sync.OnceValue(func() int64 {
		close(stop)
		<-done
		return max(peak, procRSS(pid))
	})
}

// procRSS is the process's resident set in bytes from /proc/<pid>/status.
func procRSS(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// Report writes the figures as a small table.
func (r Result) Report(w io.Writer, cfg Config) {
	fmt.Fprintf(w, "load: %d hosts × %d GPUs every %s, %d browsers%s, %s measured\n",
		cfg.Hosts, cfg.GPUs, cfg.Interval, cfg.Browsers, viewNote(cfg.View), r.Wall.Round(time.Second))
	fmt.Fprintf(w, "samples published   %d (%.0f/s), errors %d, ack p50 %s p99 %s\n",
		r.Samples, float64(r.Samples)/r.Wall.Seconds(), r.PublishErrors, r.AckP50.Round(time.Microsecond), r.AckP99.Round(time.Microsecond))
	if cfg.HubPID > 0 {
		per := time.Duration(0)
		if r.Samples > 0 {
			per = r.HubCPU / time.Duration(r.Samples)
		}
		fmt.Fprintf(w, "hub CPU             %s per sample, %.1f %% of a core\n", per.Round(time.Microsecond), 100*r.HubCPU.Seconds()/r.Wall.Seconds())
		fmt.Fprintf(w, "hub RSS             max %.1f MiB, end %.1f MiB\n", float64(r.HubRSSMax)/(1<<20), float64(r.HubRSSEnd)/(1<<20))
	}
	if m := r.HubMemory; r.HubMemoryOK {
		const mib = 1 << 20
		fmt.Fprintf(w, "hub Go memory (end) heap alloc %.0f MiB, heap in use %.0f MiB, stacks %.0f MiB (%.0f goroutines), from the OS %.0f MiB, next GC %.0f MiB",
			m.HeapAlloc/mib, m.HeapInuse/mib, m.StackInuse/mib, m.Goroutines, m.Sys/mib, m.NextGC/mib)
		if m.Limit > 0 && m.Limit < 1<<62 {
			fmt.Fprintf(w, ", soft limit %.0f MiB", m.Limit/mib)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "load tool CPU       %.1f %% of a core (GOMAXPROCS %d)\n", 100*r.ToolCPU.Seconds()/r.Wall.Seconds(), runtime.GOMAXPROCS(0))
	if cfg.Browsers > 0 {
		fmt.Fprintf(w, "per browser         %.1f KB per tick, %d updates received, %d missed\n", r.BytesPerTick/1000, r.Messages, r.Missed)
		fmt.Fprintf(w, "update age          p50 %s p99 %s max %s\n", r.AgeP50.Round(time.Millisecond), r.AgeP99.Round(time.Millisecond), r.AgeMax.Round(time.Millisecond))
	}
}

func viewNote(v string) string {
	if v == "" {
		return " on the default feed"
	}
	return " on ?" + v
}
