package view

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
)

// shared is what every host view of one update holds alike, encoded
// once: the site-wide sections (databases, containers, inference, ...)
// are the bulk of a host view that is not its own GPUs, and a tick
// encodes hundreds of host views.
type shared struct {
	once sync.Once
	err  error
	// Each field's value; nil for one a host view leaves out. size is
	// the length of those every host view holds as they are.
	size                                                           int
	typ, ts, gpu, aiModels, inference, databases, host, containers []byte
	inferenceWindows                                               []byte
}

func (s *Site) encodeShared() error {
	sh := &s.shared
	sh.once.Do(func() {
		u := s.u
		for _, f := range []struct {
			dst *[]byte
			v   any
		}{
			{&sh.typ, &u.Type}, {&sh.ts, &u.Timestamp}, {&sh.gpu, &u.GPU}, {&sh.aiModels, &u.AIModels},
			{&sh.inference, &u.Inference}, {&sh.databases, &u.Databases}, {&sh.host, &u.Host},
			{&sh.containers, &u.Containers},
		} {
			if *f.dst, sh.err = json.Marshal(f.v); sh.err != nil {
				return
			}
		}
		if len(u.InferenceWindows) > 0 { // omitempty
			sh.inferenceWindows, sh.err = json.Marshal(u.InferenceWindows)
		}
		// gpu, host and ai_models are left out: agents fill them, so
		// host views have their own (as they have their own models).
		for _, b := range [][]byte{sh.typ, sh.ts, sh.inference, sh.databases, sh.containers, sh.inferenceWindows} {
			sh.size += len(b) + 24 // and its key
		}
	})
	return sh.err
}

// HostJSON is json.Marshal of Host(host), byte for byte, errors too.
// Where the sections every host view shares (databases, containers,
// inference and its windows) come to spliceFrom or
// more, they are encoded once per update, on the first call, and copied
// in; the host's own sections are encoded into the one buffer the view is
// written to. A site of many containers holds them in every host view,
// so encoding them once a tick rather than once a host is most of the
// saving there. Safe for concurrent use: the server
// encodes a tick's host views in parallel. ok is false for an unknown
// host.
func (s *Site) HostJSON(host string) (b []byte, ok bool, err error) {
	v, o, ok := s.host(host)
	if !ok {
		return nil, false, nil
	}
	sh := &s.shared
	if err := s.encodeShared(); err != nil || sh.size < spliceFrom {
		// One Marshal of the whole view is cheaper than a call per
		// section when there is little to share (and says what it
		// could not encode, if a shared section was that).
		if b, err = json.Marshal(&v); err != nil {
			return nil, true, fmt.Errorf("encode %s's view: %w", host, err)
		}
		return b, true, nil
	}
	w := hostWriter{buf: bytes.NewBuffer(make([]byte, 0, sh.size+len(sh.gpu)+len(sh.host)+len(sh.aiModels)+hostViewPerGPU*len(v.GPUs)))}
	w.enc = json.NewEncoder(w.buf)
	// What the view replaced is encoded for it; the rest is the update's.
	// The keys are metrics.Update's, in its order, which
	// TestHostJSONFieldsAreTheUpdates checks against the type.
	w.buf.WriteString(`{"type":`)
	w.buf.Write(sh.typ)
	w.raw("timestamp", sh.ts)
	w.either("gpu", o.gpu, &v.GPU, sh.gpu)
	w.either("ai_models", o.aiModels, &v.AIModels, sh.aiModels)
	w.raw("inference", sh.inference)
	w.raw("databases", sh.databases)
	w.either("host", o.host, &v.Host, sh.host)
	w.raw("containers", sh.containers)
	w.encode("alerts", v.Alerts)
	w.encode("gpus", v.GPUs)
	w.encode("hosts", v.Hosts)
	w.encode("sources", v.Sources)
	w.encode("stale", v.Stale)
	if len(v.Errors) > 0 { // omitempty
		w.encode("errors", v.Errors)
	}
	if sh.inferenceWindows != nil {
		w.raw("inference_windows", sh.inferenceWindows)
	}
	w.encode("models", v.Models)
	if w.err != nil {
		return nil, true, fmt.Errorf("encode %s's view: %w", host, w.err)
	}
	w.buf.WriteByte('}')
	return w.buf.Bytes(), true, nil
}

const (
	// spliceFrom is the size of the shared sections from which HostJSON
	// splices: below it, a Marshal per section costs more than encoding
	// them again (BenchmarkHostViews: a site of GPUs alone, about 2 KB
	// shared, 10 % slower spliced; two model servers a host at 200 hosts,
	// 180 KB shared, 4–7 times faster).
	spliceFrom = 2 << 10
	// hostViewPerGPU is about what one GPU adds to a host view (with its
	// processes), to size the buffer once.
	hostViewPerGPU = 1024
)

// hostWriter writes a host view's fields; the first error sticks.
type hostWriter struct {
	buf *bytes.Buffer
	enc *json.Encoder
	err error
}

func (w *hostWriter) key(name string) {
	w.buf.WriteString(`,"`)
	w.buf.WriteString(name)
	w.buf.WriteString(`":`)
}

func (w *hostWriter) raw(name string, v []byte) {
	w.key(name)
	w.buf.Write(v)
}

// encode writes v as json.Marshal does: the Encoder's escaping is
// Marshal's, and the newline it ends with is dropped.
func (w *hostWriter) encode(name string, v any) {
	if w.err != nil {
		return
	}
	w.key(name)
	if w.err = w.enc.Encode(v); w.err == nil {
		w.buf.Truncate(w.buf.Len() - 1)
	}
}

// either writes the view's own section when it replaced the update's,
// else the update's, encoded once.
func (w *hostWriter) either(name string, replaced bool, v any, shared []byte) {
	if replaced {
		w.encode(name, v)
		return
	}
	w.raw(name, shared)
}
