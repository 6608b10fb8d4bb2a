package agentcost

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Usage is what a process has cost so far, summed over its threads.
type Usage struct {
	CPU      time.Duration // se.sum_exec_runtime
	Switches uint64        // nr_switches
	Threads  int
}

// ReadUsage sums the scheduler statistics of every thread of pid, from
// /proc/<pid>/task/*/sched. The scheduler counts run time in nanoseconds,
// where /proc/<pid>/stat rounds to clock ticks (10 ms), more than the
// agent spends on a collection. A thread that exits takes its time with it;
// Go keeps its threads, so a process that runs long enough loses nothing.
func ReadUsage(procRoot string, pid int) (Usage, error) {
	tasks, err := filepath.Glob(filepath.Join(procRoot, strconv.Itoa(pid), "task", "*", "sched"))
	if err != nil {
		return Usage{}, err
	}
	if len(tasks) == 0 {
		return Usage{}, fmt.Errorf("process %d: no threads under %s (gone?)", pid, procRoot)
	}
	var u Usage
	for _, path := range tasks {
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread exited between the glob and the read
		}
		if err != nil {
			return Usage{}, err
		}
		cpu, sw, err := parseSched(b)
		if err != nil {
			return Usage{}, fmt.Errorf("%s: %w", path, err)
		}
		u.CPU += cpu
		u.Switches += sw
		u.Threads++
	}
	return u, nil
}

// parseSched reads se.sum_exec_runtime (milliseconds with six decimals)
// and nr_switches from one thread's sched file.
func parseSched(b []byte) (time.Duration, uint64, error) {
	var (
		cpu      time.Duration
		sw       uint64
		gotCPU   bool
		gotSwtch bool
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "se.sum_exec_runtime":
			ns, err := parseMillis(val)
			if err != nil {
				return 0, 0, fmt.Errorf("se.sum_exec_runtime %q: %w", val, err)
			}
			cpu, gotCPU = ns, true
		case "nr_switches":
			n, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("nr_switches %q: %w", val, err)
			}
			sw, gotSwtch = n, true
		}
	}
	if !gotCPU || !gotSwtch {
		return 0, 0, errors.New("no se.sum_exec_runtime or nr_switches")
	}
	return cpu, sw, nil
}

// parseMillis turns the kernel's "123.456789" (ms, printed from integer
// nanoseconds) into a duration without going through a float.
func parseMillis(s string) (time.Duration, error) {
	whole, frac, _ := strings.Cut(s, ".")
	ms, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, err
	}
	if len(frac) > 6 {
		frac = frac[:6]
	}
	frac += strings.Repeat("0", 6-len(frac))
	ns, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(ms)*time.Millisecond + time.Duration(ns), nil
}

// Memory is a process's resident memory, in bytes, from /proc/<pid>/status.
type Memory struct {
	RSS  uint64 // VmRSS
	Peak uint64 // VmHWM
	// Anon is the heap, stacks and other private memory; File the pages
	// of the binary and its libraries mapped in, which depends on what
	// the page cache holds (a binary just built is all there) and is
	// shared with every other process that maps them.
	Anon, File uint64
}

// ReadMemory reads pid's resident memory.
func ReadMemory(procRoot string, pid int) (Memory, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "status"))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	want := map[string]*uint64{"VmRSS": &m.RSS, "VmHWM": &m.Peak, "RssAnon": &m.Anon, "RssFile": &m.File}
	for line := range strings.Lines(string(b)) {
		key, val, ok := strings.Cut(line, ":")
		dst := want[key]
		if !ok || dst == nil {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("%s %q: %w", key, strings.TrimSpace(val), err)
		}
		*dst = kb << 10
		delete(want, key)
	}
	if len(want) > 0 {
		return Memory{}, fmt.Errorf("process %d: status lacks %v", pid, slices.Sorted(maps.Keys(want)))
	}
	return m, nil
}
