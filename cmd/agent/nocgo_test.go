package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// TestAgentBuildsWithoutCgo builds the agent with CGO_ENABLED=0, as for a
// static binary, runs it with --once, and checks the sample has the host
// section and says why it has no GPUs: go-nvml needs cgo, so such a build
// reports the GPU section unavailable whatever the machine has.
func TestAgentBuildsWithoutCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent: skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "agent")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := exec.CommandContext(ctx, bin, "--once", "--host-id=nocgo")
	var stderr []byte
	out, err := run.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	if err != nil {
		t.Fatalf("agent --once: %v\n%s", err, stderr)
	}
	var s metrics.Sample
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("--once printed no sample: %v\n%s", err, out)
	}
	if got, want := s.Errors[metrics.CollectorGPU], "built without cgo: NVML unavailable"; got != want {
		t.Errorf("errors.gpu = %q, want %q", got, want)
	}
	if s.GPUs != nil {
		t.Errorf("GPUs without NVML: %+v", s.GPUs)
	}
	if s.System == nil || s.System.MemTotal == 0 {
		t.Errorf("the host section is missing: %s", out)
	}
}
