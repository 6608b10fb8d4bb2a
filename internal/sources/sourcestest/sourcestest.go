// Package sourcestest runs real services the hub's sources read, a
// redis-server and a Prometheus, as private processes for tests, and
// decides whether a service that is not installed skips a test or fails it.
// The sources' own tests and the end-to-end tests share it, so there is one
// way to do each.
package sourcestest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/poll"
)

// Need skips the test because a real service is missing, or fails it when
// the run promised every service (SYSPERF_REQUIRE_SERVICES=1, as .ci/run
// sets), so a CI machine without one cannot pass by skipping.
func Need(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("SYSPERF_REQUIRE_SERVICES") == "1" {
		t.Fatalf("required service missing: %s", msg)
	}
	t.Skipf("SKIPPED — service missing: %s (SYSPERF_REQUIRE_SERVICES=1 makes this fatal)", msg)
}

// FreeAddr returns a 127.0.0.1 address nobody listens on now, for a child
// process that must be told its port (and keep it across a restart).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Redis is a private redis-server, so that its counters are the test's
// alone and it can be stopped and started again on the same address.
type Redis struct {
	t    testing.TB
	addr string
	args []string
	cmd  *exec.Cmd
}

// StartRedis runs redis-server on a free port with no persistence and the
// extra arguments (e.g. "--requirepass", "pw"); it is stopped when the test
// ends.
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		Need(t, "redis-server binary: %v", err)
	}
	r := &Redis{t: t, addr: FreeAddr(t)}
	_, port, _ := net.SplitHostPort(r.addr)
	r.args = append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}, extra...)
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Addr is host:port.
func (r *Redis) Addr() string { return r.addr }

// Start runs the server (again) and waits until it accepts connections.
func (r *Redis) Start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", r.args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("redis-server: %v", err)
	}
	poll.Until(r.t, "redis-server listening on "+r.addr, func() bool {
		c, err := net.DialTimeout("tcp", r.addr, 100*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// Stop kills the server; stopping a stopped one does nothing.
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Prometheus is a real Prometheus (Debian's package) scraping one target
// every second.
type Prometheus struct {
	// URL is http://host:port of its API.
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartPrometheus runs Prometheus with a configuration of the test's own
// and waits until it is ready; it is stopped when the test ends. Its log
// is shown when the test fails.
func StartPrometheus(t testing.TB, scrapeTarget string) *Prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		Need(t, "prometheus binary (apt-get install prometheus): %v", err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: exporter\n    static_configs:\n      - targets: [%q]\n", scrapeTarget)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "prometheus.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	addr := FreeAddr(t)
	p := &Prometheus{URL: "http://" + addr, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("prometheus log:\n%s", b)
		}
	})

	c := &http.Client{Timeout: time.Second}
	poll.Until(t, "prometheus ready", func() bool {
		select {
		case <-p.done:
			t.Fatal("prometheus exited at start")
		default:
		}
		resp, err := c.Get(p.URL + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// Stop kills Prometheus and waits for it; stopping twice does nothing.
func (p *Prometheus) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}
