//go:build cgo

package collect

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// xidWait bounds one wait on the event set: NVML's wait cannot be
// interrupted, so this is how long Close may take to stop the watcher.
const xidWait = 500 * time.Millisecond

// maxPendingXIDs bounds the XIDs held between two samples. A GPU falling
// off the bus can raise thousands; past this many distinct (GPU, code,
// instance) keys the newcomers are counted as dropped.
const maxPendingXIDs = 256

// noInstance is what NVML puts in an event's GPU and compute instance
// ids when the event is not attributed to a MIG instance.
const noInstance = ^uint32(0)

// xidKey identifies the XIDs that are folded into one entry.
type xidKey struct {
	uuid   string
	code   uint64
	gi, ci uint32
}

// xidWatch waits on an NVML event set for critical XID events in its own
// goroutine and keeps them until the next collection takes them.
type xidWatch struct {
	set  nvml.EventSet
	log  *slog.Logger
	now  func() time.Time
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	order   []xidKey
	pending map[xidKey]*metrics.XID
	dropped int
}

// watchXIDs registers every device that supports critical XID events on a
// new event set and starts the watcher. It returns nil, nil when no device
// (or the driver) supports the events.
func watchXIDs(lib nvml.Interface, devs []indexed, log *slog.Logger, now func() time.Time) (*xidWatch, error) {
	set, r := lib.EventSetCreate()
	if r == nvml.ERROR_NOT_SUPPORTED {
		return nil, nil
	}
	if r != nvml.SUCCESS {
		return nil, fmt.Errorf("NVML event set: %w", r)
	}
	registered, err := registerXIDs(set, devs)
	if registered == 0 {
		set.Free()
		return nil, err
	}
	w := &xidWatch{
		set: set, log: log, now: now,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		pending: map[xidKey]*metrics.XID{},
	}
	go w.run()
	return w, err
}

// registerXIDs registers the devices that support critical XID events on
// set, and says how many it registered.
func registerXIDs(set nvml.EventSet, devs []indexed) (int, error) {
	registered := 0
	var errs []error
	for _, d := range devs {
		types, r := d.dev.GetSupportedEventTypes()
		if r == nvml.ERROR_NOT_SUPPORTED || (r == nvml.SUCCESS && types&nvml.EventTypeXidCriticalError == 0) {
			continue
		}
		if r != nvml.SUCCESS {
			errs = append(errs, fmt.Errorf("gpu %d event types: %w", d.index, r))
			continue
		}
		switch r := d.dev.RegisterEvents(nvml.EventTypeXidCriticalError, set); r {
		case nvml.SUCCESS:
			registered++
		case nvml.ERROR_NOT_SUPPORTED:
		default:
			errs = append(errs, fmt.Errorf("gpu %d XID events: %w", d.index, r))
		}
	}
	return registered, errors.Join(errs...)
}

// indexed is a device handle with its index, for error messages.
type indexed struct {
	index int
	dev   nvml.Device
}

func (w *xidWatch) run() {
	defer close(w.done)
	failing := false
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		ev, r := w.set.Wait(uint32(xidWait / time.Millisecond))
		switch r {
		case nvml.SUCCESS:
			failing = false
			w.add(ev)
		case nvml.ERROR_TIMEOUT:
			failing = false
		default:
			// A failing wait returns at once; pause so it does not spin,
			// and log the first failure of a run only.
			if !failing {
				w.log.Warn("waiting for XID events failed", "err", r.Error())
				failing = true
			}
			select {
			case <-w.stop:
				return
			case <-time.After(xidWait):
			}
		}
	}
}

// add records one event, folding it into the entry of the same device,
// code and instance.
func (w *xidWatch) add(ev nvml.EventData) {
	if ev.EventType&nvml.EventTypeXidCriticalError == 0 || ev.Device == nil {
		return
	}
	uuid, r := ev.Device.GetUUID()
	if r != nvml.SUCCESS {
		w.log.Warn("XID event from a device without UUID", "xid", ev.EventData, "err", r.Error())
		return
	}
	k := xidKey{uuid: uuid, code: ev.EventData, gi: ev.GpuInstanceId, ci: ev.ComputeInstanceId}
	at := w.now().UnixNano()
	w.mu.Lock()
	defer w.mu.Unlock()
	if x, ok := w.pending[k]; ok {
		x.Count++
		return
	}
	if len(w.pending) >= maxPendingXIDs {
		w.dropped++
		return
	}
	x := &metrics.XID{Code: ev.EventData, TS: at, Count: 1}
	if k.gi != noInstance {
		x.GPUInstance = ptrTo(k.gi)
		if k.ci != noInstance {
			x.ComputeInstance = ptrTo(k.ci)
		}
	}
	w.pending[k] = x
	w.order = append(w.order, k)
}

// take hands over the XIDs of the devices in want (by UUID), in arrival
// order, and keeps the others for a later collection that reads their
// device. It also returns how many events were dropped since the
// last call.
func (w *xidWatch) take(want map[string]int) (map[string][]metrics.XID, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out map[string][]metrics.XID
	kept := w.order[:0]
	for _, k := range w.order {
		if _, ok := want[k.uuid]; !ok {
			kept = append(kept, k)
			continue
		}
		if out == nil {
			out = map[string][]metrics.XID{}
		}
		out[k.uuid] = append(out[k.uuid], *w.pending[k])
		delete(w.pending, k)
	}
	w.order = kept
	dropped := w.dropped
	w.dropped = 0
	return out, dropped
}

// close stops the watcher, which ends within one wait, and frees the set.
func (w *xidWatch) close() error {
	close(w.stop)
	<-w.done
	if r := w.set.Free(); r != nvml.SUCCESS {
		return fmt.Errorf("NVML event set free: %w", r)
	}
	return nil
}
