package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sysperf/sysperf/internal/collect"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Config is the agent's settings. Tagged fields are flags, SYSPERF_* env
// vars and keys of the --config file (see internal/config); the untagged
// ones are for programs and tests that build an agent in-process.
type Config struct {
	NATSURL         string        `flag:"nats-url" usage:"NATS server the samples are published to"`
	NATSCreds       string        `flag:"nats-creds" usage:"credentials file from 'hub agent add <host>' (or a user .creds of an external NATS); its host must be --host-id"`
	NATSCA          string        `flag:"nats-ca" usage:"CA file that verifies the NATS server's certificate (TLS)"`
	NATSCert        string        `flag:"nats-cert" usage:"client certificate file for a NATS server that asks for one (with --nats-key)"`
	NATSKey         string        `flag:"nats-key" usage:"client certificate key file (with --nats-cert)"`
	HostID          string        `flag:"host-id" usage:"host name in subjects: letters, digits, '-' and '_' (default: the hostname, other bytes turned into '-')"`
	Interval        time.Duration `flag:"interval" usage:"time between samples; ticks are aligned to multiples of it"`
	Mounts          []string      `flag:"mounts" usage:"mount points whose disk usage is reported, comma separated"`
	Backlog         time.Duration `flag:"backlog" usage:"how long samples are kept while NATS is unreachable"`
	BacklogMaxBytes int           `flag:"backlog-max-bytes" usage:"bytes of samples the backlog may hold; the oldest samples are dropped beyond it"`
	BacklogDir      string        `flag:"backlog-dir" usage:"directory the backlog is kept in so that it survives restarts (under systemd: $STATE_DIRECTORY/backlog; empty: memory only, lost on restart)"`
	Once            bool          `flag:"once" usage:"collect one sample, print it as JSON and exit"`
	Config          string        `flag:"config" usage:"YAML file with these settings"`

	// Model servers. Empty means not monitored.
	RTDETRURL string `flag:"rtdetr-url" usage:"RT-DETRv2 server base URL, e.g. http://127.0.0.1:8090 (empty: not monitored)"`
	LLMURL    string `flag:"llm-url" usage:"llama.cpp server base URL, e.g. http://127.0.0.1:8091 (empty: not monitored)"`
	// BackendMetricsURL is the pipeline backend's Prometheus endpoint
	// (hsi_stage_duration_seconds, hsi_events_created_total).
	BackendMetricsURL string `flag:"backend-metrics-url" usage:"pipeline backend's Prometheus-text endpoint, e.g. http://127.0.0.1:8000/api/metrics (empty: not scraped)"`
	// ProcRoot is where /proc is read to name GPU processes. NVML reports
	// host pids, so the agent must run in the host's pid namespace.
	ProcRoot string `flag:"proc-root" usage:"procfs mount used to name GPU processes and their containers (the agent must see host pids)"`
	// Scrape replaces the default inference series (the detector's
	// /metrics and the backend's, see collect.DefaultScrapeTargets).
	Scrape []collect.ScrapeTarget `flag:"-" yaml:"scrape"`
	// ModelMatchers replace the default process-to-model matchers
	// (llama-server is nemotron, rtdetr is rtdetr).
	ModelMatchers []collect.ModelMatcher `flag:"-" yaml:"model-matchers"`
	// Models are the model servers to read besides --rtdetr-url and
	// --llm-url (which are the entries rtdetr and nemotron): kind (rtdetr,
	// llamacpp, vllm, sglang, tgi, triton, ollama), name and url each.
	Models []collect.ModelSpec `flag:"-" yaml:"models"`
}

// Plugs are the agent's parts that can be plugged in instead of the ones
// built from the settings: nil fields (all of them, for cmd/agent) are
// built by New; tests set them.
type Plugs struct {
	// Collectors replaces the default collectors (host, GPU and the model
	// servers configured above, see defaultCollectors).
	Collectors []collect.Collector
	// Annotate runs on every merged sample before it is published, e.g. to
	// attribute GPU processes to containers and models. ctx ends a tenth
	// of the interval later; a returned error lands in
	// Errors[metrics.CollectorProcs] with the sample still published.
	// Nil with Collectors nil: the process annotator of the settings.
	Annotate func(context.Context, *metrics.Sample) error
}

