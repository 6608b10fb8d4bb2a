package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAgentDoesNotLinkNATSServer keeps nats-server out of the agent: its
// process statistics re-read /proc/self/stat every second, a sixth of an
// idle agent's CPU, and the agent is only ever a client.
func TestAgentDoesNotLinkNATSServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/nats-io/nats-server") {
			t.Fatalf("cmd/agent depends on %s; the embedded server belongs to the hub (internal/natsd)", dep)
		}
	}
}
