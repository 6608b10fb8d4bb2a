package sources

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/sources/sourcestest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Modes of promStub.
const (
	stubUp       = iota // ready, answers every query
	stubNotReady        // a server still starting (or not Prometheus): 503
	stubRejects         // ready, but every query is refused
)

// promStub answers as a Prometheus server does: /-/ready, and instant
// queries with one hsi_gpu_utilization series for host gpu-box-9 (the
// GPU query) or an empty vector (the latency queries).
type promStub struct{ mode atomic.Int32 }

func (s *promStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mode := s.mode.Load()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case mode == stubNotReady:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("Service Unavailable"))
	case r.URL.Path == "/-/ready":
		_, _ = w.Write([]byte("Prometheus Server is Ready.\n"))
	case r.URL.Path != "/api/v1/query":
		http.NotFound(w, r)
	case mode == stubRejects:
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": parse error"}`))
	case r.URL.Query().Get("query") == gpuQuery:
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"hsi_gpu_utilization","host":"gpu-box-9","gpu":"0"},"value":[1764576000,"55"]}]}}`))
	default:
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	}
}

// TestPrometheusFailuresReachErrors: a dead or misconfigured server says
// why in errors["prometheus"] and changes nothing else of the update; once
// it answers again the entry is gone and its figures are back. The server
// first is a closed port, then the stub listening on that same port.
func TestPrometheusFailuresReachErrors(t *testing.T) {
	addr := sourcestest.FreeAddr(t) // closed again: connections are refused
	base := "http://" + addr
	src, err := NewPrometheus(base, PrometheusOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_764_576_000, 0)
	src.now = func() time.Time { return now }
	stub := &promStub{}

	steps := []struct {
		name  string
		setup func(t *testing.T)
		up    bool
		err   []string // substrings of errors["prometheus"]; nil: no entry
		fills bool     // gpu-box-9's GPU added
	}{
		{"closed port", func(*testing.T) {}, false, []string{"prometheus " + base, "connection refused"}, false},
		{"listening but not ready", func(t *testing.T) {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("listen again on the closed port %s: %v", addr, err)
			}
			srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: stub, ReadHeaderTimeout: time.Second}}
			srv.Start()
			t.Cleanup(srv.Close)
			stub.mode.Store(stubNotReady)
		}, false, []string{"prometheus " + base, "not ready (HTTP 503"}, false},
		{"recovered", func(*testing.T) { stub.mode.Store(stubUp) }, true, nil, true},
		{"queries rejected", func(*testing.T) { stub.mode.Store(stubRejects) }, true, []string{"prometheus " + base + ": query", "HTTP 400 bad_data", "more queries failed"}, false},
		{"recovered again", func(*testing.T) { stub.mode.Store(stubUp) }, true, nil, true},
	}
	for _, st := range steps {
		// Each step is a new check: past the cached answer's lifetime.
		now = now.Add(2 * time.Minute)
		st.setup(t)
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		reading := src.Poll(ctx)
		cancel()
		if up, why := src.Up(); up != st.up {
			t.Fatalf("%s: up %v (%s), want %v", st.name, up, why, st.up)
		}
		u := agentUpdate()
		u.Errors[metrics.SectionPostgreSQL] = "postgres connect: refused"
		reading.Apply(u)

		got, has := u.Errors["prometheus"]
		switch {
		case st.err == nil && has:
			t.Errorf("%s: errors[prometheus] = %q, want none", st.name, got)
		case st.err != nil && !has:
			t.Errorf("%s: no errors[prometheus]; errors %v", st.name, u.Errors)
		}
		for _, want := range st.err {
			if !strings.Contains(got, want) {
				t.Errorf("%s: errors[prometheus] = %q, want it to contain %q", st.name, got, want)
			}
		}
		// The rest of the update is the agent's and the other sources',
		// untouched.
		if u.Errors[metrics.SectionPostgreSQL] != "postgres connect: refused" || len(u.Errors) != 1+btoi(has) {
			t.Errorf("%s: other errors changed: %v", st.name, u.Errors)
		}
		if u.GPU.Host != "gpu-box-1" || *u.GPU.Utilization != 12 || *u.Inference.RTDETR.P95 != 82 || u.Sources[metrics.SectionGPU] != "agent:gpu-box-1" {
			t.Errorf("%s: agent's figures changed: gpu %+v inference %+v", st.name, u.GPU, u.Inference.RTDETR)
		}
		wantGPUs := 1
		if st.fills {
			wantGPUs = 2
		}
		if len(u.GPUs) != wantGPUs || (st.fills && (u.GPUs[1].Host != "gpu-box-9" || *u.GPUs[1].Utilization != 55)) {
			t.Errorf("%s: GPUs %+v, want %d", st.name, u.GPUs, wantGPUs)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
