package sources

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// stubEngine serves the Engine API on a unix socket from testdata/engine,
// the way dockerd does: /containers/json lists running containers unless
// all=1, /containers/{id}/json inspects, an unknown id is a 404 with a
// message, and an optional /v1.NN prefix selects the API version.
type stubEngine struct {
	sock     string
	list     string // file under testdata/engine
	inspects atomic.Int32
	prefix   atomic.Value // the last version prefix seen
	hide     atomic.Value // a container name left out of the list
}

func startEngine(t *testing.T, list string) *stubEngine { return startEngineB(t, list) }

func startEngineB(t testing.TB, list string) *stubEngine {
	t.Helper()
	e := &stubEngine{sock: filepath.Join(t.TempDir(), "docker.sock"), list: list}
	e.prefix.Store("")
	e.hide.Store("")
	l, err := net.Listen("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(e.serve))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return e
}

func (e *stubEngine) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if strings.HasPrefix(path, "/v1.") {
		i := strings.Index(path[1:], "/") + 1
		e.prefix.Store(path[:i])
		path = path[i:]
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Api-Version", "1.43")
	switch {
	case path == "/containers/json":
		body, err := os.ReadFile(filepath.Join("testdata", "engine", e.list))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		body = filterList(body, r.URL.Query().Get("all") == "1", e.hide.Load().(string))
		_, _ = w.Write(body)
	case strings.HasPrefix(path, "/containers/") && strings.HasSuffix(path, "/json"):
		e.inspects.Add(1)
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/containers/"), "/json")
		body, err := os.ReadFile(filepath.Join("testdata", "engine", "inspect-"+id+".json"))
		if err != nil {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"No such container: ` + id + `"}`))
			return
		}
		_, _ = w.Write(body)
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"page not found"}`))
	}
}

func byName(list []metrics.Container) map[string]metrics.Container {
	m := map[string]metrics.Container{}
	for _, c := range list {
		m[c.Name] = c
	}
	return m
}

// pingServers are the four kinds of health endpoint a container can have.
type pingServers struct {
	healthy, failing, slow, refused string
	failNow                         atomic.Bool // flips "healthy" to 503
}

