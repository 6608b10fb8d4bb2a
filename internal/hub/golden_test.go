package hub

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite the page's golden fixtures (make generate)")

// goldenFile is the page's fixture of a real merge: webui/src/test/golden.test.tsx
// reads it as an Update, so the page is tested against what the hub sends.
var goldenFile = filepath.Join("..", "..", "webui", "src", "test", "fixtures", "merged.gen.json")

// TestGoldenUpdate merges a fixed sample (one host, one RTX A5500 with two
// processes, CPU, RAM and disk) and compares the JSON with the page's
// fixture; -update-golden rewrites it.
func TestGoldenUpdate(t *testing.T) {
	s := withGPU(sample("gpu-box-1", time.Second), a5500(0, 22*gib+gib/2))
	s.System = system()
	u := merge(now, map[string]*metrics.Sample{s.Host: s}, 5*time.Second)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(u); err != nil {
		t.Fatal(err)
	}
	if *updateGolden {
		if err := os.WriteFile(goldenFile, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatalf("read %s: %v (run `make generate`)", goldenFile, err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		t.Fatalf("%s differs from the merge's output: run `make generate` and commit it", goldenFile)
	}
}
