package collect

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// ModelSpec is one entry of the agent's models: list: a model server of a
// kind, the name its figures go under (a key of Sample.Models) and its
// base URL. --rtdetr-url and --llm-url are the entries
// {rtdetr, rtdetr, url} and {llamacpp, nemotron, url}.
type ModelSpec struct {
	Kind string `yaml:"kind"`
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// MetricsURL is the Prometheus endpoint when it is not URL/metrics
	// (Triton serves it on its own port, 8002 by default).
	MetricsURL string `yaml:"metrics-url"`
	// Model keeps only the series of one served model when the server
	// hosts several (the model_name label of vLLM and SGLang, Triton's
	// model label).
	Model string `yaml:"model"`
	// Container and Command recognise the server's GPU processes, as
	// model-matchers do; without them the kind's usual command line is
	// matched (see KindMatchers).
	Container string `yaml:"container"`
	Command   string `yaml:"command"`
}

// Kinds lists the model server kinds the agent reads.
func Kinds() []string {
	return []string{metrics.KindRTDETR, metrics.KindLlamaCpp, metrics.KindVLLM, metrics.KindSGLang,
		metrics.KindTGI, metrics.KindTriton, metrics.KindOllama}
}

// Validate reports a spec with an unknown kind, a name that cannot be a
// key on the wire, or a URL that is not http(s).
func (m ModelSpec) Validate() error {
	if _, ok := kindTables[m.Kind]; !ok && m.Kind != metrics.KindRTDETR && m.Kind != metrics.KindLlamaCpp && m.Kind != metrics.KindOllama {
		return fmt.Errorf("model %q: kind %q: want one of %v", m.Name, m.Kind, Kinds())
	}
	if !metrics.ValidToken(m.Name) {
		return fmt.Errorf("model %q: name: only letters, digits, '-' and '_' are allowed, at most 128", m.Name)
	}
	for _, u := range []struct{ key, v string }{{"url", m.URL}, {"metrics-url", m.MetricsURL}} {
		if u.v == "" && u.key == "metrics-url" {
			continue
		}
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("model %s: %s: want an http:// or https:// URL", m.Name, u.key)
		}
	}
	if m.Command != "" {
		if _, err := regexp.Compile(m.Command); err != nil {
			return fmt.Errorf("model %s: command: %w", m.Name, err)
		}
	}
	return nil
}

// ValidateSpecs checks each spec and that no two share a name.
func ValidateSpecs(specs []ModelSpec) error {
	var errs []error
	seen := map[string]bool{}
	for i, m := range specs {
		if err := m.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("models[%d]: %w", i, err))
			continue
		}
		if seen[m.Name] {
			errs = append(errs, fmt.Errorf("models[%d]: name %q is used twice (--rtdetr-url is \"rtdetr\", --llm-url \"nemotron\")", i, m.Name))
		}
		seen[m.Name] = true
	}
	return errors.Join(errs...)
}

// NewModel returns the collector for spec; its figures go to
// Sample.Models[spec.Name] and its errors under the same name. A nil
// client gets one with a timeout.
func NewModel(spec ModelSpec, client *http.Client) (Collector, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	switch spec.Kind {
	case metrics.KindRTDETR:
		r := NewRTDETR(spec.URL, client)
		r.name = spec.Name
		return r, nil
	case metrics.KindLlamaCpp:
		l := NewLlamaCpp(spec.URL, client)
		l.name = spec.Name
		return l, nil
	case metrics.KindOllama:
		return NewOllama(spec.Name, spec.URL, client), nil
	}
	return newPromServer(spec, client), nil
}

// kindCommands are the command lines each kind's GPU processes usually
// have: vLLM's engine core renames itself VLLM::EngineCore, SGLang's
// scheduler sglang::scheduler, TGI's shards run text-generation-server,
// Ollama's runner is "ollama runner" (older builds ollama_llama_server).
var kindCommands = map[string]string{
	metrics.KindVLLM:     `(?i)vllm`,
	metrics.KindSGLang:   `(?i)sglang`,
	metrics.KindTGI:      `text-generation-(server|launcher)`,
	metrics.KindTriton:   `tritonserver`,
	metrics.KindOllama:   `ollama`,
	metrics.KindLlamaCpp: `llama-server|llama\.cpp`,
	metrics.KindRTDETR:   `(?i)rt-?detr`,
}

// KindMatchers returns the process matchers for specs: each spec's own
// container or command first, then, for a kind only one spec has, that
// kind's usual command line. Two servers of one kind need a container or
// command each to be told apart.
func KindMatchers(specs []ModelSpec) []ModelMatcher {
	var out []ModelMatcher
	count := map[string]int{}
	for _, s := range specs {
		count[s.Kind]++
		if s.Container != "" || s.Command != "" {
			out = append(out, ModelMatcher{Model: s.Name, Container: s.Container, Command: s.Command})
		}
	}
	for _, s := range specs {
		if s.Container != "" || s.Command != "" || count[s.Kind] != 1 {
			continue
		}
		if c := kindCommands[s.Kind]; c != "" {
			out = append(out, ModelMatcher{Model: s.Name, Command: c})
		}
	}
	return out
}
