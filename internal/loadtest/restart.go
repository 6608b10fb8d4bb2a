package loadtest

// The restart mode: the tool runs a hub of its own, fills its JetStream
// with Span of samples of every host, stamped over the past Span as an
// agents' backlog would be, stops the hub (SIGTERM) and starts it again on
// the same data directory. It reports how long the new hub took to answer
// /healthz 200 and to serve the same 60m history, of one host and of the
// fleet, as the old one did before it stopped; the host's history must
// then equal the old hub's, point for point (within float32 precision).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sysperf/sysperf/internal/history"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// RestartConfig is one restart run: Config's hosts and GPUs (its NATSURL,
// HubURL, Header, HubPID and DataDir are the tool's own hub's), the hub
// binary, and how much history to fill.
type RestartConfig struct {
	Config
	HubBin string
	Span   time.Duration // of samples per host; default 60m
	Window int           // publishes in flight per host while filling
}

// RestartResult holds the figures of a restart run.
type RestartResult struct {
	Stored  int64
	Dropped int64         // stamped before the 60m window by the time the hub read them
	Fill    time.Duration // publishing the backlog and the hub consuming it
	Health  time.Duration // from the new hub's start to /healthz 200
	// HealthCPU is the CPU time the new hub had spent by then: steadier
	// than Health on a machine shared with other work.
	HealthCPU    time.Duration
	HostHistory  time.Duration // … to the host's 60m history as complete as before
	FleetHistory time.Duration // … to the fleet's
	HostSlots    int           // slots with data in the host's 60m history before the restart
	FleetSlots   int
	// Compared is how many points of the host's 60m history were found
	// equal before and after the restart.
	Compared int
	// FleetGet is how long one more GET of the fleet's 60m history took
	// after the waits, FleetBytes its size. FleetErr is why the fleet's
	// history was not compared or read (then FleetHistory is 0). It is
	// every host's history up to history.MaxWindowHosts hosts (at 200
	// hosts about 50 MB), the fleet's totals past them.
	FleetGet   time.Duration
	FleetBytes int64
	FleetErr   error
	// RSSMax is the restarted hub's highest resident set from its start
	// until the host's 60m history was complete (the restore and the
	// replay), RSSEnd its resident set then.
	RSSMax, RSSEnd int64
	// Log holds the new hub's log lines about its restore and replay.
	Log []string
}

// restartWait bounds each wait of the restarted hub.
const restartWait = 3 * time.Minute

