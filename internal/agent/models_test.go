package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/collect"
	"github.com/sysperf/sysperf/internal/config"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// The models: list loads through internal/config like every setting, and
// --rtdetr-url / --llm-url stay the seed's two entries.
func TestModelsConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(file, []byte(`
models:
  - kind: vllm
    name: qwen
    url: http://127.0.0.1:8000
  - kind: ollama
    name: ollama
    url: http://127.0.0.1:11434
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	if err := config.Load("agent", []string{"--config", file, "--rtdetr-url", "http://127.0.0.1:8090", "--llm-url", "http://127.0.0.1:8091"}, &cfg); err != nil {
		t.Fatal(err)
	}
	want := []collect.ModelSpec{
		{Kind: "rtdetr", Name: "rtdetr", URL: "http://127.0.0.1:8090"},
		{Kind: "llamacpp", Name: "nemotron", URL: "http://127.0.0.1:8091"},
		{Kind: "vllm", Name: "qwen", URL: "http://127.0.0.1:8000"},
		{Kind: "ollama", Name: "ollama", URL: "http://127.0.0.1:11434"},
	}
	if got := cfg.ModelSpecs(); !slices.Equal(got, want) {
		t.Errorf("specs\n got %+v\nwant %+v", got, want)
	}
	var names []string
	for _, c := range defaultCollectors(cfg, testLogger(t)) {
		names = append(names, c.Name())
	}
	for _, n := range []string{"rtdetr", "nemotron", "qwen", "ollama"} {
		if !slices.Contains(names, n) {
			t.Errorf("no collector %q among %v", n, names)
		}
	}

	// A list entry that takes a seed's name, or a kind nobody reads, stops start-up.
	for _, bad := range []string{
		"models:\n  - {kind: llamacpp, name: nemotron, url: 'http://h:1'}\n",
		"models:\n  - {kind: mindie, name: m, url: 'http://h:1'}\n",
	} {
		if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		if err := config.Load("agent", []string{"--config", file, "--llm-url", "http://h:2"}, &cfg); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// A model server that hangs and one that answers garbage cost no other
// collector its sample: each says what went wrong in its own entry.
func TestModelServersIsolated(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("sglang:num_running_reqs{model_name= 12\n\x00\x01"))
	}))
	defer garbage.Close()
	ollama := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"models":[{"name":"gemma3","model":"gemma3","size":100,"size_vram":50,"context_length":4096,"expires_at":"2026-12-03T15:00:00Z","details":{}}]}`))
	}))
	defer ollama.Close()

	cfg := testConfig(400 * time.Millisecond)
	cfg.Models = []collect.ModelSpec{
		{Kind: metrics.KindVLLM, Name: "hung", URL: hang.URL},
		{Kind: metrics.KindSGLang, Name: "garbage", URL: garbage.URL},
		{Kind: metrics.KindOllama, Name: "ollama", URL: ollama.URL},
	}
	a := newAgent(t, cfg)
	s := a.gather(context.Background(), time.Now())
	if m := s.Models["hung"]; m.Status != metrics.StatusUnreachable || m.Reason != "timeout" {
		t.Errorf("hung vLLM: %+v", m)
	}
	if m := s.Models["garbage"]; m.Status != metrics.StatusHealthy || m.Extra["metrics_error"] == nil || m.Counters != nil {
		t.Errorf("garbage SGLang: %+v", m)
	}
	m := s.Models["ollama"]
	if m.Status != metrics.StatusHealthy || len(m.Loaded) != 1 || m.Loaded[0].VRAMShare == nil || *m.Loaded[0].VRAMShare != 50 {
		t.Errorf("Ollama lost its sample: %+v", m)
	}
	for _, name := range []string{"hung", "garbage", "ollama"} {
		if e := s.Errors[name]; e != "" {
			t.Errorf("errors[%s] = %q: a model server's failure is its entry's status", name, e)
		}
	}
}
