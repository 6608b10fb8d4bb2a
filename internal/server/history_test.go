package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sysperf/sysperf/internal/history"
	"github.com/sysperf/sysperf/internal/view"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// TestHistoryHostFilter runs the history endpoint over the real store: a
// host filter naming a host with no history is a 404 that names it and
// lists the known ones, a known host is served, and a bad range is still
// the client's 400 whatever the host.
func TestHistoryHostFilter(t *testing.T) {
	cpu := 42.0
	empty := history.New()
	st := history.New()
	for i, host := range []string{"gpu02", "gpu01"} {
		f := view.Of(&metrics.Sample{V: 1, Host: host, Boot: "b", Seq: uint64(i), TS: time.Now().UnixNano(), System: &metrics.System{CPUPercent: &cpu}})
		st.Add(&f)
	}
	withHosts := start(t, Config{History: st})
	noHosts := start(t, Config{History: empty})

	tests := []struct {
		name  string
		srv   *Server
		query string
		code  int
		want  string // substring of the body
		host  string // the host the served points hold; "" for an error
	}{
		{"known host", withHosts, "range=5m&host=gpu01", http.StatusOK, `"range":"5m"`, "gpu01"},
		{"other known host", withHosts, "range=15m&host=gpu02", http.StatusOK, `"range":"15m"`, "gpu02"},
		{"every host", withHosts, "range=5m", http.StatusOK, `"resolution_s":5`, ""},
		{"unknown host", withHosts, "range=5m&host=nope", http.StatusNotFound, `unknown host \"nope\" (known hosts: gpu01, gpu02)`, ""},
		{"unknown host, default range", withHosts, "host=nope", http.StatusNotFound, `unknown host \"nope\"`, ""},
		{"unknown host before any history", noHosts, "host=nope", http.StatusNotFound, `unknown host \"nope\": no host has history yet`, ""},
		{"bad range wins over unknown host", withHosts, "range=7y&host=nope", http.StatusBadRequest, `unknown range \"7y\"`, ""},
		{"host view", withHosts, "view=host&host=gpu02", http.StatusOK, `"range":"5m"`, "gpu02"},
		{"host view without a host", withHosts, "view=host", http.StatusBadRequest, `view \"host\" needs a host`, ""},
		{"fleet view with a host", withHosts, "view=fleet&host=gpu01", http.StatusBadRequest, `view \"fleet\" takes no host`, ""},
		{"unknown view", withHosts, "view=rack", http.StatusBadRequest, `unknown view \"rack\"`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := get(t, "http://"+tc.srv.Addr()+"/api/v1/history?"+tc.query)
			if code != tc.code {
				t.Fatalf("status %d, want %d; body %s", code, tc.code, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if !strings.Contains(body, tc.want) {
				t.Fatalf("body %s does not contain %s", body, tc.want)
			}
			if code != http.StatusOK {
				var e map[string]string
				if err := json.Unmarshal([]byte(body), &e); err != nil || e["error"] == "" || len(e) != 1 {
					t.Fatalf("error body %s is not the REST error shape {\"error\":...} (%v)", body, err)
				}
				return
			}
			if tc.host == "" {
				return
			}
			var h metrics.History
			if err := json.Unmarshal([]byte(body), &h); err != nil {
				t.Fatal(err)
			}
			// The sample lies in the newest slot or, across a slot
			// boundary, the one before: look at every point.
			seen := 0
			for _, p := range h.Points {
				for _, hs := range p.Hosts {
					if hs.Host != tc.host {
						t.Fatalf("point %s holds host %s, want only %s", p.Timestamp, hs.Host, tc.host)
					}
					seen++
				}
			}
			if seen != 1 {
				t.Fatalf("host %s in %d points, want 1", tc.host, seen)
			}
		})
	}
}

// starting is a HistoryReader of a hub still starting.
type starting struct{}

type startingErr struct{}

func (startingErr) Error() string     { return "history not ready: starting" }
func (startingErr) Unavailable() bool { return true }

func (starting) Window(time.Time, string, string) (metrics.History, error) {
	return metrics.History{}, startingErr{}
}

// TestNotReady: while Health has a reason /healthz says it, and a history
// that cannot answer yet is a 503 on the endpoint and a refused WebSocket,
// not a 400 and not an empty chart.
func TestNotReady(t *testing.T) {
	down := errors.New("waiting for NATS at nats://127.0.0.1:1: connection refused")
	var healthErr error = down
	var mu sync.Mutex
	srv := start(t, Config{History: starting{}, Health: func() error {
		mu.Lock()
		defer mu.Unlock()
		return healthErr
	}})
	srv.Publish(update(1))
	tests := []struct {
		name string
		path string
		code int
		body string
	}{
		{"healthz names the reason", "/healthz", http.StatusServiceUnavailable, "not ready: " + down.Error()},
		{"history is unavailable", "/api/v1/history?range=5m", http.StatusServiceUnavailable, `{"error":"history not ready: starting"}`},
		{"websocket is refused", "/ws/system", http.StatusServiceUnavailable, "history not ready"},
		{"performance is served", "/api/v1/performance", http.StatusOK, `"n":1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := get(t, "http://"+srv.Addr()+tc.path)
			if code != tc.code || !strings.Contains(body, tc.body) {
				t.Fatalf("%d %q, want %d with %q", code, body, tc.code, tc.body)
			}
		})
	}
	if _, resp, err := websocket.Dial(context.Background(), "ws://"+srv.Addr()+"/ws/system", &websocket.DialOptions{HTTPHeader: signedIn()}); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("WebSocket while the history is not ready: %v, want 503", err)
	}
	mu.Lock()
	healthErr = nil
	mu.Unlock()
	if code, _, body := get(t, "http://"+srv.Addr()+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz once healthy: %d %q", code, body)
	}
}

// TestHistoryFleetView: ?view=fleet serves the site's totals from the real
// store, the fleet view's history, with no host's figures in it; a reader
// without FleetWindow says it has none.
func TestHistoryFleetView(t *testing.T) {
	now := time.Now().Truncate(5 * time.Second)
	st := history.New()
	st.Record(fleetSite(now.Add(-5*time.Second), 30, false))
	st.Record(fleetSite(now, 50, false))
	s := start(t, Config{History: st})
	code, _, body := get(t, "http://"+s.Addr()+"/api/v1/history?view=fleet&range=5m")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var h metrics.History
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatal(err)
	}
	var utils []float64
	for _, p := range h.Points {
		if p.Host != nil || len(p.Hosts) > 0 || p.GPU != nil {
			t.Fatalf("fleet point %s holds a host's figures: %+v", p.Timestamp, p)
		}
		if p.Fleet != nil && p.Fleet.UtilMean != nil {
			utils = append(utils, *p.Fleet.UtilMean)
		}
	}
	// The mean over the site's three GPUs (util, util+20, 10).
	if len(utils) != 2 || math.Abs(utils[0]-30) > 1e-5 || math.Abs(utils[1]-130.0/3) > 1e-5 {
		t.Fatalf("fleet utilization means %v, want [30 43.33]", utils)
	}
	plain := start(t, Config{History: &windows{}})
	if code, _, body := get(t, "http://"+plain.Addr()+"/api/v1/history?view=fleet"); code != http.StatusNotImplemented || !strings.Contains(body, "no fleet history") {
		t.Fatalf("a reader without FleetWindow: %d %s", code, body)
	}
}

// TestHistoryEveryHostBounded: the history of every host is served up to
// history.MaxWindowHosts hosts and refused past them with a 422 that
// names what to ask instead; one host's history and the fleet's totals
// are still served, and a WebSocket client of every host connects
// without the history unless it named a range.
func TestHistoryEveryHostBounded(t *testing.T) {
	cpu := 42.0
	st := history.New()
	add := func(i int) {
		f := view.Of(&metrics.Sample{V: 1, Host: fmt.Sprintf("gpu%04d", i), Boot: "b", Seq: 1, TS: time.Now().UnixNano(), System: &metrics.System{CPUPercent: &cpu}})
		st.Add(&f)
	}
	for i := range history.MaxWindowHosts {
		add(i)
	}
	s := start(t, Config{History: st})
	s.Publish(update(1))
	if code, _, body := get(t, "http://"+s.Addr()+"/api/v1/history?range=5m"); code != http.StatusOK {
		t.Fatalf("every host's history at %d hosts: %d %.200s", history.MaxWindowHosts, code, body)
	}
	add(history.MaxWindowHosts)
	tests := []struct {
		query string
		code  int
		want  string
	}{
		{"range=5m", http.StatusUnprocessableEntity, fmt.Sprintf(`past %d hosts (%d have history): ask for one host (host=NAME) or the fleet's totals (view=fleet)`, history.MaxWindowHosts, history.MaxWindowHosts+1)},
		{"", http.StatusUnprocessableEntity, "ask for one host"},
		{"range=5m&host=gpu0007", http.StatusOK, `"range":"5m"`},
		{"range=60m&view=fleet", http.StatusOK, `"range":"60m"`},
	}
	for _, tc := range tests {
		code, _, body := get(t, "http://"+s.Addr()+"/api/v1/history?"+tc.query)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Fatalf("?%s: %d %.300s, want %d with %s", tc.query, code, body, tc.code, tc.want)
		}
	}
	if _, resp, err := dialQuery(t, s, "range=5m"); err == nil || resp == nil || resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("WebSocket of every host with a range: %v, want 422", err)
	}
	c := dial(t, s)
	if m := read(t, c); m["type"] != metrics.TypeUpdate {
		t.Fatalf("first message of a WebSocket of every host %v, want the update without a history", m["type"])
	}
}
