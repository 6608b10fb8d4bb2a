package sources

// How the Prometheus source maps series to the update: the GPU and
// inference queries, the series they read, and what of the update a
// fallback may fill.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// GPU series, DCGM exporter first: where both describe a GPU, DCGM wins.
// DCGM reports frame buffer in MiB; the backend's hsi_gpu_memory_*_mb too.
const gpuQuery = `{__name__=~"DCGM_FI_DEV_(GPU_UTIL|FB_USED|FB_FREE|GPU_TEMP|POWER_USAGE)|hsi_gpu_(utilization|memory_used_mb|memory_total_mb|temperature|power_watts)"}`

type gpuKey struct {
	host  string
	index int
}

func (p *Prometheus) gpus(ctx context.Context) ([]metrics.GPUView, error) {
	vec, err := p.query(ctx, gpuQuery)
	if err != nil {
		return nil, err
	}
	type acc struct {
		v                 metrics.GPUView
		used, free, total *float64 // MiB
	}
	byKey := map[gpuKey]*acc{}
	// DCGM first so that its value is the one kept.
	sort.SliceStable(vec, func(i, j int) bool {
		return strings.HasPrefix(vec[i].Labels["__name__"], "DCGM") && !strings.HasPrefix(vec[j].Labels["__name__"], "DCGM")
	})
	set := func(dst **float64, v float64) {
		if *dst == nil {
			*dst = &v
		}
	}
	for _, s := range vec {
		k := gpuKey{host: seriesHost(s.Labels), index: seriesIndex(s.Labels)}
		a := byKey[k]
		if a == nil {
			idx := k.index
			a = &acc{v: metrics.GPUView{Host: k.host, Index: &idx, UUID: s.Labels["UUID"]}}
			byKey[k] = a
		}
		if name := s.Labels["modelName"]; name != "" && a.v.Name == nil {
			a.v.Name = &name
		}
		switch s.Labels["__name__"] {
		case "DCGM_FI_DEV_GPU_UTIL", "hsi_gpu_utilization":
			set(&a.v.Utilization, s.Value)
		case "DCGM_FI_DEV_GPU_TEMP", "hsi_gpu_temperature":
			set(&a.v.Temperature, s.Value)
		case "DCGM_FI_DEV_POWER_USAGE", "hsi_gpu_power_watts":
			set(&a.v.PowerWatts, s.Value)
		case "DCGM_FI_DEV_FB_USED", "hsi_gpu_memory_used_mb":
			set(&a.used, s.Value)
		case "DCGM_FI_DEV_FB_FREE":
			set(&a.free, s.Value)
		case "hsi_gpu_memory_total_mb":
			set(&a.total, s.Value)
		}
	}
	out := make([]metrics.GPUView, 0, len(byKey))
	for _, a := range byKey {
		if a.used != nil {
			gb := *a.used / 1024
			a.v.VRAMUsedGB = &gb
		}
		switch {
		case a.total != nil:
			gb := *a.total / 1024
			a.v.VRAMTotalGB = &gb
		case a.used != nil && a.free != nil:
			gb := (*a.used + *a.free) / 1024
			a.v.VRAMTotalGB = &gb
		}
		out = append(out, a.v)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Host != out[j].Host {
			return out[i].Host < out[j].Host
		}
		return *out[i].Index < *out[j].Index
	})
	return out, nil
}

// seriesHost names the host a series describes: DCGM's Hostname label,
// a host label, else the scrape target without its port.
func seriesHost(l map[string]string) string {
	for _, k := range []string{"Hostname", "hostname", "host"} {
		if v := l[k]; v != "" {
			return v
		}
	}
	if inst := l["instance"]; inst != "" {
		if h, _, err := net.SplitHostPort(inst); err == nil {
			return h
		}
		return inst
	}
	return ""
}

func seriesIndex(l map[string]string) int {
	for _, k := range []string{"gpu", "gpu_index", "index", "minor_number"} {
		if n, err := strconv.Atoi(l[k]); err == nil {
			return n
		}
	}
	return 0
}

