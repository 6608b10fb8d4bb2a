package export

import (
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// canonical is the text of the update's families (sysperf_*, the
// registry's source instruments aside) with series and labels sorted,
// as client_golang's registry wrote them.
func canonical(t *testing.T, body []byte) string {
	t.Helper()
	fams := parse(t, body)
	var names []string
	for n := range fams {
		if strings.HasPrefix(n, "sysperf_") && !strings.HasPrefix(n, "sysperf_source_") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var buf bytes.Buffer
	for _, n := range names {
		f := fams[n]
		for _, m := range f.Metric {
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		}
		slices.SortFunc(f.Metric, func(a, b *dto.Metric) int { return slices.CompareFunc(a.Label, b.Label, compareLabel) })
		if _, err := expfmt.MetricFamilyToText(&buf, f); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}

func compareLabel(a, b *dto.LabelPair) int {
	if c := strings.Compare(a.GetName(), b.GetName()); c != 0 {
		return c
	}
	return strings.Compare(a.GetValue(), b.GetValue())
}

// The update's families, written as text, hold series for series what
// client_golang's constant metrics held (testdata was written by that
// collector): names, HELP, TYPE, labels, values, the duplicate GPU
// dropped, the absent left out.
func TestWriterMatchesCollectorGolden(t *testing.T) {
	full, _ := newTestExporter(t)
	for _, c := range []struct {
		golden string
		e      *Exporter
	}{
		{"testdata/full.txt", full},
		{"testdata/fleet.txt", New(&fakeHub{in: Ingest{Samples: 1}, latest: fleetUpdate(3, 2)})},
		{"testdata/empty.txt", New(&fakeHub{})},
	} {
		want, err := os.ReadFile(c.golden)
		if err != nil {
			t.Fatal(err)
		}
		body := scrape(t, c.e)
		if got := canonical(t, body); got != canonical(t, want) {
			t.Errorf("%s differs; got:\n%s", c.golden, got)
		}
	}
}

// Each family's HELP and TYPE come once, before its samples, which come
// together; families and series keep a fixed order from scrape to scrape.
func TestWriterFamiliesTogether(t *testing.T) {
	e, _ := newTestExporter(t)
	body := scrape(t, e)
	if again := scrape(t, e); !bytes.Equal(stripRuntime(body), stripRuntime(again)) {
		t.Error("two scrapes of the same update differ")
	}
	done := map[string]bool{}
	cur := ""
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "# HELP ") {
			name := strings.Fields(line)[2]
			if done[name] {
				t.Errorf("family %s written twice", name)
			}
			done[name], cur = true, name
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(strings.Fields(line)[0], "{")
		if name != cur && !strings.HasPrefix(name, cur+"_") {
			t.Errorf("sample %q outside its family (in %s)", strings.TrimSpace(line), cur)
		}
	}
	// Within a family the series follow the update: box before box2.
	i, j := bytes.Index(body, []byte(`sysperf_gpu_utilization_ratio{host="box",`)), bytes.Index(body, []byte(`sysperf_gpu_utilization_ratio{host="box2",`))
	if i < 0 || j < i {
		t.Errorf("GPU series out of the update's order: %d, %d", i, j)
	}
}

// stripRuntime keeps the update's lines: the Go and process metrics move
// between scrapes.
func stripRuntime(body []byte) []byte {
	var out []byte
	for line := range strings.Lines(string(body)) {
		if strings.Contains(line, "sysperf_") && !strings.Contains(line, "sysperf_source_") {
			out = append(out, line...)
		}
	}
	return out
}

// Label values are escaped as the text format asks, and NaN and the
// infinities read back.
func TestWriterEscapesAndSpecialFloats(t *testing.T) {
	u := &metrics.Update{GPUs: []metrics.GPUView{
		{Host: `a"b\c` + "\nd", Index: p(0), Name: p("bad\xffutf8"), Utilization: p(math.NaN()), Temperature: p(math.Inf(1)), PowerWatts: p(math.Inf(-1))},
	}}
	fams := parse(t, scrape(t, New(&fakeHub{latest: u})))
	f := fams["sysperf_gpu_utilization_ratio"]
	if f == nil || len(f.Metric) != 1 {
		t.Fatalf("utilization: %v", f)
	}
	got := map[string]string{}
	for _, l := range f.Metric[0].Label {
		got[l.GetName()] = l.GetValue()
	}
	if got["host"] != `a"b\c`+"\nd" || got["name"] != "bad\uFFFDutf8" {
		t.Errorf("labels read back as %q", got)
	}
	if v := f.Metric[0].GetGauge().GetValue(); !math.IsNaN(v) {
		t.Errorf("utilization %v, want NaN", v)
	}
	for name, want := range map[string]float64{"sysperf_gpu_temperature_celsius": math.Inf(1), "sysperf_gpu_power_watts": math.Inf(-1)} {
		if v, ok := value(fams, name, nil); !ok || v != want {
			t.Errorf("%s = %v %v, want %v", name, v, ok, want)
		}
	}
}

// A client that accepts gzip gets the same exposition gzipped.
func TestHandlerGzip(t *testing.T) {
	e, _ := newTestExporter(t)
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	e.Handler().ServeHTTP(rec, req)
	if enc := rec.Header().Get("Content-Encoding"); enc != "gzip" {
		t.Fatalf("Content-Encoding %q", enc)
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stripRuntime(body), stripRuntime(scrape(t, e))) {
		t.Error("gzipped exposition differs from the plain one")
	}
	for header, want := range map[string]bool{"": false, "gzip": true, "deflate, gzip;q=0.5": true, "gzip;q=0": false, "identity": false} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v", header, got)
		}
	}
}

// Concurrent scrapes share the pooled writers without mixing their
// bodies (run with -race).
func TestHandlerConcurrent(t *testing.T) {
	e, _ := newTestExporter(t)
	want := stripRuntime(scrape(t, e))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				rec := httptest.NewRecorder()
				e.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
				if got := stripRuntime(rec.Body.Bytes()); !bytes.Equal(got, want) {
					t.Error("a concurrent scrape differs")
					return
				}
			}
		})
	}
	wg.Wait()
}
