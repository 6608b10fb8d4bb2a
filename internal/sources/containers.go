package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/sysperf/sysperf/internal/hub/source"
	"github.com/sysperf/sysperf/internal/redact"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Container status words beyond the engine's own; the health words are
// metrics.Status.
const (
	// StateUnknown is the status of a container nobody could ask about: no
	// engine socket, and the health comes from its ping alone.
	StateUnknown = "unknown"
	// StateMissing is the status of a configured container the engine does
	// not have: it was removed or never created, which is worth telling
	// apart from "we cannot know".
	StateMissing = "missing"
)

// timelineLen bounds each container's health timeline: 60 points, five
// minutes at the default interval, what the UI's Tracker shows.
const timelineLen = 60

// ContainerTarget is one configured container: its name (as the engine
// names it, without the leading "/") and an optional HTTP health URL.
type ContainerTarget struct {
	Name      string `yaml:"name" json:"name"`
	HealthURL string `yaml:"health_url" json:"health_url,omitempty"`
}

// ContainersConfig configures the containers source.
type ContainersConfig struct {
	Targets []ContainerTarget
	// EngineHost is the Docker or Podman Engine API: unix:///path,
	// tcp://host:port, or a socket path. Empty means DOCKER_HOST, then the
	// usual Docker and Podman socket paths; "none" disables the engine.
	EngineHost string
	// APIVersion pins the Engine API ("1.43"); empty uses the engine's own.
	APIVersion string
	// PingTimeout bounds each health ping (default 2 s); the poll's
	// deadline bounds them all.
	PingTimeout time.Duration
}

// Containers pings the configured health URLs in parallel and, where an
// Engine API socket is reachable, merges in every container's real state
// and health by name.
type Containers struct {
	cfg    ContainersConfig
	client *http.Client
	now    func() time.Time
	// getenv and candidates locate the engine; fields so that tests need
	// not touch the process environment.
	getenv     func(string) string
	candidates []string

	mu        sync.Mutex
	timeline  map[string][]metrics.HealthPoint
	engineErr string // the last poll's engine failure, "" when fine
}

// NewContainers checks the targets: names must be unique and URLs absolute
// http(s).
func NewContainers(cfg ContainersConfig) (*Containers, error) {
	seen := map[string]bool{}
	for i, t := range cfg.Targets {
		if t.Name == "" {
			return nil, fmt.Errorf("containers[%d]: empty name", i)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("containers[%d]: duplicate name %q", i, t.Name)
		}
		seen[t.Name] = true
		if t.HealthURL != "" {
			u, err := url.Parse(t.HealthURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("containers[%d] %s: health_url %q is not an http(s) URL", i, t.Name, redact.URL(t.HealthURL))
			}
		}
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = 2 * time.Second
	}
	return &Containers{
		cfg:    cfg,
		client: &http.Client{Timeout: cfg.PingTimeout},
		now:    time.Now,
		getenv: os.Getenv,
		candidates: []string{
			"/var/run/docker.sock",
			"/run/podman/podman.sock",
		},
		timeline: map[string][]metrics.HealthPoint{},
	}, nil
}

// Name is the section the source fills.
func (c *Containers) Name() string { return metrics.SectionContainers }

// Up is false when the container engine was found but did not answer;
// failing pings are the containers' health, not the source's.
func (c *Containers) Up() (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.engineErr == "", c.engineErr
}

// Poll pings and asks the engine at the same time; neither waits for the
// other, and each is bounded by ctx.
func (c *Containers) Poll(ctx context.Context) source.Reading {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultPollTimeout)
		defer cancel()
	}
	pings := make([]ping, len(c.cfg.Targets))
	var wg sync.WaitGroup
	for i, t := range c.cfg.Targets {
		if t.HealthURL == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pings[i] = c.ping(ctx, t.HealthURL)
		}()
	}
	var (
		engine    map[string]engineContainer
		engineErr error
		engineOn  bool
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		ep, ok := c.engineEndpoint()
		if !ok {
			return
		}
		engineOn = true
		engine, engineErr = c.readEngine(ctx, ep)
	}()
	wg.Wait()

	list := merge(c.cfg.Targets, pings, engine, engineOn && engineErr == nil)
	c.record(c.now(), list)
	var errText string
	if engineErr != nil {
		errText = engineErr.Error()
	}
	c.mu.Lock()
	c.engineErr = errText
	c.mu.Unlock()

	via := "ping"
	if engineOn && engineErr == nil {
		via = "ping+engine"
	}
	return source.Reading{
		Section: metrics.SectionContainers, Via: via, Reason: errText, Up: errText == "",
		Fill: func(u *metrics.Update) map[string]bool {
			u.Containers = list
			return nil
		},
	}
}

