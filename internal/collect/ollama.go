package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// Ollama reads an Ollama server, which has no Prometheus endpoint, from
// GET /api/ps: the models it holds in memory, each one's size, the part
// of it in VRAM, its context length and when it will be unloaded. A
// server holding no model is healthy with an empty list.
type Ollama struct {
	name   string
	url    string
	client *http.Client
}

// NewOllama returns a collector for the Ollama server at baseURL (e.g.
// "http://127.0.0.1:11434") whose figures go to Sample.Models[name].
func NewOllama(name, baseURL string, client *http.Client) *Ollama {
	return &Ollama{name: name, url: joinURL(baseURL, "/api/ps"), client: orDefaultClient(client)}
}

// Name implements Collector.
func (o *Ollama) Name() string { return o.name }

const noteOllama = "Ollama has no metrics endpoint: no latency, queue, tokens/s or KV-cache figures"

type ollamaPS struct {
	Models []struct {
		Name          string `json:"name"`
		Model         string `json:"model"`
		Size          uint64 `json:"size"`
		SizeVRAM      uint64 `json:"size_vram"`
		ExpiresAt     string `json:"expires_at"`
		ContextLength *int   `json:"context_length"`
		Details       struct {
			ParameterSize     string `json:"parameter_size"`
			QuantizationLevel string `json:"quantization_level"`
		} `json:"details"`
	} `json:"models"`
}

// Collect implements Collector.
func (o *Ollama) Collect(ctx context.Context, s *metrics.Sample) error {
	if s == nil {
		return fmt.Errorf("%s: nil sample", o.name)
	}
	ctx, cancel := finishBefore(ctx)
	defer cancel()
	setModel(s, o.name, o.read(ctx))
	return nil
}

func (o *Ollama) read(ctx context.Context) metrics.Model {
	m := metrics.Model{Kind: metrics.KindOllama}
	code, body, err := httpGet(ctx, o.client, o.url, maxJSONBody)
	switch {
	case err != nil:
		m.Status, m.Reason = metrics.StatusUnreachable, reasonOf(err)
		return m
	case code != http.StatusOK:
		m.Status, m.Reason = metrics.StatusUnhealthy, httpReason(code)
		return m
	}
	var ps ollamaPS
	if err := json.Unmarshal(body, &ps); err != nil {
		m.Status, m.Reason = metrics.StatusUnreachable, "bad JSON"
		return m
	}
	m.Status = metrics.StatusHealthy
	m.Notes = []string{noteOllama}
	m.Loaded = []metrics.Loaded{}
	var names []string
	var vram uint64
	for _, x := range ps.Models {
		name := x.Name
		if name == "" {
			name = x.Model
		}
		l := metrics.Loaded{
			Name: name, Size: x.Size, SizeVRAM: x.SizeVRAM, Context: x.ContextLength, ExpiresAt: x.ExpiresAt,
			Params: x.Details.ParameterSize, Quant: x.Details.QuantizationLevel,
		}
		if x.Size > 0 {
			share := float64(x.SizeVRAM) / float64(x.Size) * 100
			l.VRAMShare = &share
		}
		m.Loaded = append(m.Loaded, l)
		names = append(names, name)
		vram += x.SizeVRAM
		if x.ContextLength != nil && (m.ContextSize == nil || *x.ContextLength > *m.ContextSize) {
			c := *x.ContextLength
			m.ContextSize = &c
		}
	}
	m.Model = strings.Join(names, ", ")
	if len(ps.Models) > 0 {
		m.MemUsed = &vram
	}
	return m
}
