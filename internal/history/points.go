package history

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// This file turns the windows' slots back into points: each series' slot
// mean is written, through the field table, into the view type its field
// is read from, so a point reads as a live update does.

// UnknownHostError is Window's answer for a host with no history: a
// typo'd host filter is the client's mistake to hear about, not an empty
// chart. Known lists the hosts that have history, sorted.
type UnknownHostError struct {
	Host  string
	Known []string
}

func (e *UnknownHostError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("unknown host %q: no host has history yet", e.Host)
	}
	return fmt.Sprintf("unknown host %q (known hosts: %s)", e.Host, strings.Join(e.Known, ", "))
}

// KnownHosts lets a caller that does not import this package (the HTTP
// server) tell an unknown host from a bad range.
func (e *UnknownHostError) KnownHosts() []string { return e.Known }

// MaxWindowHosts is the most hosts a window of every host (Window with no
// host) covers. Its size grows with the fleet: at 2,000 8-GPU hosts the
// 60m one is about 500 MB of JSON, built in 10-22 s on a 2-core machine
// and held whole while it is sent, which passed the HTTP server's write
// timeout under load and cut the response. Past this many hosts a client
// asks for one host's window or the fleet's totals (FleetWindow); at 256
// hosts of 8 GPUs the 60m window is about 65 MB.
const MaxWindowHosts = 256

// TooManyHostsError is Window's answer, with no host, for a fleet of
// more than MaxWindowHosts hosts.
type TooManyHostsError struct{ Hosts int }

func (e *TooManyHostsError) Error() string {
	return fmt.Sprintf("the history of every host is not served past %d hosts (%d have history): ask for one host (host=NAME) or the fleet's totals (view=fleet)",
		MaxWindowHosts, e.Hosts)
}

// TooLarge lets a caller that does not import this package (the HTTP
// server) tell this error from a bad range.
func (e *TooManyHostsError) TooLarge() bool { return true }

// Window returns the 60 points of range rng ending with the slot that
// holds now, oldest first. host, when not empty, restricts the agents'
// series to that host, and a host with no history is an
// *UnknownHostError; the hub's own series are always included. With no
// host, a fleet of more than MaxWindowHosts is a *TooManyHostsError.
func (s *Store) Window(now time.Time, rng, host string) (metrics.History, error) {
	return s.window(now, rng, host, false)
}

// FleetWindow is the fleet view's window of range rng: the fleet's totals
// (Point.Fleet) and the hub's own series, no host's.
func (s *Store) FleetWindow(now time.Time, rng string) (metrics.History, error) {
	return s.window(now, rng, "", true)
}

func (s *Store) window(now time.Time, rng, host string, fleet bool) (metrics.History, error) {
	t := -1
	for i, d := range s.defs {
		if d.name == rng {
			t = i
		}
	}
	if t < 0 {
		return metrics.History{}, fmt.Errorf("unknown range %q (want one of %v)", rng, Ranges())
	}
	res := s.defs[t].res
	end := trunc(now.UnixNano(), res)
	h := metrics.History{Range: rng, ResolutionS: int(res / int64(time.Second)), Points: make([]metrics.Point, ringSize)}
	for k := range h.Points {
		h.Points[k].Timestamp = time.Unix(0, end-int64(ringSize-1-k)*res).UTC()
	}

	s.mu.Lock()
	var names []string
	switch {
	case fleet:
	case host != "":
		if _, ok := s.hosts[host]; !ok {
			known := slices.Sorted(maps.Keys(s.hosts))
			s.mu.Unlock()
			return metrics.History{}, &UnknownHostError{Host: host, Known: known}
		}
		names = []string{host}
	case len(s.hosts) > MaxWindowHosts:
		n := len(s.hosts)
		s.mu.Unlock()
		return metrics.History{}, &TooManyHostsError{Hosts: n}
	default:
		names = slices.Sorted(maps.Keys(s.hosts))
	}
	s.mu.Unlock()
	// The store is locked for hostsPerLock hosts of one point at a time:
	// every host's window at once (the default view's, 2,000 hosts) took
	// seconds, and the samples arriving meanwhile waited for the lock.
	// Point by point, each point's maps built whole before the next:
	// host by host over all the points, 60 maps grew at once and
	// BenchmarkWindow60mEveryHost took 340 ms against 180 (one lock
	// for the whole window: 175).
	scratch := make([]stat, 0, 64)
	for k := range h.Points {
		p := &h.Points[k]
		start := p.Timestamp.UnixNano()
		for i := 0; i < len(names); i += hostsPerLock {
			s.mu.Lock()
			for _, name := range names[i:min(i+hostsPerLock, len(names))] {
				if ser := s.hosts[name]; ser != nil { // gone since: silent for a week
					scratch = s.slotStats(ser, t, start, scratch[:0])
					s.hostPoint(p, ser, scratch)
				}
			}
			s.mu.Unlock()
		}
		s.mu.Lock()
		scratch = s.slotStats(s.hub, t, start, scratch[:0])
		s.hubPoint(p, s.hub, scratch, fleet)
		s.mu.Unlock()
	}
	return h, nil
}

