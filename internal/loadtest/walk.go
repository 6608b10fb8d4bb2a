package loadtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// The figures a played host reports (Config.Figures).
const (
	// FiguresWalk: each figure is a bounded random walk around a level
	// that follows what the GPU is doing (idle, serving, saturated), as
	// real GPU and host figures are correlated from one sample to the
	// next. A GPU changes what it does every few minutes, so over a run
	// some GPUs turn hot and their alerts really go pending, fire and
	// resolve, as on a real fleet, instead of every GPU flipping in and
	// out of pending each tick.
	FiguresWalk = "walk"
	// FiguresUniform: every figure drawn uniformly at random each sample,
	// the tool's figures before the walk, kept so old runs can be
	// repeated. Each GPU crosses its alert thresholds at random every
	// tick, which makes alert churn the hub's largest tick cost.
	FiguresUniform = "uniform"
)

// Generator makes one host's samples, one per call.
type Generator interface {
	Sample(boot string, seq uint64, now time.Time) *metrics.Sample
}

// NewGenerator returns the generator of played host name for
// cfg.Figures ("" is FiguresWalk). rng is the host's own, so hosts do not
// contend on one source and a host's figures depend only on its seed.
func NewGenerator(cfg Config, name string, rng *rand.Rand) (Generator, error) {
	if err := CheckFigures(cfg.Figures); err != nil {
		return nil, err
	}
	if cfg.Figures == FiguresUniform {
		return uniform{cfg: cfg, name: name, rng: rng}, nil
	}
	return newWalk(cfg, name, rng), nil
}

// CheckFigures says what is wrong with a Config.Figures, before a run
// starts its hosts.
func CheckFigures(figures string) error {
	switch figures {
	case "", FiguresWalk, FiguresUniform:
		return nil
	}
	return fmt.Errorf("loadtest: figures %q: want %q or %q", figures, FiguresWalk, FiguresUniform)
}

type uniform struct {
	cfg  Config
	name string
	rng  *rand.Rand
}

func (g uniform) Sample(boot string, seq uint64, now time.Time) *metrics.Sample {
	return Sample(g.name, boot, seq, now, g.cfg, g.rng)
}

// What a GPU is doing sets the level its figures walk around.
type gpuState int

const (
	gpuIdle gpuState = iota
	gpuServing
	gpuHot // saturated: utilization, heat and power past the default alert thresholds
)

// Shares of the GPUs in each state, and how often a GPU changes: on
// average every 5 minutes (60 samples at 5 s). With 5 % hot, a 2,000-host
// fleet has about 800 hot GPUs at any time and some 160 turn hot or cool
// down each minute.
const (
	shareIdle   = 0.15
	shareHot    = 0.05
	switchEvery = 60 // samples
)

// levels are the means each figure is pulled towards, per state.
var utilLevel = [...]float64{gpuIdle: 3, gpuServing: 55, gpuHot: 96}

// Walk steps: the standard deviation of each figure's move per sample,
// and how strongly it is pulled back towards its level (a share of the
// distance per sample). A pull of 0.2 reaches a new level within about
// ten samples, as a GPU's temperature follows its load within a minute.
const (
	pull       = 0.2
	utilStep   = 2.0
	tempStep   = 0.4
	powerStep  = 8.0
	memStep    = 0.3 // percent of the card's memory
	hostStep   = 2.0 // host CPU percent
	rateFactor = 0.1 // disk and network rates move by up to ±10 % per sample
)

// Bounds every walked figure stays within, whatever the walk draws.
const (
	tempMin, tempMax   = 25.0, 92.0
	powerMin, powerMax = 60.0, 700.0 // H200: the limit Sample reports
	memMin, memMax     = 5.0, 88.0   // percent: below the VRAM alert, which a steady model server does not cross
	cpuMin, cpuMax     = 2.0, 98.0
	rateMin            = 1e3
	threads            = 8.0      // a load of 8 is the uniform figures' top
	diskMax, netMax    = 1e8, 1e9 // bytes/s, the uniform figures' ranges
)

type gpuWalk struct {
	state  gpuState
	util   float64 // percent
	temp   float64 // °C
	power  float64 // W
	mem    float64 // percent of the card's memory used
	energy float64 // J since the driver loaded
}

