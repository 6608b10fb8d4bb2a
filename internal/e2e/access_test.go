package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/internal/server/servertest"
	"github.com/sysperf/sysperf/internal/sources/sourcestest"
)

// The binary as a container runs it: served over TLS, its --healthcheck
// (settings from the environment, as the image's HEALTHCHECK has them)
// passes, and fails without the certificate; authentication off on a
// listen address other machines reach stops it before anything starts.
func TestHubBinaryTLSHealthcheckAndAuthOff(t *testing.T) {
	bin := buildHub(t)
	cert, key := servertest.SelfSigned(t, "hub.example")
	httpAddr := sourcestest.FreeAddr(t)
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"SYSPERF_HTTP=" + httpAddr,
		"SYSPERF_NATS_LISTEN=" + sourcestest.FreeAddr(t),
		"SYSPERF_DATA_DIR=" + t.TempDir(),
		"SYSPERF_INTERVAL=1s",
		"SYSPERF_HTTP_TLS_CERT=" + cert,
		"SYSPERF_HTTP_TLS_KEY=" + key,
	}
	logPath := filepath.Join(t.TempDir(), "hub.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	hub := exec.Command(bin)
	hub.Env, hub.Stdout, hub.Stderr = env, logf, logf
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = hub.Process.Kill()
		_ = hub.Wait()
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("hub log:\n%s", b)
		}
	})
	healthcheck := func(env []string) (int, string) {
		c := exec.Command(bin, "--healthcheck")
		c.Env = env
		out, _ := c.CombinedOutput()
		return c.ProcessState.ExitCode(), string(out)
	}
	poll.Until(t, "--healthcheck over TLS to pass", func() bool {
		code, _ := healthcheck(env)
		return code == 0
	})
	var plain []string
	for _, e := range env {
		if !strings.HasPrefix(e, "SYSPERF_HTTP_TLS_") {
			plain = append(plain, e)
		}
	}
	if code, out := healthcheck(plain); code != 1 {
		t.Errorf("--healthcheck without the certificate against TLS: exit %d (%s), want 1", code, out)
	}
	b, _ := os.ReadFile(logPath)
	if !strings.Contains(string(b), "dashboard: https://") {
		t.Errorf("the log does not give the https dashboard URL")
	}

	off := exec.Command(bin, "--http", "0.0.0.0:0", "--http-auth=false", "--data-dir", t.TempDir())
	off.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := off.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "http-auth=false: refused") {
		t.Errorf("--http-auth=false on 0.0.0.0: %v\n%s", err, out)
	}
}
