package promtext

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The servers' documented expositions the collectors are tested with.
var expositions = []string{
	"vllm_v0.10_metrics.txt", "vllm_v0.6_metrics.txt", "sglang_metrics.txt", "tgi_metrics.txt",
	"triton_metrics.txt", "triton_trtllm_metrics.txt", "llamacpp_metrics.txt", "rtdetr_metrics.txt", "backend_metrics.txt",
}

func exposition(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t *testing.T, text string) map[string]*Family {
	t.Helper()
	fams, err := Parse([]byte(text))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, text)
	}
	return fams
}

// Figures read off the real expositions by hand.
func TestRealExpositions(t *testing.T) {
	for _, tt := range []struct {
		file, family string
		typ          Type
		labels       map[string]string // the series to look at
		value        float64           // its value, or its histogram's count
		sum          float64           // its histogram's sum
		buckets      int               // its histogram's buckets, +Inf included
	}{
		{"vllm_v0.10_metrics.txt", "vllm:kv_cache_usage_perc", Gauge, map[string]string{"engine": "0", "model_name": "Qwen/Qwen3-8B"}, 0.82, 0, 0},
		{"vllm_v0.10_metrics.txt", "vllm:request_success_total", Counter, map[string]string{"engine": "1", "finished_reason": "stop"}, 10, 0, 0},
		{"vllm_v0.10_metrics.txt", "vllm:time_to_first_token_seconds", Histogram, map[string]string{"engine": "0"}, 30, 2.5, 4},
		{"tgi_metrics.txt", "tgi_request_duration", Histogram, nil, 200, 260, 5},
		{"tgi_metrics.txt", "tgi_queue_size", Gauge, nil, 7, 0, 0},
		{"triton_metrics.txt", "nv_inference_request_duration_us", Counter, map[string]string{"model": "rtdetr_trt"}, 36000000, 0, 0},
		{"triton_metrics.txt", "nv_energy_consumption", Counter, nil, 1.25e6, 0, 0},
		{"llamacpp_metrics.txt", "llamacpp:prompt_tokens_seconds", Gauge, nil, 1458.72, 0, 0},
		{"llamacpp_metrics.txt", "llamacpp:n_tokens_max", Counter, nil, 3012, 0, 0},
	} {
		t.Run(tt.file+"/"+tt.family, func(t *testing.T) {
			fams, err := Parse(exposition(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			f := fams[tt.family]
			if f == nil || f.Type != tt.typ {
				t.Fatalf("family %s = %+v, want a %s", tt.family, f, tt.typ)
			}
			s, ok := find(f, tt.labels)
			if !ok {
				t.Fatalf("no series with %v in %+v", tt.labels, f.Series)
			}
			if tt.typ != Histogram {
				if s.Value != tt.value || s.Hist != nil {
					t.Errorf("series %v = %v (hist %v), want %v", s.Labels, s.Value, s.Hist, tt.value)
				}
				return
			}
			h := s.Hist
			if h == nil || h.Count != tt.value || math.Abs(h.Sum-tt.sum) > 1e-9 || len(h.Buckets) != tt.buckets {
				t.Fatalf("histogram %v = %+v, want count %v sum %v, %d buckets", s.Labels, h, tt.value, tt.sum, tt.buckets)
			}
			if last := h.Buckets[len(h.Buckets)-1]; !math.IsInf(last.UpperBound, 1) || last.Count != tt.value {
				t.Errorf("last bucket %+v, want +Inf with the count", last)
			}
			if _, ok := s.Label("le"); ok {
				t.Errorf("le kept among the labels: %v", s.Labels)
			}
		})
	}
}

func find(f *Family, labels map[string]string) (Series, bool) {
	for _, s := range f.Series {
		ok := true
		for k, v := range labels {
			if got, has := s.Label(k); !has || got != v {
				ok = false
			}
		}
		if ok {
			return s, true
		}
	}
	return Series{}, false
}

// Every real exposition reads as prometheus/common's parser reads it.
func TestRealExpositionsAsExpfmt(t *testing.T) {
	for _, name := range expositions {
		t.Run(name, func(t *testing.T) {
			text := exposition(t, name)
			fams, err := Parse(text)
			if err != nil {
				t.Fatal(err)
			}
			want, err := expfmtParse(text)
			if err != nil {
				t.Fatal(err)
			}
			if d := diffExpfmt(fams, want); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestParse(t *testing.T) {
	fams := mustParse(t, strings.Join([]string{
		"# a comment",
		"#",
		"# HELP x with \\n and \\\\ and \\q, which HELP does not check",
		"# TYPE x counter",
		"  x{b=\"2\" , a=\"q\\\"uo\\\\te\\nd\",} 1.5e3 1712345678000  ",
		"x{a=\"\"}\t+Inf",
		"x -Inf",
		"x NaN",
		"",
		`{"my.metric",  "label.name"="v"} 7`,
		"# TYPE h histogram",
		`h_bucket{le="+Inf",m="a"} 4`,
		`h_sum{m="a"} 3.5`,
		`h_bucket{m="b",le="+Inf"} 9`,
		`h_bucket{m="a",le="1"} 2`,
		`h_count{m="a"} 4`,
		"# TYPE s summary",
		`s{quantile="0.5"} 1`,
		"s_sum 3",
		"s_count 2",
		"h_total 5",
		"# TYPE unsampled gauge",
		"# EOF",
	}, "\n"))

	x := fams["x"]
	if x == nil || x.Type != Counter || len(x.Series) != 4 {
		t.Fatalf("x = %+v", x)
	}
	if got := x.Series[0]; got.Value != 1500 || !slices.Equal(got.Labels, []Label{{"a", "q\"uo\\te\nd"}, {"b", "2"}}) {
		t.Errorf("x[0] = %+v", got)
	}
	if v := x.Series[1].Value; !math.IsInf(v, 1) {
		t.Errorf("x[1] = %v, want +Inf", v)
	}
	if v := x.Series[2].Value; !math.IsInf(v, -1) {
		t.Errorf("x[2] = %v, want -Inf", v)
	}
	if v := x.Series[3].Value; !math.IsNaN(v) {
		t.Errorf("x[3] = %v, want NaN", v)
	}
	if m := fams["my.metric"]; m == nil || m.Type != Untyped || len(m.Series) != 1 || m.Series[0].Value != 7 || m.Series[0].Labels[0] != (Label{"label.name", "v"}) {
		t.Errorf("my.metric = %+v", m)
	}
	h := fams["h"]
	if h == nil || len(h.Series) != 2 {
		t.Fatalf("h = %+v", h)
	}
	a, b := h.Series[0], h.Series[1]
	if !slices.Equal(a.Labels, []Label{{"m", "a"}}) || a.Hist.Count != 4 || a.Hist.Sum != 3.5 || !slices.Equal(a.Hist.Buckets, []Bucket{{1, 2}, {math.Inf(1), 4}}) {
		t.Errorf("h{m=a} = %+v %+v", a, a.Hist)
	}
	// Without a _count line the +Inf bucket is the count.
	if b.Hist.Count != 9 || len(b.Hist.Buckets) != 1 {
		t.Errorf("h{m=b} = %+v", b.Hist)
	}
	if s := fams["s"]; s == nil || s.Type != Summary || len(s.Series) != 0 {
		t.Errorf("s = %+v", s)
	}
	if u, ok := fams["unsampled"]; ok {
		t.Errorf("a family without samples is kept: %+v", u)
	}
	// A name that only looks like a histogram's series is its own family.
	if ht := fams["h_total"]; ht == nil || ht.Type != Untyped || ht.Series[0].Value != 5 {
		t.Errorf("h_total = %+v", ht)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"x one", `line 1: x: value "one" is not a number`},
		{"x 0x1p3", `line 1: x: value "0x1p3" is not a number`},
		{"x 1_000", `line 1: x: value "1_000" is not a number`},
		{"x", "line 1: x: no value"},
		{"x 1 2 3", "line 1: x: text after the value"},
		{"x 1 1.5", `line 1: x: timestamp "1.5" is not an integer`},
		{"\n\nx{a=\"b} 1", "line 3: label a: unterminated string"},
		{`x{a="\t"} 1`, `line 1: label a: bad escape \t`},
		{`x{a=b} 1`, "line 1: label a: want a quoted string"},
		{`x{a="1" b="2"} 1`, "line 1: labels: want , or }"},
		{`x{a="1",a="2"} 1`, "line 1: x: label a twice"},
		{`x{1a="1"} 1`, `line 1: want a name at "1a=\"1\"} 1"`},
		{`x{a:b="1"} 1`, "line 1: label a: no ="},
		{"x{a=\"\xff\"} 1", "line 1: label a: not UTF-8"},
		{`x{"n"} 1`, `line 1: metric name "n" inside braces after a name or label`},
		{`{a="1"} 1`, "line 1: sample without a metric name"},
		{`"x" 1`, "line 1: a quoted metric name belongs inside the braces"},
		{`{""} 1`, "line 1: empty quoted name"},
		{"9x 1", `line 1: want a name at "9x 1"`},
		{"# TYPE x counter\n# TYPE x gauge", "line 2: second TYPE line for x"},
		{"x 1\n# TYPE x gauge", "line 2: TYPE line for x after its samples"},
		{"# TYPE x stateset", `line 1: TYPE x: unknown type "stateset"`},
		{"# TYPE x", "line 1: TYPE x: no type"},
		{"# TYPE x gauge extra", "line 1: TYPE x: text after the type"},
		{"# TYPE h histogram\nh 1", "line 2: h: histogram sample without _bucket, _sum or _count"},
		{"# TYPE h histogram\nh_bucket 1", "line 2: h_bucket: no le label"},
		{"# TYPE h histogram\nh_bucket{le=\"x\"} 1", `line 2: h_bucket: le "x" is not a number`},
		{"# TYPE h histogram\nh_bucket{le=\"1\",a=\"b\"} 1\nh_bucket{a=\"b\",le=\"1.0\"} 1", "h[{a b}]: le 1 twice"},
		{"# TYPE s summary\ns 1", "line 2: s: summary sample without quantile"},
	} {
		fams, err := Parse([]byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want error %q", tt.in, fams, err, tt.want)
		}
	}
}

func TestNames(t *testing.T) {
	for s, want := range map[string][2]bool{
		"vllm:kv_cache_usage_perc": {true, false},
		"_x9":                      {true, true},
		"9x":                       {false, false},
		"":                         {false, false},
		"a.b":                      {false, false},
	} {
		if got := [2]bool{IsMetricName(s), IsLabelName(s)}; got != want {
			t.Errorf("IsMetricName, IsLabelName(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzParse feeds the parser untrusted text: it must not panic; what it
// accepts must write back (write, below) to text that parses to the same;
// and what prometheus/common's parser also accepts must read the same.
func FuzzParse(f *testing.F) {
	for _, name := range expositions {
		f.Add(exposition(f, name))
	}
	f.Add([]byte("# TYPE h histogram\nh_bucket{le=\"+Inf\",a=\"\\n\"} 1\nh_sum NaN\nx{\"q.n\",b=\"\"} -Inf 12\n"))
	f.Add([]byte("# TYPE s summary\ns{quantile=\"0.9\"} 1\ns_count 1\nh_bucket{le=\"1\"} 2\n# TYPE h histogram\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		fams, err := Parse(text)
		if err != nil {
			return
		}
		out := write(fams)
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("written back, %q does not parse: %v", out, err)
		}
		if d := diff(fams, again); d != "" {
			t.Fatalf("written back as %q: %s", out, d)
		}
		want, err := expfmtParse(text)
		if err == nil {
			if d := diffExpfmt(fams, want); d != "" {
				t.Fatalf("reads unlike expfmt: %s", d)
			}
		}
	})
}

// write writes families back in the text format, in the order first named.
func write(fams map[string]*Family) []byte {
	var b bytes.Buffer
	all := make([]*Family, 0, len(fams))
	for _, f := range fams {
		all = append(all, f)
	}
	slices.SortFunc(all, func(a, b *Family) int { return a.pos - b.pos })
	for _, f := range all {
		if f.typed {
			fmt.Fprintf(&b, "# TYPE %s %s\n", quoteName(f.Name), f.Type)
		}
		if f.Type == Summary {
			writeSample(&b, f.Name, []Label{{"quantile", "0.5"}}, 0)
		}
		for _, s := range f.Series {
			if s.Hist == nil {
				writeSample(&b, f.Name, s.Labels, s.Value)
				continue
			}
			for _, bk := range s.Hist.Buckets {
				writeSample(&b, f.Name+"_bucket", append(slices.Clone(s.Labels), Label{"le", formatFloat(bk.UpperBound)}), bk.Count)
			}
			writeSample(&b, f.Name+"_sum", s.Labels, s.Hist.Sum)
			writeSample(&b, f.Name+"_count", s.Labels, s.Hist.Count)
		}
	}
	return b.Bytes()
}

func writeSample(b *bytes.Buffer, name string, labels []Label, v float64) {
	var parts []string
	if !IsMetricName(name) {
		parts = append(parts, strconv.Quote(name))
		name = ""
	}
	for _, l := range labels {
		parts = append(parts, quoteLabel(l.Name)+"="+escape(l.Value))
	}
	if len(parts) > 0 {
		name += "{" + strings.Join(parts, ",") + "}"
	}
	fmt.Fprintf(b, "%s %s\n", name, formatFloat(v))
}

func quoteName(s string) string {
	if IsMetricName(s) {
		return s
	}
	return escape(s)
}

func quoteLabel(s string) string {
	if IsLabelName(s) {
		return s
	}
	return escape(s)
}

func escape(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func same(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

// diff compares two parses.
func diff(a, b map[string]*Family) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d families, then %d", len(a), len(b))
	}
	for name, fa := range a {
		fb := b[name]
		if fb == nil || fa.Type != fb.Type || len(fa.Series) != len(fb.Series) {
			return fmt.Sprintf("family %s: %+v, then %+v", name, fa, fb)
		}
		for i, sa := range fa.Series {
			sb := fb.Series[i]
			if !slices.Equal(sa.Labels, sb.Labels) || !same(sa.Value, sb.Value) || (sa.Hist == nil) != (sb.Hist == nil) {
				return fmt.Sprintf("%s[%d]: %+v, then %+v", name, i, sa, sb)
			}
			if sa.Hist != nil && !sameHist(sa.Hist, sb.Hist) {
				return fmt.Sprintf("%s[%d]: %+v, then %+v", name, i, sa.Hist, sb.Hist)
			}
		}
	}
	return ""
}

func sameHist(a, b *Hist) bool {
	return same(a.Sum, b.Sum) && same(a.Count, b.Count) && slices.EqualFunc(a.Buckets, b.Buckets, func(x, y Bucket) bool {
		return same(x.UpperBound, y.UpperBound) && same(x.Count, y.Count)
	})
}

// diffExpfmt compares a parse with prometheus/common's, on what the
// collectors read: every family's type, and each counter, gauge, untyped
// and histogram series.
func diffExpfmt(got map[string]*Family, want map[string]*dto.MetricFamily) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d families, expfmt %d", len(got), len(want))
	}
	for name, mf := range want {
		f := got[name]
		if f == nil || f.Type.String() != strings.ToLower(mf.GetType().String()) {
			return fmt.Sprintf("family %s: %+v, expfmt a %s", name, f, mf.GetType())
		}
		if f.Type == Summary {
			continue
		}
		if len(f.Series) != len(mf.GetMetric()) {
			return fmt.Sprintf("family %s: %d series, expfmt %d", name, len(f.Series), len(mf.GetMetric()))
		}
		for i, m := range mf.GetMetric() {
			s := f.Series[i]
			labels := make([]Label, 0, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels = append(labels, Label{l.GetName(), l.GetValue()})
			}
			slices.SortFunc(labels, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
			if !slices.Equal(s.Labels, labels) {
				return fmt.Sprintf("%s[%d]: labels %v, expfmt %v", name, i, s.Labels, labels)
			}
			if f.Type != Histogram {
				v := m.GetUntyped().GetValue() + m.GetCounter().GetValue() + m.GetGauge().GetValue()
				if !same(s.Value, v) {
					return fmt.Sprintf("%s[%d]: %v, expfmt %v", name, i, s.Value, v)
				}
				continue
			}
			h := m.GetHistogram()
			count := float64(h.GetSampleCount())
			if h.SampleCountFloat != nil {
				count = h.GetSampleCountFloat()
			}
			var buckets []Bucket
			for _, b := range h.GetBucket() {
				c := float64(b.GetCumulativeCount())
				if b.CumulativeCountFloat != nil {
					c = b.GetCumulativeCountFloat()
				}
				buckets = append(buckets, Bucket{b.GetUpperBound(), c})
			}
			slices.SortFunc(buckets, func(a, b Bucket) int { return cmp.Compare(a.UpperBound, b.UpperBound) })
			got := *s.Hist
			if !got.counted {
				got.Count = 0 // expfmt takes no count from the +Inf bucket
			}
			if !sameHist(&got, &Hist{Buckets: buckets, Sum: h.GetSampleSum(), Count: count}) {
				return fmt.Sprintf("%s[%d]: %+v, expfmt count %v sum %v buckets %v", name, i, s.Hist, count, h.GetSampleSum(), buckets)
			}
		}
	}
	return ""
}

func expfmtParse(text []byte) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(bytes.NewReader(text))
}

// BenchmarkParse reads vLLM's exposition, the largest of the documented
// ones, as the model-server collectors do every tick.
func BenchmarkParse(b *testing.B) {
	text := exposition(b, "vllm_v0.10_metrics.txt")
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(text); err != nil {
			b.Fatal(err)
		}
	}
}