type walk struct {
	cfg  Config
	name string
	rng  *rand.Rand
	gpus []gpuWalk
	cpu  float64
	// load5, load15 follow the CPU with their own lag.
	load5, load15 float64
	// rates: disk read, disk write, net rx, net tx.
	rates [4]float64
}

func newWalk(cfg Config, name string, rng *rand.Rand) *walk {
	w := &walk{cfg: cfg, name: name, rng: rng, gpus: make([]gpuWalk, cfg.GPUs)}
	for i := range w.gpus {
		g := &w.gpus[i]
		g.state = w.drawState()
		// Start at the state's level, as a fleet already running.
		g.util = utilLevel[g.state]
		g.temp, g.power = tempLevel(g.util), powerLevel(g.util)
		g.mem = memMin + rng.Float64()*(memMax-memMin)
		g.energy = 1e6 + rng.Float64()*9e6
	}
	w.cpu = 20 + rng.Float64()*40
	w.load5, w.load15 = w.cpu/100*threads, w.cpu/100*threads
	w.rates = [4]float64{1e6 + rng.Float64()*5e7, 1e6 + rng.Float64()*5e7, 1e7 + rng.Float64()*5e8, 1e7 + rng.Float64()*5e8}
	return w
}

func (w *walk) drawState() gpuState {
	switch x := w.rng.Float64(); {
	case x < shareHot:
		return gpuHot
	case x < shareHot+shareIdle:
		return gpuIdle
	}
	return gpuServing
}

// Temperature and power follow utilization: an H200 idles near 30 °C and
// 100 W and runs near 80 °C and 660 W saturated (94 % of its 700 W limit).
func tempLevel(util float64) float64  { return 32 + 0.5*util }
func powerLevel(util float64) float64 { return 100 + 5.8*util }

// step moves x towards level by the pull, adds a normal step of sd, and
// keeps it within [lo, hi].
func (w *walk) step(x, level, sd, lo, hi float64) float64 {
	return min(hi, max(lo, x+pull*(level-x)+sd*w.rng.NormFloat64()))
}

// Sample builds the sample of Sample (the same sections, processes and
// sizes) with the walked figures in place of the uniform ones.
func (w *walk) Sample(boot string, seq uint64, now time.Time) *metrics.Sample {
	s := Sample(w.name, boot, seq, now, w.cfg, w.rng)
	secs := w.cfg.Interval.Seconds()
	for i := range w.gpus {
		g := &w.gpus[i]
		if w.rng.IntN(switchEvery) == 0 {
			g.state = w.drawState()
		}
		g.util = w.step(g.util, utilLevel[g.state], utilStep, 0, 100)
		g.temp = w.step(g.temp, tempLevel(g.util), tempStep, tempMin, tempMax)
		g.power = w.step(g.power, powerLevel(g.util), powerStep, powerMin, powerMax)
		g.mem = w.step(g.mem, g.mem, memStep, memMin, memMax)
		g.energy += g.power * secs

		sg := &s.GPUs[i]
		total := float64(*sg.MemTotal)
		*sg.Util, *sg.Temp, *sg.Power, *sg.Energy = g.util, g.temp, g.power, g.energy
		*sg.MemUtil = min(100, g.util*0.8)
		*sg.MemUsed = uint64(g.mem / 100 * total)
		// The GPU's processes share its utilization and its memory.
		for p := range sg.Processes {
			n := float64(len(sg.Processes))
			*sg.Processes[p].SMUtil = g.util / n
			*sg.Processes[p].MemUsed = uint64(g.mem / 100 * total / n)
		}
	}
	w.cpu = w.step(w.cpu, w.cpu, hostStep, cpuMin, cpuMax)
	for i, hi := range []float64{diskMax, diskMax, netMax, netMax} {
		w.rates[i] = min(hi, max(rateMin, w.rates[i]*math.Exp(rateFactor*w.rng.NormFloat64())))
	}
	sys := s.System
	// Load averages follow the CPU, the longer ones more slowly.
	load1 := w.cpu / 100 * threads
	w.load5 += (load1 - w.load5) * secs / 300
	w.load15 += (load1 - w.load15) * secs / 900
	*sys.CPUPercent, *sys.Load1, *sys.Load5, *sys.Load15 = w.cpu, load1, w.load5, w.load15
	*sys.DiskReadBps, *sys.DiskWriteBps, *sys.NetRxBps, *sys.NetTxBps = w.rates[0], w.rates[1], w.rates[2], w.rates[3]
	return s
}