// Restart runs the restart mode.
func Restart(ctx context.Context, cfg RestartConfig, log *slog.Logger) (RestartResult, error) {
	var r RestartResult
	if cfg.Span <= 0 {
		cfg.Span = 60 * time.Minute
	}
	if cfg.Hosts <= 0 || cfg.Interval <= 0 || cfg.Window <= 0 || cfg.HubBin == "" {
		return r, errors.New("loadtest: hosts, interval, window and the hub binary are needed")
	}
	dir, err := os.MkdirTemp("", "sysperf-restart-")
	if err != nil {
		return r, fmt.Errorf("loadtest: %w", err)
	}
	defer os.RemoveAll(dir)
	httpAddr, natsAddr := freeAddr(), freeAddr()
	if httpAddr == "" || natsAddr == "" {
		return r, errors.New("loadtest: no free loopback port")
	}
	cfg.DataDir, cfg.CredsDir = filepath.Join(dir, "data"), filepath.Join(dir, "creds")
	cfg.NATSURL, cfg.HubURL = "nats://"+natsAddr, "http://"+httpAddr
	args := []string{"--http", httpAddr, "--nats-listen", natsAddr, "--data-dir", cfg.DataDir, "--log-level", "info"}

	hub, err := startHub(ctx, cfg.HubBin, args, filepath.Join(dir, "hub1.log"))
	if err != nil {
		return r, err
	}
	defer hub.stop()
	if _, err := waitFor(ctx, time.Now(), func() bool { return status(ctx, cfg.Config, "/healthz") == http.StatusOK }); err != nil {
		return r, fmt.Errorf("loadtest: first hub not healthy: %w", err)
	}
	tok, err := os.ReadFile(filepath.Join(cfg.DataDir, "http.token"))
	if err != nil {
		return r, fmt.Errorf("loadtest: hub token: %w", err)
	}
	cfg.Header = http.Header{}
	first, _, _ := strings.Cut(strings.TrimSpace(string(tok)), "\n")
	cfg.Header.Set("Authorization", "Bearer "+strings.TrimSpace(first))
	cfg.HubPID = hub.cmd.Process.Pid

	// Host n's samples every interval from the span's start to now, the
	// hosts' clocks spread over the interval.
	ic := backlog(cfg.Config, cfg.Window, time.Now(), cfg.Span)
	fill, err := Ingest(ctx, ic, log)
	if err != nil {
		return r, err
	}
	r.Stored, r.Dropped, r.Fill = fill.Stored, fill.Dropped, fill.Drained
	if !fill.Complete {
		return r, fmt.Errorf("loadtest: the hub handled %d of %d samples", fill.Consumed+fill.Dropped, fill.Stored)
	}
	hostPath, fleetPath := "/api/v1/history?range=60m&host="+HostName(cfg.HostShift), fleetHistory(cfg.Hosts)
	hostRef, _, err := filledSlots(ctx, cfg.Config, hostPath)
	if err != nil {
		return r, err
	}
	hostBefore, err := body(ctx, cfg.Config, hostPath)
	if err != nil {
		return r, err
	}
	fleetRef, _, err := filledSlots(ctx, cfg.Config, fleetPath)
	if err != nil {
		r.FleetErr, fleetRef = fmt.Errorf("before the restart: %w", err), nil
	}
	r.HostSlots, r.FleetSlots = len(hostRef), len(fleetRef)
	hub.stop()

	log2 := filepath.Join(dir, "hub2.log")
	began := time.Now()
	hub2, err := startHub(ctx, cfg.HubBin, args, log2)
	if err != nil {
		return r, err
	}
	defer hub2.stop()
	// What the restarted hub holds while it restores and replays the
	// hour, no agent connected: what its container must allow beside
	// the running hub's own figures.
	rssMax := peakRSS(hub2.cmd.Process.Pid, 100*time.Millisecond)
	defer rssMax()
	if r.Health, err = waitFor(ctx, began, func() bool { return status(ctx, cfg.Config, "/healthz") == http.StatusOK }); err != nil {
		return r, fmt.Errorf("loadtest: restarted hub not healthy: %w", err)
	}
	r.HealthCPU = procCPU(hub2.cmd.Process.Pid)
	// A history counts from when its body was received: decoding 60 MB
	// of fleet history is the tool's cost, not the hub's.
	var got time.Time
	if _, err = waitFor(ctx, began, func() bool { return complete(ctx, cfg.Config, hostPath, hostRef, &got) }); err != nil {
		return r, fmt.Errorf("loadtest: host history after the restart: %w", err)
	}
	r.HostHistory = got.Sub(began)
	// Before the fleet's history is asked for: at 256 hosts one GET of
	// every host's builds about 65 MB.
	r.RSSMax, r.RSSEnd = rssMax(), procRSS(hub2.cmd.Process.Pid)
	hostAfter, err := body(ctx, cfg.Config, hostPath)
	if err != nil {
		return r, err
	}
	if r.Compared, err = samePoints(hostBefore, hostAfter); err != nil {
		return r, fmt.Errorf("loadtest: host history after the restart: %w", err)
	}
	if fleetRef != nil {
		if _, err = waitFor(ctx, began, func() bool { return complete(ctx, cfg.Config, fleetPath, fleetRef, &got) }); err != nil {
			return r, fmt.Errorf("loadtest: fleet history after the restart: %w", err)
		}
		r.FleetHistory = got.Sub(began)
	}
	// What one fleet history costs once the hub is up.
	var getErr error
	r.FleetGet, r.FleetBytes, getErr = timedGet(ctx, cfg.Config, fleetPath)
	if getErr != nil && r.FleetErr == nil {
		r.FleetErr = fmt.Errorf("one GET after the restart: %w", getErr)
	}
	r.Log = grepLog(log2, "dashboard:", "history restored", "samples replayed", "read-back reopened")
	return r, nil
}

