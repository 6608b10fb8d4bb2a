package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAgentDependencies keeps heavy packages out of the agent, which only
// ever is a client and runs on every GPU box for months.
func TestAgentDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	banned := []struct{ prefix, why string }{
		// Its process statistics re-read /proc/self/stat every second, a
		// sixth of an idle agent's CPU.
		{"github.com/nats-io/nats-server", "the embedded server belongs to the hub (internal/natsd)"},
		// expfmt's parser brings protobuf, the Go parser and printer and an
		// ABNF library: about a megabyte of resident memory for a few
		// hundred lines of text.
		{"github.com/prometheus/", "the agent reads Prometheus text with internal/collect/promtext"},
		{"google.golang.org/protobuf", "the agent reads Prometheus text with internal/collect/promtext"},
	}
	deps := strings.Fields(string(out))
	for _, b := range banned {
		for _, dep := range deps {
			if strings.HasPrefix(dep, b.prefix) {
				t.Errorf("cmd/agent depends on %s; %s", dep, b.why)
				break
			}
		}
	}
}