func startPings(t *testing.T) *pingServers {
	t.Helper()
	p := &pingServers{}
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.failNow.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"status":"healthy"}`))
	}))
	t.Cleanup(ok.Close)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(bad.Close)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	p.healthy, p.failing, p.slow = ok.URL+"/health", bad.URL+"/health", slow.URL+"/health"
	p.refused = "http://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/health"
	return p
}

// filterList does what the engine does with all=0 (running only) and
// leaves out a hidden container.
func filterList(body []byte, all bool, hide string) []byte {
	var list []map[string]any
	if err := json.Unmarshal(body, &list); err != nil {
		return body
	}
	var out []map[string]any
	for _, c := range list {
		if !all && c["State"] != "running" {
			continue
		}
		if names, _ := c["Names"].([]any); len(names) > 0 && names[0] == "/"+hide {
			continue
		}
		out = append(out, c)
	}
	b, _ := json.Marshal(out)
	return b
}

func pollContainers(t *testing.T, c *Containers) ([]metrics.Container, *metrics.Update) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u := apply(c.Poll(ctx))
	return u.Containers, u
}

func TestContainersPingAndEngine(t *testing.T) {
	t.Parallel()
	pings := startPings(t)
	for _, tc := range []struct {
		name, list, version string
		wantInspects        int32
	}{
		{"API 1.43 list and inspect", "containers.json", "1.43", 6},
		// Only the stopped and restarting ones need inspect for exit codes.
		{"API 1.52 list carries health", "containers-v1.52.json", "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := startEngine(t, tc.list)
			src, err := NewContainers(ContainersConfig{
				Targets: []ContainerTarget{
					{Name: "backend", HealthURL: pings.healthy},
					{Name: "frontend", HealthURL: pings.failing},
					{Name: "ai-detector", HealthURL: pings.healthy},
					{Name: "ai-llm", HealthURL: pings.slow},
					{Name: "postgres", HealthURL: pings.refused},
				},
				EngineHost:  "unix://" + eng.sock,
				APIVersion:  tc.version,
				PingTimeout: 300 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			list, u := pollContainers(t, src)
			got := byName(list)
			want := []struct {
				name, status string
				health       metrics.Status
				reason       string
			}{
				{"backend", "running", "healthy", ""},
				{"frontend", "running", "unhealthy", "HTTP 500"},
				// The ping answers, but the engine's healthcheck fails.
				{"ai-detector", "running", "unhealthy", "healthcheck failed 4 times"},
				{"ai-llm", "running", "unhealthy", "timeout"},
				{"postgres", StateMissing, "unhealthy", "connection refused; not found in the container engine"},
				{"worker", "exited", "none", "exit code 137"},
				{"redis", "restarting", "none", "restarted 7 times"},
			}
			if len(list) != len(want) {
				t.Fatalf("%d containers, want %d: %+v", len(list), len(want), list)
			}
			for i, w := range want[:5] {
				if list[i].Name != w.name {
					t.Errorf("position %d is %s, want the configured order (%s)", i, list[i].Name, w.name)
				}
			}
			for _, w := range want {
				c, ok := got[w.name]
				if !ok {
					t.Errorf("%s missing", w.name)
					continue
				}
				if c.Status != w.status || c.Health != w.health || !strings.Contains(c.Reason, w.reason) {
					t.Errorf("%s: status %q health %q reason %q, want %q %q %q", w.name, c.Status, c.Health, c.Reason, w.status, w.health, w.reason)
				}
				if len(c.Timeline) != 1 || c.Timeline[0].Health != c.Health {
					t.Errorf("%s: timeline %+v", w.name, c.Timeline)
				}
			}
			if tc.list == "containers.json" {
				if r := got["ai-detector"].Reason; !strings.Contains(r, "exit 1: curl: (22) The requested URL returned error: 503") {
					t.Errorf("ai-detector reason %q lacks the healthcheck's last output", r)
				}
				if r := got["worker"].Reason; !strings.Contains(r, "OOM killed") {
					t.Errorf("worker reason %q", r)
				}
			}
			// Engine-only containers without a ping keep the engine's own health.
			if got["ai-llm"].Status != "running" {
				t.Errorf("ai-llm status %q", got["ai-llm"].Status)
			}
			if eng.inspects.Load() != tc.wantInspects {
				t.Errorf("%d inspect calls, want %d", eng.inspects.Load(), tc.wantInspects)
			}
			if tc.version != "" && eng.prefix.Load() != "/v"+tc.version {
				t.Errorf("version prefix %q", eng.prefix.Load())
			}
			if u.Sources[metrics.SectionContainers] != "ping+engine" || u.Errors[metrics.SectionContainers] != "" {
				t.Errorf("sources %v errors %v", u.Sources, u.Errors)
			}
		})
	}
}

// TestContainersEngineHealthOnly: a configured container with no URL takes
// "starting" and "healthy" from the engine.
func TestContainersEngineHealthOnly(t *testing.T) {
	t.Parallel()
	eng := startEngine(t, "containers.json")
	src, err := NewContainers(ContainersConfig{
		Targets:    []ContainerTarget{{Name: "ai-llm"}, {Name: "backend"}},
		EngineHost: eng.sock, // a bare path works too
	})
	if err != nil {
		t.Fatal(err)
	}
	list, _ := pollContainers(t, src)
	got := byName(list)
	if c := got["ai-llm"]; c.Status != "running" || c.Health != "starting" {
		t.Errorf("ai-llm %+v", c)
	}
	if c := got["backend"]; c.Health != "healthy" {
		t.Errorf("backend %+v", c)
	}
	if c := got["frontend"]; c.Health != metrics.StatusNone {
		t.Errorf("frontend without a healthcheck: %+v", c)
	}
}

func TestContainersWithoutEngine(t *testing.T) {
	t.Parallel()
	pings := startPings(t)
	src, err := NewContainers(ContainersConfig{
		Targets:     []ContainerTarget{{Name: "backend", HealthURL: pings.healthy}, {Name: "frontend", HealthURL: pings.failing}, {Name: "nourl"}},
		PingTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	src.getenv = func(string) string { return "" }
	src.candidates = []string{filepath.Join(t.TempDir(), "no.sock")}
	list, u := pollContainers(t, src)
	got := byName(list)
	if len(list) != 3 {
		t.Fatalf("%+v", list)
	}
	if c := got["backend"]; c.Status != StateUnknown || c.Health != "healthy" {
		t.Errorf("backend %+v: without an engine the status is unknown, never assumed running", c)
	}
	if c := got["frontend"]; c.Health != "unhealthy" || c.Reason != "HTTP 500" {
		t.Errorf("frontend %+v", c)
	}
	if c := got["nourl"]; c.Status != StateUnknown || c.Health != StateUnknown || c.Reason != "no health_url, and no answer from a container engine" {
		t.Errorf("nourl %+v", c)
	}
	if u.Sources[metrics.SectionContainers] != "ping" {
		t.Errorf("sources %v", u.Sources)
	}
}

// TestContainersDiscovery finds the socket through DOCKER_HOST and through
// the well-known paths, and reports a socket nobody serves.
func TestContainersDiscovery(t *testing.T) {
	t.Parallel()
	eng := startEngine(t, "containers.json")
	t.Run("DOCKER_HOST", func(t *testing.T) {
		src, _ := NewContainers(ContainersConfig{})
		src.getenv = func(k string) string {
			if k == "DOCKER_HOST" {
				return "unix://" + eng.sock
			}
			return ""
		}
		list, _ := pollContainers(t, src)
		if len(list) != 6 {
			t.Fatalf("%d containers from DOCKER_HOST", len(list))
		}
	})
	t.Run("well-known path", func(t *testing.T) {
		src, _ := NewContainers(ContainersConfig{})
		src.getenv = func(string) string { return "" }
		src.candidates = []string{filepath.Join(t.TempDir(), "absent.sock"), eng.sock}
		list, _ := pollContainers(t, src)
		if len(list) != 6 {
			t.Fatalf("%d containers from the candidate path", len(list))
		}
	})
	t.Run("dead socket", func(t *testing.T) {
		dead := filepath.Join(t.TempDir(), "dead.sock")
		l, err := net.Listen("unix", dead)
		if err != nil {
			t.Fatal(err)
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		l.Close() // the file stays, nobody listens
		pings := startPings(t)
		src, _ := NewContainers(ContainersConfig{Targets: []ContainerTarget{{Name: "backend", HealthURL: pings.healthy}}, EngineHost: "unix://" + dead})
		list, u := pollContainers(t, src)
		if len(list) != 1 || list[0].Health != "healthy" || list[0].Status != StateUnknown {
			t.Fatalf("%+v", list)
		}
		if e := u.Errors[metrics.SectionContainers]; !strings.Contains(e, "connection refused") {
			t.Errorf("error %q", e)
		}
		if up, why := src.Up(); up || why == "" {
			t.Errorf("Up() = %v %q with a dead engine", up, why)
		}
	})
}

// TestContainersTimeline: bounded at 60 points, oldest first, follows the
// health, and a container gone from the engine loses its timeline.
func TestContainersTimeline(t *testing.T) {
	t.Parallel()
	pings := startPings(t)
	eng := startEngine(t, "containers.json")
	src, _ := NewContainers(ContainersConfig{Targets: []ContainerTarget{{Name: "backend", HealthURL: pings.healthy}}, EngineHost: eng.sock})
	t0 := time.Unix(1_764_576_000, 0)
	n := 0
	src.now = func() time.Time { n++; return t0.Add(time.Duration(n) * 5 * time.Second) }
	var list []metrics.Container
	for i := range 65 {
		pings.failNow.Store(i >= 62)
		list, _ = pollContainers(t, src)
	}
	tl := byName(list)["backend"].Timeline
	if len(tl) != timelineLen {
		t.Fatalf("timeline of %d points, want %d", len(tl), timelineLen)
	}
	if !tl[0].Timestamp.Equal(t0.Add(6*5*time.Second)) || !tl[59].Timestamp.Equal(t0.Add(65*5*time.Second)) {
		t.Errorf("timeline spans %v..%v", tl[0].Timestamp, tl[59].Timestamp)
	}
	for i, p := range tl {
		want := metrics.StatusHealthy
		if i >= 57 {
			want = metrics.StatusUnhealthy
		}
		if p.Health != want {
			t.Errorf("point %d: %s, want %s", i, p.Health, want)
		}
	}
	eng.hide.Store("worker")
	list, _ = pollContainers(t, src)
	if _, ok := byName(list)["worker"]; ok {
		t.Fatal("hidden container still listed")
	}
	src.mu.Lock()
	_, kept := src.timeline["worker"]
	src.mu.Unlock()
	if kept {
		t.Error("timeline of a vanished container kept")
	}
}

func TestNewContainersRejects(t *testing.T) {
	t.Parallel()
	for _, targets := range [][]ContainerTarget{
		{{Name: ""}},
		{{Name: "a"}, {Name: "a"}},
		{{Name: "a", HealthURL: "localhost:8000/health"}},
		{{Name: "a", HealthURL: "ftp://x/health"}},
	} {
		if _, err := NewContainers(ContainersConfig{Targets: targets}); err == nil {
			t.Errorf("accepted %+v", targets)
		}
	}
}