type hubProc struct {
	cmd  *exec.Cmd
	logf *os.File
	done chan struct{}
}

func startHub(ctx context.Context, bin string, args []string, logPath string) (*hubProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("loadtest: hub log: %w", err)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("loadtest: start %s: %w", bin, err)
	}
	p := &hubProc{cmd: cmd, logf: logf, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop ends the hub as a service manager does: SIGTERM, SIGKILL after 30 s.
func (p *hubProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.logf.Close()
}

// waitFor polls cond every 10 ms until it holds, and returns the time
// since began.
func waitFor(ctx context.Context, began time.Time, cond func() bool) (time.Duration, error) {
	deadline := time.Now().Add(restartWait)
	for !cond() {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("not within %s", restartWait)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return time.Since(began), nil
}

// fleetHistory is the 60m history of the fleet the run compares: every
// host's (the default view's) where the hub serves it, the fleet's totals
// past history.MaxWindowHosts hosts.
func fleetHistory(hosts int) string {
	if hosts > history.MaxWindowHosts {
		return "/api/v1/history?range=60m&view=fleet"
	}
	return "/api/v1/history?range=60m"
}

// getTimeout bounds one GET with its body: every host's 60m history of
// 256 hosts is about 65 MB, some seconds while the hub still works off
// the fill that preceded it.
const getTimeout = time.Minute

func get(ctx context.Context, cfg Config, path string) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, getTimeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.HubURL+path, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header = cfg.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelBody{resp.Body, cancel}
	return resp, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelBody) Close() error { defer b.cancel(); return b.ReadCloser.Close() }

func status(ctx context.Context, cfg Config, path string) int {
	resp, err := get(ctx, cfg, path)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// body GETs path and returns its body.
func body(ctx context.Context, cfg Config, path string) ([]byte, error) {
	resp, err := get(ctx, cfg, path)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("loadtest: %s: %s %v", path, resp.Status, err)
	}
	return b, nil
}

// samePoints compares two bodies of one history: every point whose
// timestamp both hold must have the same fields and values, numbers
// within 2^-10 of each other: a 60m slot other than the newest is kept in
// two 16-bit floats, and one a late sample changed may be read before
// the restart from its float32 copy and after it packed (a 2,000-host
// fill's 65.4379 % read 65.4167 after: its sum 785.25 of 12 samples kept
// as 785). A sample counted twice or lost moves a minute's mean by far
// more. It returns how many points were compared.
func samePoints(before, after []byte) (int, error) {
	var a, b struct {
		Points []map[string]any `json:"points"`
	}
	if err := json.Unmarshal(before, &a); err != nil {
		return 0, err
	}
	if err := json.Unmarshal(after, &b); err != nil {
		return 0, err
	}
	at := map[any]map[string]any{}
	for _, p := range b.Points {
		at[p["timestamp"]] = p
	}
	n := 0
	for _, p := range a.Points {
		q, ok := at[p["timestamp"]]
		// A point of nothing but its time is a minute that had only
		// begun when the old hub was read: what the restarted hub holds
		// of it came since, and there is nothing to compare.
		if !ok || len(p) == 1 {
			continue
		}
		if err := sameValue(p, q, ""); err != nil {
			return n, fmt.Errorf("point %v: %w", p["timestamp"], err)
		}
		n++
	}
	if n == 0 {
		return 0, errors.New("no point in common")
	}
	return n, nil
}

// sameValue compares two decoded JSON values, numbers to a relative
// 2^-10 (see samePoints).
func sameValue(a, b any, path string) error {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return fmt.Errorf("%s: %d fields before, %v after", path, len(x), b)
		}
		for k, v := range x {
			if err := sameValue(v, y[k], path+"."+k); err != nil {
				return err
			}
		}
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return fmt.Errorf("%s: %d items before, %v after", path, len(x), b)
		}
		for i := range x {
			if err := sameValue(x[i], y[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case float64:
		y, ok := b.(float64)
		if !ok || math.Abs(x-y) > 0x1p-10*max(math.Abs(x), math.Abs(y), 1e-3) {
			return fmt.Errorf("%s: %v before, %v after", path, a, b)
		}
	default:
		if a != b {
			return fmt.Errorf("%s: %v before, %v after", path, a, b)
		}
	}
	return nil
}

// timedGet reads path whole: how long it took, its size, and why it
// failed.
func timedGet(ctx context.Context, cfg Config, path string) (time.Duration, int64, error) {
	t := time.Now()
	resp, err := get(ctx, cfg, path)
	if err != nil {
		return time.Since(t), 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = errors.New(resp.Status)
	}
	return time.Since(t), n, err
}

// filledSlots returns the timestamps of the history's slots that hold
// data, and when its body was received.
func filledSlots(ctx context.Context, cfg Config, path string) (map[time.Time]bool, time.Time, error) {
	resp, err := get(ctx, cfg, path)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("loadtest: %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	at := time.Now()
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, at, fmt.Errorf("loadtest: %s: %s %v", path, resp.Status, err)
	}
	var h metrics.History
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, at, fmt.Errorf("loadtest: %s: %w", path, err)
	}
	slots := map[time.Time]bool{}
	for _, p := range h.Points {
		if p.GPU != nil || len(p.GPUs) > 0 || p.Host != nil || len(p.Hosts) > 0 || p.Fleet != nil {
			slots[p.Timestamp] = true
		}
	}
	return slots, at, nil
}