type ping struct {
	done   bool
	health metrics.Status
	reason string
}

func (c *Containers) ping(ctx context.Context, rawURL string) ping {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.PingTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return ping{true, metrics.StatusUnhealthy, redact.Text(err.Error())}
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return ping{true, metrics.StatusUnhealthy, netReason(err)}
	}
	defer resp.Body.Close()
	// Drain a little so the connection can be reused; a health body is small.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return ping{true, metrics.StatusUnhealthy, fmt.Sprintf("HTTP %d", resp.StatusCode)}
	}
	return ping{true, metrics.StatusHealthy, ""}
}

// netReason turns a transport error into the short reason the dashboard
// shows.
func netReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ENOENT):
		return "no such socket"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "unknown host " + dnsErr.Name
	}
	// Go's HTTP client quotes the URL, query and all.
	return redact.Text(err.Error())
}

// merge builds the section: the configured containers in their order, then
// every other container the engine knows, by name.
func merge(targets []ContainerTarget, pings []ping, engine map[string]engineContainer, engineOK bool) []metrics.Container {
	out := make([]metrics.Container, 0, len(targets)+len(engine))
	configured := map[string]bool{}
	for i, t := range targets {
		configured[t.Name] = true
		e, inEngine := engine[t.Name]
		ct := metrics.Container{Name: t.Name, Status: StateUnknown, Health: metrics.StatusUnknown}
		switch {
		case inEngine:
			ct.Status, ct.Health, ct.Reason = e.Status, e.Health, e.Reason
		case engineOK:
			ct.Status, ct.Reason = StateMissing, "not found in the container engine"
		case t.HealthURL == "":
			// Say why it stays unknown, or the operator cannot tell a
			// missing setting from a failure.
			ct.Reason = "no health_url, and no answer from a container engine"
		}
		if p := pings[i]; p.done {
			// The ping is the direct evidence of serving, but either the
			// ping or the engine's healthcheck failing is a failure.
			switch {
			case p.health == metrics.StatusUnhealthy:
				ct.Health, ct.Reason = p.health, joinNonEmpty(p.reason, ct.Reason)
			case ct.Health != metrics.StatusUnhealthy:
				ct.Health = p.health
			}
		}
		out = append(out, ct)
	}
	var rest []string
	for name := range engine {
		if !configured[name] {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	for _, name := range rest {
		e := engine[name]
		out = append(out, metrics.Container{Name: name, Status: e.Status, Health: e.Health, Reason: e.Reason})
	}
	return out
}

// record appends this poll's health to each container's timeline and
// returns copies in the list, so the patch never shares the source's state.
func (c *Containers) record(at time.Time, list []metrics.Container) {
	c.mu.Lock()
	defer c.mu.Unlock()
	present := make(map[string]bool, len(list))
	for i := range list {
		name := list[i].Name
		present[name] = true
		tl := append(c.timeline[name], metrics.HealthPoint{Timestamp: at, Health: list[i].Health})
		if len(tl) > timelineLen {
			tl = append([]metrics.HealthPoint(nil), tl[len(tl)-timelineLen:]...)
		}
		c.timeline[name] = tl
		list[i].Timeline = append([]metrics.HealthPoint(nil), tl...)
	}
	// A container that is gone takes its timeline with it, so the map
	// cannot grow with every container ever created.
	for name := range c.timeline {
		if !present[name] {
			delete(c.timeline, name)
		}
	}
}