// hostsPerLock is how many hosts' slots a window reads under one hold of
// the store's lock.
const hostsPerLock = 64

type pointMax struct{ m map[string]float64 }

func (p *pointMax) set(key string, v float64) {
	if p.m == nil {
		p.m = map[string]float64{}
	}
	p.m[key] = v
}

// hostPoint adds one host's slot to p: its host view to p.Hosts, its GPU
// views to p.GPUs and, for the first host that has them, p.Host, p.GPU and
// p.AIModels. The maxima go in p.Max under "hosts.<host>.<field>" and
// "gpus.<host>.<index>.<field>", and the first host's under the update's
// paths too.
func (s *Store) hostPoint(p *metrics.Point, ser *series, stats []stat) {
	var hv metrics.HostView
	var models metrics.AIModels
	hasHost, hasModels := false, false
	gpus := map[int]*metrics.GPUView{}
	mx := pointMax{p.Max}
	hostPrefix := "hosts." + ser.name + "."
	for si, st := range stats {
		if st.n == 0 {
			continue
		}
		k := ser.keys[si]
		f := &s.tab.fields[k.field()]
		switch f.sec {
		case secHost:
			f.set(&hv, st.mean())
			hasHost = true
			mx.set(hostPrefix+strings.TrimPrefix(f.path, "host."), st.top())
		case secGPU:
			g := gpus[k.gpu()]
			if g == nil {
				idx := k.gpu()
				g = &metrics.GPUView{Host: ser.name, Index: &idx}
				gpus[idx] = g
			}
			f.set(g, st.mean())
			mx.set("gpus."+ser.name+"."+strconv.Itoa(k.gpu())+"."+f.path, st.top())
		case secModels:
			f.set(&models, st.mean())
			hasModels = true
			if p.AIModels == nil {
				mx.set(f.path, st.top())
			}
		}
	}
	// first sets the update's own max keys of the first host's series of
	// section sec (and GPU gpu).
	first := func(sec section, gpu int, prefix string) {
		for si, st := range stats {
			k := ser.keys[si]
			if f := &s.tab.fields[k.field()]; st.n > 0 && f.sec == sec && k.gpu() == gpu {
				mx.set(prefix+f.path, st.top())
			}
		}
	}
	if hasHost {
		p.Hosts = append(p.Hosts, metrics.HostStatus{Host: ser.name, Online: true, LastSeen: p.Timestamp, System: hv, GPUCount: len(gpus)})
		if p.Host == nil {
			h := hv
			p.Host = &h
			first(secHost, 0, "")
		}
	}
	if hasModels && p.AIModels == nil {
		p.AIModels = &models
	}
	if len(gpus) > 0 {
		idxs := slices.Sorted(maps.Keys(gpus))
		for _, i := range idxs {
			p.GPUs = append(p.GPUs, *gpus[i])
		}
		if p.GPU == nil {
			g := *gpus[idxs[0]]
			p.GPU = &g
			first(secGPU, idxs[0], "gpu.")
		}
	}
	p.Max = mx.m
}

// hubPoint adds the hub's own slot to p; the fleet's totals only to a
// fleet window's.
func (s *Store) hubPoint(p *metrics.Point, ser *series, stats []stat, fleet bool) {
	mx := pointMax{p.Max}
	for si, st := range stats {
		f := &s.tab.fields[ser.keys[si].field()]
		if st.n == 0 || !f.sec.ofHub() || (f.sec == secFleet && !fleet) {
			continue
		}
		f.set(hubView(p, f.sec), st.mean())
		mx.set(f.path, st.top())
	}
	p.Max = mx.m
}

// hubView is the part of p a hub section's figures go in, made when its
// first figure is.
func hubView(p *metrics.Point, sec section) any {
	switch sec {
	case secInference:
		if p.Inference == nil {
			p.Inference = &metrics.Latencies{}
		}
		return p.Inference
	case secDatabases:
		if p.Databases == nil {
			p.Databases = &metrics.Databases{}
		}
		return p.Databases
	case secContainers:
		if p.Containers == nil {
			p.Containers = &metrics.ContainerCounts{}
		}
		return p.Containers
	default:
		if p.Fleet == nil {
			p.Fleet = &metrics.FleetFigures{}
		}
		return p.Fleet
	}
}
