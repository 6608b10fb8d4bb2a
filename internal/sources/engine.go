package sources

// The Docker or Podman Engine API client of the containers source: where
// the engine answers, and what it says of each container.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/sysperf/sysperf/internal/redact"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// engineEndpoint is where the Engine API answers: a unix socket path or a
// tcp base URL, and whether there is one at all.
type engineEndpoint struct {
	socket string // unix socket path, or
	base   string // http://host:port for tcp://
}

// HasEngine says whether an Engine API is configured or a well-known
// socket exists, so the hub can watch containers with no list configured.
func (c *Containers) HasEngine() bool {
	_, ok := c.engineEndpoint()
	return ok
}

func (c *Containers) engineEndpoint() (engineEndpoint, bool) {
	host := c.cfg.EngineHost
	if host == "" {
		host = c.getenv("DOCKER_HOST")
	}
	if host == "none" {
		return engineEndpoint{}, false
	}
	if host != "" {
		switch {
		case strings.HasPrefix(host, "unix://"):
			return engineEndpoint{socket: strings.TrimPrefix(host, "unix://")}, true
		case strings.HasPrefix(host, "tcp://"):
			return engineEndpoint{base: "http://" + strings.TrimPrefix(host, "tcp://")}, true
		case strings.HasPrefix(host, "http://"):
			return engineEndpoint{base: strings.TrimSuffix(host, "/")}, true
		default:
			return engineEndpoint{socket: host}, true
		}
	}
	cands := c.candidates
	if x := c.getenv("XDG_RUNTIME_DIR"); x != "" {
		cands = append(cands[:len(cands):len(cands)], filepath.Join(x, "podman", "podman.sock"))
	}
	for _, p := range cands {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return engineEndpoint{socket: p}, true
		}
	}
	return engineEndpoint{}, false
}

// engineContainer is what the source keeps of one engine container.
type engineContainer struct {
	Status string
	Health metrics.Status
	Reason string
}

// The parts of the Engine API's answers the source reads. The engine sends
// much more; unknown fields are ignored.
type engineSummary struct {
	ID     string   `json:"Id"`
	Names  []string `json:"Names"`
	State  string   `json:"State"`
	Status string   `json:"Status"`
	// Health appears in the list from API 1.52; older engines need inspect.
	Health *engineHealth `json:"Health"`
}

type engineHealth struct {
	Status        string `json:"Status"`
	FailingStreak int    `json:"FailingStreak"`
	Log           []struct {
		ExitCode int    `json:"ExitCode"`
		Output   string `json:"Output"`
	} `json:"Log"`
}

type engineInspect struct {
	Name  string `json:"Name"`
	State struct {
		Status    string        `json:"Status"`
		ExitCode  int           `json:"ExitCode"`
		Error     string        `json:"Error"`
		OOMKilled bool          `json:"OOMKilled"`
		Health    *engineHealth `json:"Health"`
	} `json:"State"`
	RestartCount int `json:"RestartCount"`
}

// maxEngineBody caps an Engine API answer; a list of a few thousand
// containers is well under it.
const maxEngineBody = 16 << 20

func (c *Containers) readEngine(ctx context.Context, ep engineEndpoint) (map[string]engineContainer, error) {
	client := c.client
	base := ep.base
	if ep.socket != "" {
		sock := ep.socket
		client = &http.Client{
			Timeout: c.cfg.PingTimeout,
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, "unix", sock)
				},
			},
		}
		defer client.CloseIdleConnections()
		base = "http://engine"
	}
	if c.cfg.APIVersion != "" {
		base += "/v" + strings.TrimPrefix(c.cfg.APIVersion, "v")
	}
	where := ep.socket
	if where == "" {
		where = ep.base
	}
	var list []engineSummary
	if err := getJSON(ctx, client, base+"/containers/json?all=1", &list); err != nil {
		return nil, fmt.Errorf("container engine %s: %w", redact.URL(where), err)
	}
	out := make(map[string]engineContainer, len(list))
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	sem := make(chan struct{}, 8) // a host can run hundreds of containers
	for _, s := range list {
		name := containerName(s.Names)
		if name == "" {
			continue
		}
		// The list's health suffices for a running container; a stopped or
		// restarting one is inspected for its exit code and restart count.
		if s.Health != nil && s.State == "running" {
			mu.Lock()
			out[name] = fromEngine(s.State, s.Health, 0, "", 0)
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var in engineInspect
			ec := engineContainer{Status: s.State, Health: metrics.StatusNone}
			if err := getJSON(ctx, client, base+"/containers/"+url.PathEscape(s.ID)+"/json", &in); err != nil {
				// The list still says the state; only health is unknown.
				ec.Health, ec.Reason = metrics.StatusUnknown, "inspect: "+err.Error()
			} else {
				st := in.State.Status
				if st == "" {
					st = s.State
				}
				ec = fromEngine(st, in.State.Health, in.State.ExitCode, in.State.Error, in.RestartCount)
				if in.State.OOMKilled {
					ec.Reason = joinNonEmpty(ec.Reason, "OOM killed")
				}
			}
			mu.Lock()
			out[name] = ec
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out, nil
}

func fromEngine(state string, h *engineHealth, exitCode int, stateErr string, restarts int) engineContainer {
	ec := engineContainer{Status: strings.ToLower(state), Health: metrics.StatusNone}
	if h != nil && h.Status != "" {
		ec.Health = metrics.Status(h.Status)
		if ec.Health == metrics.StatusUnhealthy {
			ec.Reason = fmt.Sprintf("healthcheck failed %d times", h.FailingStreak)
			if n := len(h.Log); n > 0 {
				last := h.Log[n-1]
				ec.Reason += fmt.Sprintf(": exit %d", last.ExitCode)
				if out := oneLine(last.Output); out != "" {
					ec.Reason += ": " + out
				}
			}
		}
	}
	switch ec.Status {
	case "exited", "dead":
		ec.Reason = joinNonEmpty(ec.Reason, fmt.Sprintf("exit code %d", exitCode))
	case "restarting":
		ec.Reason = joinNonEmpty(ec.Reason, fmt.Sprintf("restarted %d times", restarts))
	}
	if stateErr != "" {
		ec.Reason = joinNonEmpty(ec.Reason, stateErr)
	}
	return ec
}

func joinNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// oneLine keeps the last non-empty line of a healthcheck's output, which is
// where curl and friends say what went wrong, capped for the dashboard.
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if len(last) > 160 {
		last = last[:160] + "…"
	}
	return last
}

// containerName is the engine's first name without its leading "/".
func containerName(names []string) string {
	for _, n := range names {
		n = strings.TrimPrefix(n, "/")
		// Legacy links show as "/other/alias"; those are not names.
		if n != "" && !strings.Contains(n, "/") {
			return n
		}
	}
	return ""
}

func getJSON(ctx context.Context, client *http.Client, rawURL string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return errors.New(netReason(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxEngineBody+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var msg struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &msg)
		return fmt.Errorf("GET %s: HTTP %d %s", req.URL.Path, resp.StatusCode, msg.Message)
	}
	if len(body) > maxEngineBody {
		return fmt.Errorf("GET %s: answer over %d bytes", req.URL.Path, maxEngineBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: bad JSON: %w", req.URL.Path, err)
	}
	return nil
}
