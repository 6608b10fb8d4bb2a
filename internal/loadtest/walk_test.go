package loadtest

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// series plays one host for n samples and returns each GPU's
// utilization, temperature and power per sample, and every sample.
func series(t *testing.T, figures string, gpus, n int, seed uint64) (util, temp, power [][]float64, samples []*metrics.Sample) {
	t.Helper()
	cfg := Config{GPUs: gpus, Procs: 2, Interval: 5 * time.Second, Figures: figures}
	gen, err := NewGenerator(cfg, "load0001", rand.New(rand.NewPCG(seed, 7)))
	if err != nil {
		t.Fatal(err)
	}
	util, temp, power = make([][]float64, gpus), make([][]float64, gpus), make([][]float64, gpus)
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for seq := range n {
		s := gen.Sample("boot", uint64(seq), at.Add(time.Duration(seq)*cfg.Interval))
		for i, g := range s.GPUs {
			util[i] = append(util[i], *g.Util)
			temp[i] = append(temp[i], *g.Temp)
			power[i] = append(power[i], *g.Power)
		}
		samples = append(samples, s)
	}
	return util, temp, power, samples
}

// Every walked figure stays within its bounds and the card's, over six
// hours of samples on many GPUs, and the energy counter only grows.
func TestWalkStaysBounded(t *testing.T) {
	_, _, _, samples := series(t, FiguresWalk, 64, 4320, 1) // 6 h at 5 s
	in := func(what string, v, lo, hi float64) {
		t.Helper()
		if v < lo || v > hi {
			t.Fatalf("%s = %v, outside [%v, %v]", what, v, lo, hi)
		}
	}
	energy := make([]float64, 64)
	for _, s := range samples {
		for i, g := range s.GPUs {
			in("utilization", *g.Util, 0, 100)
			in("memory utilization", *g.MemUtil, 0, 100)
			in("temperature", *g.Temp, tempMin, tempMax)
			in("power", *g.Power, powerMin, *g.PowerLimit)
			in("VRAM %", 100*float64(*g.MemUsed)/float64(*g.MemTotal), memMin-0.01, memMax+0.01)
			if *g.Energy <= energy[i] {
				t.Fatalf("GPU %d energy went from %v to %v", i, energy[i], *g.Energy)
			}
			energy[i] = *g.Energy
			var procMem uint64
			for _, p := range g.Processes {
				in("process SM utilization", *p.SMUtil, 0, 100)
				procMem += *p.MemUsed
			}
			if procMem > *g.MemUsed {
				t.Fatalf("GPU %d processes use %d bytes, the GPU %d", i, procMem, *g.MemUsed)
			}
		}
		sys := s.System
		in("host CPU", *sys.CPUPercent, cpuMin, cpuMax)
		in("load1", *sys.Load1, 0, threads)
		in("load15", *sys.Load15, 0, threads)
		in("disk read", *sys.DiskReadBps, rateMin, diskMax)
		in("net tx", *sys.NetTxBps, rateMin, netMax)
	}
}