// complete reports whether the history at path has data in every slot
// of ref still inside its 60m range, and sets *at to when it was received.
func complete(ctx context.Context, cfg Config, path string, ref map[time.Time]bool, at *time.Time) bool {
	got, received, err := filledSlots(ctx, cfg, path)
	if err != nil {
		return false
	}
	*at = received
	from := time.Now().Add(-59 * time.Minute)
	for ts := range ref {
		if ts.After(from) && !got[ts] {
			return false
		}
	}
	return true
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ""
	}
	defer l.Close()
	return l.Addr().String()
}

func grepLog(path string, keys ...string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, k := range keys {
			if strings.Contains(sc.Text(), k) {
				out = append(out, sc.Text())
			}
		}
	}
	return out
}

// Report writes the restart figures.
func (r RestartResult) Report(w io.Writer, cfg RestartConfig) {
	fmt.Fprintf(w, "restart: %d hosts × %d GPUs, %s of samples every %s (%d stored, %d of them already too old, filled and consumed in %s)\n",
		cfg.Hosts, cfg.GPUs, cfg.Span, cfg.Interval, r.Stored, r.Dropped, r.Fill.Round(time.Millisecond))
	fmt.Fprintf(w, "/healthz 200        %s after the restarted hub's start (%s of its CPU by then)\n", r.Health.Round(time.Millisecond), r.HealthCPU.Round(time.Millisecond))
	fmt.Fprintf(w, "host 60m history    %s (%d slots with data, as before the restart; %d points equal to the old hub's)\n", r.HostHistory.Round(time.Millisecond), r.HostSlots, r.Compared)
	fmt.Fprintf(w, "restarted hub RSS   max %.1f MiB until the host's history was complete, %.1f MiB then\n", float64(r.RSSMax)/(1<<20), float64(r.RSSEnd)/(1<<20))
	fmt.Fprintf(w, "fleet 60m history   %s\n", fleetHistory(cfg.Hosts))
	if r.FleetHistory > 0 {
		fmt.Fprintf(w, "                    %s (%d slots)\n", r.FleetHistory.Round(time.Millisecond), r.FleetSlots)
	}
	if r.FleetErr != nil {
		fmt.Fprintf(w, "                    %v\n", r.FleetErr)
	}
	fmt.Fprintf(w, "one GET of it       %s, %.1f KB\n", r.FleetGet.Round(10*time.Microsecond), float64(r.FleetBytes)/1e3)
	for _, l := range r.Log {
		fmt.Fprintln(w, "hub log:", l)
	}
}
