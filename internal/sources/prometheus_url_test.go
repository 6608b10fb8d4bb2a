package sources

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// A Prometheus URL with a path and a query (a proxy that wants a token)
// is asked below that path with the query kept, and its errors never show
// the token.
func TestPrometheusURLWithQuery(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		if r.URL.Query().Get("token") != "s3cr3t" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/prom/-/ready" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"no"}`))
	}))
	defer srv.Close()
	p, err := NewPrometheus(srv.URL+"/prom/?token=s3cr3t", PrometheusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.endpoint("/api/v1/query?query=up"); got != srv.URL+"/prom/api/v1/query?query=up&token=s3cr3t" {
		t.Errorf("endpoint = %q", got)
	}
	u := &metrics.Update{}
	p.Poll(context.Background()).Apply(u)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 || seen[0] != "/prom/-/ready?token=s3cr3t" {
		t.Fatalf("requests %v, want /prom/-/ready?token=s3cr3t first", seen)
	}
	for _, r := range seen[1:] {
		if !strings.HasPrefix(r, "/prom/api/v1/query?query=") || !strings.HasSuffix(r, "&token=s3cr3t") {
			t.Errorf("query request %q", r)
		}
	}
	up, reason := p.Up()
	if !up {
		t.Errorf("down: %s", reason)
	}
	if got := u.Errors["prometheus"]; got == "" || strings.Contains(got, "s3cr3t") {
		t.Errorf("errors.prometheus = %q: want the failed queries, without the token", got)
	}
}