// One seed plays the same figures twice; another seed plays others.
func TestWalkIsDeterministicPerSeed(t *testing.T) {
	encode := func(samples []*metrics.Sample) []byte {
		var all []byte
		for _, s := range samples {
			b, err := metrics.Encode(s)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		return all
	}
	_, _, _, a := series(t, FiguresWalk, 8, 200, 42)
	_, _, _, b := series(t, FiguresWalk, 8, 200, 42)
	_, _, _, c := series(t, FiguresWalk, 8, 200, 43)
	if !bytes.Equal(encode(a), encode(b)) {
		t.Fatal("the same seed played different samples")
	}
	if bytes.Equal(encode(a), encode(c)) {
		t.Fatal("two seeds played the same samples")
	}
}

// What the walk is for: a GPU's figures follow from one sample to the
// next, so a GPU crosses an alert threshold a few times an hour, not at
// every other sample as the uniform figures do; and some GPUs stay past
// it long enough for the default rules' durations, so alerts really fire
// (gpu_temperature: > 75 °C for 1 min, gpu_utilization: > 90 % for 2 min).
func TestWalkIsCorrelatedAndSomeGPUsRunHot(t *testing.T) {
	const gpus, n = 400, 720 // 50 hosts' GPUs for an hour
	lag1 := func(x []float64) float64 {
		var mean float64
		for _, v := range x {
			mean += v
		}
		mean /= float64(len(x))
		var num, den float64
		for i := range x {
			d := x[i] - mean
			den += d * d
			if i > 0 {
				num += d * (x[i-1] - mean)
			}
		}
		if den == 0 {
			return 1
		}
		return num / den
	}
	// crossings of threshold and runs past it at least for samples long.
	crossings := func(x []float64, threshold float64, run int) (cross, sustained int) {
		n := 0
		for i, v := range x {
			if i > 0 && (v > threshold) != (x[i-1] > threshold) {
				cross++
			}
			if v > threshold {
				n++
				if n == run {
					sustained++
				}
			} else {
				n = 0
			}
		}
		return cross, sustained
	}
	type figures struct {
		corr                 float64
		tempCross, utilCross int
		tempFires, utilFires int
		hotNow               int
	}
	measure := func(kind string) figures {
		util, temp, _, _ := series(t, kind, gpus, n, 9)
		var f figures
		for i := range gpus {
			f.corr += lag1(util[i]) / gpus
			c, s := crossings(temp[i], 75, 12)
			f.tempCross, f.tempFires = f.tempCross+c, f.tempFires+s
			c, s = crossings(util[i], 90, 24)
			f.utilCross, f.utilFires = f.utilCross+c, f.utilFires+s
			if util[i][n-1] > 90 {
				f.hotNow++
			}
		}
		return f
	}
	walk, uni := measure(FiguresWalk), measure(FiguresUniform)
	t.Logf("walk: %+v", walk)
	t.Logf("uniform: %+v", uni)
	if walk.corr < 0.8 {
		t.Errorf("walk: lag-1 autocorrelation of utilization %.2f, want >= 0.8", walk.corr)
	}
	if uni.corr > 0.2 {
		t.Errorf("uniform: lag-1 autocorrelation %.2f, want near 0", uni.corr)
	}
	// A GPU of the walk crosses 75 °C a few times an hour at most.
	if perGPU := float64(walk.tempCross) / gpus; perGPU > 4 {
		t.Errorf("walk: %.1f temperature crossings of 75 °C per GPU an hour, want a few", perGPU)
	}
	if walk.tempCross*10 > uni.tempCross {
		t.Errorf("walk crosses 75 °C %d times, uniform %d: want a tenth at most", walk.tempCross, uni.tempCross)
	}
	// Over the hour alerts fire: some GPUs stay hot past the rules'
	// durations, about the 5 % share at any time.
	if walk.tempFires < gpus/20 || walk.utilFires < gpus/20 {
		t.Errorf("walk: %d sustained temperature and %d utilization episodes in an hour over %d GPUs, want at least %d",
			walk.tempFires, walk.utilFires, gpus, gpus/20)
	}
	if walk.hotNow < gpus/50 || walk.hotNow > gpus/8 {
		t.Errorf("walk: %d of %d GPUs above 90 %% at the end, want about 5 %%", walk.hotNow, gpus)
	}
}

func TestFiguresChecked(t *testing.T) {
	for _, f := range []string{"", FiguresWalk, FiguresUniform} {
		if err := CheckFigures(f); err != nil {
			t.Errorf("CheckFigures(%q) = %v", f, err)
		}
	}
	if err := CheckFigures("random"); err == nil {
		t.Error("CheckFigures accepted an unknown kind")
	}
	if _, err := NewGenerator(Config{Figures: "random"}, "load0001", rand.New(rand.NewPCG(1, 2))); err == nil {
		t.Error("NewGenerator accepted an unknown kind")
	}
}
