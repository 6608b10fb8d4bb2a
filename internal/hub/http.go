package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sysperf/sysperf/internal/server"
)

// HTTPSettings are the dashboard's and API's access settings
// (internal/server). Config embeds them.
type HTTPSettings struct {
	HTTPTokenFile    string   `flag:"http-token-file" usage:"file of dashboard and API tokens, one a line (several may be valid); empty: http.token in the data directory, generated on first start"`
	MetricsTokenFile string   `flag:"metrics-token-file" usage:"file of the bearer tokens /metrics takes, one a line (empty: the dashboard tokens)"`
	HTTPAuth         bool     `flag:"http-auth" usage:"require a token on every endpoint but /healthz; false is refused unless --http is a loopback address"`
	HTTPAllowedHosts []string `flag:"http-allowed-hosts" usage:"host names, comma separated, that browsers and scrapers may use to reach the hub, besides localhost, the loopback IPs and --http's host"`
	HTTPTLSCert      string   `flag:"http-tls-cert" usage:"PEM certificate file: serve the dashboard, API and WebSocket over TLS (with --http-tls-key)"`
	HTTPTLSKey       string   `flag:"http-tls-key" usage:"PEM private key file of --http-tls-cert"`
	WSMaxClients     int      `flag:"ws-max-clients" usage:"most WebSocket clients served at once; more are refused with 503"`
}

func defaultHTTPSettings() HTTPSettings {
	return HTTPSettings{HTTPAuth: true, WSMaxClients: 256}
}

// validate refuses, before anything starts, what server.Start would.
func (c HTTPSettings) validate(listen string) error {
	var errs []error
	if !c.HTTPAuth && !server.Loopback(listen) {
		errs = append(errs, fmt.Errorf("http-auth=false: refused, --http %s can be reached from other machines; turn authentication off only on a loopback address (127.0.0.1, [::1], localhost)", listen))
	}
	if (c.HTTPTLSCert == "") != (c.HTTPTLSKey == "") {
		errs = append(errs, errors.New("http-tls-cert and http-tls-key: give both or neither"))
	}
	if c.WSMaxClients < 0 {
		errs = append(errs, fmt.Errorf("ws-max-clients: must not be negative, got %d", c.WSMaxClients))
	}
	return errors.Join(errs...)
}

// TokenFileName is the generated token file in the data directory.
const TokenFileName = "http.token"

// httpTokens reads the dashboard and /metrics tokens, generating the
// dashboard's in the data directory when no file is configured. It logs
// where they are, never what.
func (h *Hub) httpTokens(log *slog.Logger) (tokens, metricsTokens []string, err error) {
	c := h.cfg.HTTPSettings
	if !c.HTTPAuth {
		log.Warn("dashboard and API authentication is off (--http-auth=false): anyone who can reach " + h.cfg.HTTP + " sees and uses them")
		return nil, nil, nil
	}
	path := c.HTTPTokenFile
	if path == "" {
		if h.cfg.DataDir == "" {
			return nil, nil, errors.New("http-token-file: not set, and there is no data-dir to keep a generated token in")
		}
		path = filepath.Join(h.cfg.DataDir, TokenFileName)
		var created bool
		if tokens, created, err = server.EnsureTokenFile(path); err != nil {
			return nil, nil, fmt.Errorf("data-dir: %w", err)
		}
		if created {
			log.Info("dashboard token generated", "file", path)
		}
	} else if tokens, err = server.ReadTokens(path); err != nil {
		return nil, nil, fmt.Errorf("http-token-file: %w", err)
	}
	h.tokenFile = path
	warnReadable(log, path)
	if c.MetricsTokenFile != "" {
		if metricsTokens, err = server.ReadTokens(c.MetricsTokenFile); err != nil {
			return nil, nil, fmt.Errorf("metrics-token-file: %w", err)
		}
		warnReadable(log, c.MetricsTokenFile)
	}
	return tokens, metricsTokens, nil
}

// tokenCheck is how often the token files are looked at for changes.
const tokenCheck = 2 * time.Second

// watchTokens re-reads the token files when they change, so that adding
// or removing a token (revoking its sessions) needs no restart. A file
// that cannot be read keeps the tokens in use, with a WARN.
func (h *Hub) watchTokens(ctx context.Context) {
	if h.tokenFile == "" {
		return
	}
	files := []string{h.tokenFile, h.cfg.MetricsTokenFile}
	stamp := func() string {
		var b strings.Builder
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				fmt.Fprintf(&b, "%d/%d;", fi.ModTime().UnixNano(), fi.Size())
			} else {
				b.WriteString("-;")
			}
		}
		return b.String()
	}
	last := stamp()
	t := time.NewTicker(tokenCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := stamp()
		if now == last {
			continue
		}
		last = now
		tokens, err := server.ReadTokens(h.tokenFile)
		var metricsTokens []string
		if err == nil && h.cfg.MetricsTokenFile != "" {
			metricsTokens, err = server.ReadTokens(h.cfg.MetricsTokenFile)
		}
		if err == nil {
			err = h.srv.SetTokens(tokens, metricsTokens)
		}
		if err != nil {
			h.log.Warn("token file changed but cannot be used; the tokens in use stay", "err", err)
			continue
		}
		h.log.Info("token files re-read", "file", h.tokenFile, "tokens", len(tokens))
	}
}

// warnReadable says when a token file is open to other users.
func warnReadable(log *slog.Logger, path string) {
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o007 != 0 {
		log.Warn("token file is readable by every user of this machine; chmod 600 it", "file", path, "mode", fi.Mode().Perm().String())
	}
}

// TokenFile is the file of the dashboard tokens in use (generated or
// given); empty with authentication off.
func (h *Hub) TokenFile() string { return h.tokenFile }

// ClientsRefused is the number of WebSocket upgrades refused for
// --ws-max-clients.
func (h *Hub) ClientsRefused() uint64 { return h.srv.Refused() }