// fillGPUs adds the GPUs of hosts no agent reported GPUs for, and the
// seed's "gpu" when no agent filled it.
func fillGPUs(u *metrics.Update, gpus []metrics.GPUView) (took bool) {
	if len(gpus) == 0 {
		return false
	}
	have := map[string]bool{}
	for _, g := range u.GPUs {
		have[g.Host] = true
	}
	for _, g := range gpus {
		if !have[g.Host] {
			u.GPUs = append(u.GPUs, g)
		}
	}
	if gpuEmpty(u.GPU) {
		for _, g := range u.GPUs {
			if !have[g.Host] {
				u.GPU = g
				return true
			}
		}
	}
	return false
}

func gpuEmpty(g metrics.GPUView) bool {
	return g.Name == nil && g.Utilization == nil && g.VRAMUsedGB == nil && g.VRAMTotalGB == nil &&
		g.Temperature == nil && g.PowerWatts == nil
}

// promInference is what the latency queries found, per role.
type promInference struct {
	stats        map[string]metrics.Stats
	imagesPerMin *float64
	eventsPerMin *float64
}

func (p *Prometheus) inference(ctx context.Context) (promInference, error) {
	out := promInference{stats: map[string]metrics.Stats{}}
	type job struct {
		role, what, q string
	}
	var jobs []job
	w := p.opts.RateWindow
	for role, stage := range p.opts.Stages {
		sel := fmt.Sprintf(`{stage=%q}`, stage)
		for _, q := range []struct{ what, phi string }{{"p95", "0.95"}, {"p99", "0.99"}} {
			jobs = append(jobs, job{role, q.what, fmt.Sprintf(`histogram_quantile(%s, sum by (le) (rate(hsi_stage_duration_seconds_bucket%s[%s]))) * 1000`, q.phi, sel, w)})
		}
		jobs = append(jobs, job{role, "avg", fmt.Sprintf(`sum(rate(hsi_stage_duration_seconds_sum%s[%s])) / sum(rate(hsi_stage_duration_seconds_count%s[%s])) * 1000`, sel, w, sel, w)})
		if role == metrics.RoleRTDETR {
			jobs = append(jobs, job{role, "images", fmt.Sprintf(`sum(rate(hsi_stage_duration_seconds_count%s[%s])) * 60`, sel, w)})
		}
	}
	jobs = append(jobs, job{"", "events", fmt.Sprintf(`sum(rate(hsi_events_created_total[%s])) * 60`, w)})

	results := make([][]sampleValue, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() { results[i], errs[i] = p.query(ctx, j.q) })
	}
	wg.Wait()
	for i, j := range jobs {
		if errs[i] != nil || len(results[i]) == 0 {
			continue
		}
		v := results[i][0].Value
		st := out.stats[j.role]
		switch j.what {
		case "p95":
			st.P95 = &v
		case "p99":
			st.P99 = &v
		case "avg":
			st.Avg = &v
		case "images":
			out.imagesPerMin = &v
		case "events":
			out.eventsPerMin = &v
		}
		if j.role != "" {
			out.stats[j.role] = st
		}
	}
	return out, errors.Join(errs...)
}

func statsEmpty(s metrics.Stats) bool { return s.Avg == nil && s.P95 == nil && s.P99 == nil }

// fillInference fills each role whose figures are all absent, and the
// throughput fields that are nil.
func fillInference(u *metrics.Update, inf promInference) (filled, had bool) {
	for role, dst := range map[string]*metrics.Stats{metrics.RoleRTDETR: &u.Inference.RTDETR, metrics.RoleNemotron: &u.Inference.Nemotron, metrics.RolePipeline: &u.Inference.Pipeline} {
		if !statsEmpty(*dst) {
			had = true
			continue
		}
		if st, ok := inf.stats[role]; ok && !statsEmpty(st) {
			*dst = st
			filled = true
		}
	}
	if u.Inference.Throughput.ImagesPerMin != nil || u.Inference.Throughput.EventsPerMin != nil {
		had = true
	}
	if u.Inference.Throughput.ImagesPerMin == nil && inf.imagesPerMin != nil {
		u.Inference.Throughput.ImagesPerMin, filled = inf.imagesPerMin, true
	}
	if u.Inference.Throughput.EventsPerMin == nil && inf.eventsPerMin != nil {
		u.Inference.Throughput.EventsPerMin, filled = inf.eventsPerMin, true
	}
	return filled, had
}