// DefaultConfig is the configuration before flags, env and file apply.
// Under systemd with StateDirectory= the backlog is kept in
// $STATE_DIRECTORY/backlog; elsewhere it is in memory unless --backlog-dir
// says where.
func DefaultConfig() Config {
	var backlogDir string
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		// systemd lists several directories separated by ':'.
		d, _, _ = strings.Cut(d, ":")
		backlogDir = filepath.Join(d, "backlog")
	}
	return Config{
		NATSURL:         "nats://127.0.0.1:4321",
		Interval:        5 * time.Second,
		Mounts:          []string{"/"},
		Backlog:         time.Hour,
		BacklogMaxBytes: 64 << 20,
		BacklogDir:      backlogDir,
		ProcRoot:        "/proc",
	}
}

// natsOptions are the credential, TLS and reply-inbox options of the
// agent's NATS connection. The inbox prefix is the host's own, the only
// one its credential may subscribe to, where JetStream's acks arrive.
func (c *Config) natsOptions(host string) ([]nats.Option, error) {
	opts, err := natsx.Auth{Creds: c.NATSCreds, CA: c.NATSCA, Cert: c.NATSCert, Key: c.NATSKey}.Options()
	if err != nil {
		return nil, err
	}
	// A revoked or not yet enrolled credential keeps being retried with
	// back-off, so re-enrolling the host needs no restart of the agent.
	return append(opts, nats.CustomInboxPrefix(natsx.InboxPrefix(host)), nats.IgnoreAuthErrorAbort()), nil
}

// Validate checks what the flags' types cannot; internal/config calls it
// after loading, and New calls it again for in-process agents.
func (c *Config) Validate() error {
	var errs []error
	if c.HostID != "" && !metrics.ValidToken(c.HostID) {
		errs = append(errs, fmt.Errorf("host-id %q: only letters, digits, '-' and '_' are allowed, at most 128", c.HostID))
	}
	if c.Interval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("interval %v: must be at least 100ms", c.Interval))
	}
	// Every sample passes through the backlog, so bounds that cannot hold
	// the one being sent would drop it before it is sent: the agent would
	// publish nothing even with NATS up.
	if c.Backlog < c.Interval {
		errs = append(errs, fmt.Errorf("backlog %v: must be at least the interval (%v), or samples expire before they are sent", c.Backlog, c.Interval))
	}
	if c.BacklogMaxBytes < metrics.MaxMessage {
		errs = append(errs, fmt.Errorf("backlog-max-bytes %d: must be at least %d (the largest sample the hub accepts), or samples are dropped before they are sent", c.BacklogMaxBytes, metrics.MaxMessage))
	}
	for i, t := range c.Scrape {
		if err := t.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("scrape[%d]: %w", i, err))
		}
	}
	if err := collect.ValidateSpecs(c.ModelSpecs()); err != nil {
		errs = append(errs, err)
	}
	for i, m := range c.ModelMatchers {
		if err := m.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("model-matchers[%d]: %w", i, err))
		}
	}
	if (c.NATSCert == "") != (c.NATSKey == "") {
		errs = append(errs, errors.New("nats-cert and nats-key: give both or neither"))
	}
	if c.NATSURL == "" && !c.Once {
		errs = append(errs, errors.New("nats-url: empty"))
	}
	return errors.Join(errs...)
}

// ModelSpecs is every model server to read: --rtdetr-url as the entry
// {rtdetr, "rtdetr"}, --llm-url as {llamacpp, "nemotron"}, then the models:
// list.
func (c *Config) ModelSpecs() []collect.ModelSpec {
	var out []collect.ModelSpec
	if c.RTDETRURL != "" {
		out = append(out, collect.ModelSpec{Kind: metrics.KindRTDETR, Name: metrics.RoleRTDETR, URL: c.RTDETRURL})
	}
	if c.LLMURL != "" {
		out = append(out, collect.ModelSpec{Kind: metrics.KindLlamaCpp, Name: metrics.RoleNemotron, URL: c.LLMURL})
	}
	return append(out, c.Models...)
}

// seedRTDETRURL is the detector whose /metrics feeds the seed's inference
// section: --rtdetr-url, or the models: entry named rtdetr.
func (c *Config) seedRTDETRURL() string {
	for _, m := range c.ModelSpecs() {
		if m.Kind == metrics.KindRTDETR && m.Name == metrics.RoleRTDETR {
			return m.URL
		}
	}
	return ""
}
