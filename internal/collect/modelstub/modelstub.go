// Package modelstub serves model servers' documented answers over
// loopback HTTP, for the benchmarks of one agent tick: the collect
// package's and the agent's.
package modelstub

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// Documented is four kinds of server and the file, in
// internal/collect/testdata, of the answer each documents.
var Documented = []struct{ Kind, File string }{
	{metrics.KindVLLM, "vllm_v0.10_metrics.txt"},
	{metrics.KindSGLang, "sglang_metrics.txt"},
	{metrics.KindTGI, "tgi_metrics.txt"},
	{metrics.KindOllama, "ollama_ps.json"},
}

// Serve starts a server that answers the file at path on /metrics and
// /api/ps, 200 on /health, and a model id on TGI's /info; it closes when
// tb ends. It returns the server's URL.
func Serve(tb testing.TB, path string) string {
	tb.Helper()
	body, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/info", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"model_id":"m"}`)) })
	for _, p := range []string{"/metrics", "/api/ps"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) })
	}
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return srv.URL
}
