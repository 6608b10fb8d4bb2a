package agent

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/logtest"
	"github.com/sysperf/sysperf/internal/poll"
)

// TestMsgKeyNeverLogged publishes to a NATS without the samples stream,
// so every publish fails with an error about the sample: the log names the
// sample as host/boot/seq, never with the secret that ends its
// Nats-Msg-Id (which would let a reader of the log claim the host's next
// ids first).
func TestMsgKeyNeverLogged(t *testing.T) {
	n := startNATS(t, -1, t.TempDir())
	cfg := testConfig(100*time.Millisecond, model("m"))
	cfg.NATSURL = n.url()
	log, out := logtest.New(slog.LevelDebug)
	a, err := New(cfg.Config, cfg.Plugs, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	runAgent(t, a)
	poll.Until(t, "a failed publish logged", func() bool { return strings.Contains(out.String(), "publish failed") })
	if len(a.msgKey) != 32 {
		t.Fatalf("key %q, want 128 bits in hex", a.msgKey)
	}
	logged := out.String()
	if !strings.Contains(logged, "publish test-host/"+a.boot+"/") {
		t.Fatalf("the failed publish does not name its sample:\n%s", logged)
	}
	if strings.Contains(logged, a.msgKey) {
		t.Fatalf("the de-duplication key is in the log:\n%s", logged)
	}
}
