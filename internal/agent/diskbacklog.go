package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sysperf/sysperf/pkg/metrics"
)

// The on-disk backlog is a directory of segment files and one head file.
//
// A segment, NNNNNNNNNNNNNNNN.seg (16 hex digits, rising), starts with
// segMagic and holds records appended one after the other:
//
//	u32 LE payload length | u32 LE CRC-32C of the payload | payload
//	payload: i64 LE ts (unix ns) | u16 LE len | Nats-Msg-Id | u16 LE len | subject | sample
//
// The sample is the msgpack the agent publishes, stored as it is, so a
// replay sends the very bytes it would have sent. Records are only ever
// appended, to the newest segment, and a segment from an earlier run is
// never appended to: a torn tail left by a power loss stays where it is,
// behind the good records. A segment is deleted as a whole once every one
// of its records has been sent or dropped.
//
// head holds the position of the first record not yet sent (u64 LE
// segment number, i64 LE offset, CRC-32C of both), rewritten in place
// after every send, so a restart resumes there. It is not synced after each
// write: after a power loss it may lag, and what it lags by is sent again.
// That is harmless, because delivery here is at least once on purpose: the
// hub's stream de-duplicates on Nats-Msg-Id (host/boot/seq/key, kept with
// the record, so a replay by the next run repeats the same id) over a window longer than the backlog's age.
//
// Segments are not synced after each record either: a restart or a crash
// of the agent loses nothing (the data is in the kernel's page cache), a
// power loss may lose the last seconds' records, which start-up detects
// by their CRC and skips.
const (
	segMagic   = "SPBLOG1\n"
	segSuffix  = ".seg"
	headFile   = "head"
	recHeader  = 8  // length and CRC
	headLen    = 20 // segment, offset, CRC
	probeGlob  = ".probe-*"
	segNameLen = 16 + len(segSuffix)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segmentSize is where a segment is closed and a new one begun: an eighth
// of the bound, so dropping by bytes frees space in steps of that, within
// [1 MiB, 16 MiB].
func segmentSize(maxBytes int) int64 {
	return min(max(int64(maxBytes)/8, 1<<20), 16<<20)
}

// diskBacklog is the backlog kept in a directory so that it survives a
// restart of the agent. It keeps the same ledger as backlog (same bounds,
// same drops, same order), told of every record that leaves so that the
// send position and the segments follow; in memory it keeps only where
// each sample is.
type diskBacklog struct {
	// ledger's mu guards the fields below as well.
	ledger
	dir     string
	segSize int64
	log     *slog.Logger
	lock    *os.File // the directory, flocked so that one agent owns it

	segs      []*segment
	nextSeg   uint64
	head      *os.File // nil until first written
	headSeg   uint64   // first segment not wholly sent
	headOff   int64    // within it, where the first unsent record starts
	headDirty bool
	writeErr  bool // the last write failed: samples are kept in memory
	closed    bool
}

type segment struct {
	num    uint64
	f      *os.File
	size   int64 // bytes of good records (and the magic)
	live   int   // records neither sent nor dropped
	sealed bool  // appended to no more: full, from an earlier run, or a write failed
}

func segName(num uint64) string { return fmt.Sprintf("%016x%s", num, segSuffix) }

// openDiskBacklog opens (creating it if need be) the backlog in dir and
// loads what an earlier run left unsent.
func openDiskBacklog(dir string, maxAge time.Duration, maxBytes int, segSize int64, log *slog.Logger) (*diskBacklog, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("backlog-dir %s: %w", dir, err)
	}
	// Fail now rather than at the first outage: a directory that cannot
	// take a file would lose the backlog exactly when it is needed.
	probe, err := os.CreateTemp(dir, probeGlob)
	if err != nil {
		return nil, fmt.Errorf("backlog-dir %s: not writable: %w", dir, err)
	}
	probe.Close()
	if err := os.Remove(probe.Name()); err != nil {
		return nil, fmt.Errorf("backlog-dir %s: not writable: %w", dir, err)
	}
	lock, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("backlog-dir %s: %w", dir, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("backlog-dir %s: in use by another agent", dir)
		}
		return nil, fmt.Errorf("backlog-dir %s: lock: %w", dir, err)
	}
	b := &diskBacklog{ledger: ledger{maxAge: maxAge, maxBytes: maxBytes}, dir: dir, segSize: segSize, log: log, lock: lock}
	b.removed = b.forget
	if err := b.load(); err != nil {
		b.closeFiles()
		return nil, err
	}
	return b, nil
}

// load reads the head position and every segment's records after it.
func (b *diskBacklog) load() error {
	b.readHead()
	des, err := os.ReadDir(b.dir)
	if err != nil {
		return fmt.Errorf("backlog-dir %s: %w", b.dir, err)
	}
	var nums []uint64
	for _, de := range des {
		name := de.Name()
		if len(name) != segNameLen || !strings.HasSuffix(name, segSuffix) || !de.Type().IsRegular() {
			continue
		}
		num, err := strconv.ParseUint(name[:16], 16, 64)
		if err != nil {
			continue
		}
		nums = append(nums, num)
		b.nextSeg = max(b.nextSeg, num+1)
	}
	slices.Sort(nums)
	for _, num := range nums {
		path := filepath.Join(b.dir, segName(num))
		if num < b.headSeg { // sent; the run before stopped before deleting it
			b.removeFile(path)
			continue
		}
		if err := b.loadSegment(num, path); err != nil {
			return err
		}
	}
	if len(b.items) == 0 {
		b.removeFile(filepath.Join(b.dir, headFile))
		b.headSeg, b.headOff = b.nextSeg, 0
		return nil
	}
	b.fit()
	b.flushHead()
	if len(b.items) > 0 {
		b.log.Info("backlog resumed from disk", "dir", b.dir, "samples", len(b.items), "bytes", b.bytes,
			"oldest", b.items[0].ts.UTC(), "dropped", b.dropped)
	}
	return nil
}

// readHead reads the position saved by the last run. Without one every
// record on disk is sent again, which the stream de-duplicates.
func (b *diskBacklog) readHead() {
	buf, err := os.ReadFile(filepath.Join(b.dir, headFile))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err == nil && len(buf) == headLen && crc32.Checksum(buf[:16], castagnoli) == binary.LittleEndian.Uint32(buf[16:]) {
		b.headSeg = binary.LittleEndian.Uint64(buf)
		b.headOff = int64(binary.LittleEndian.Uint64(buf[8:]))
		return
	}
	if err == nil {
		err = errors.New("damaged")
	}
	path := filepath.Join(b.dir, headFile)
	b.log.Warn("backlog head position unreadable; sending everything on disk again (the stream drops repeats)",
		"file", path, "err", err)
	// Said once: the next position saved replaces it.
	b.removeFile(path)
}

// loadSegment indexes the good records of one segment. The first record
// that is cut short or fails its CRC ends the segment: what follows cannot
// be framed with any trust. It is logged once and cut off, so the file
// holds only good records from then on.
func (b *diskBacklog) loadSegment(num uint64, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("backlog-dir %s: %w", b.dir, err)
	}
	if len(data) < len(segMagic) {
		// Created, then the power went before its first record.
		b.log.Warn("backlog segment empty or torn at its start; removed", "file", path, "bytes", len(data))
		b.removeFile(path)
		return nil
	}
	if string(data[:len(segMagic)]) != segMagic {
		// Not ours, or a format this agent does not know (a downgrade):
		// leave it for whoever does.
		b.log.Warn("backlog segment of an unknown format; left alone", "file", path)
		return nil
	}
	seg := &segment{num: num, sealed: true}
	first := len(b.items)
	off := int64(len(segMagic))
	for off < int64(len(data)) {
		r, ok := decodeRecord(data[off:])
		if !ok {
			b.log.Warn("backlog segment damaged (torn or corrupt record); the rest of it is skipped",
				"file", path, "offset", off, "skipped_bytes", int64(len(data))-off, "kept", len(b.items)-first)
			if err := os.Truncate(path, off); err != nil {
				b.log.Warn("backlog segment not cut at its damage", "file", path, "err", err)
			}
			break
		}
		if num > b.headSeg || off >= b.headOff {
			r.seg, r.off, r.data = seg, off, nil
			b.put(r)
			seg.live++
		}
		off += r.n
	}
	seg.size = off
	if seg.live == 0 {
		b.removeFile(path)
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		b.cut(first)
		return fmt.Errorf("backlog-dir %s: %w", b.dir, err)
	}
	seg.f = f
	b.segs = append(b.segs, seg)
	return nil
}

// encodeRecord frames e for a segment.
func encodeRecord(e entry) ([]byte, error) {
	if len(e.id) > math.MaxUint16 || len(e.subject) > math.MaxUint16 {
		return nil, fmt.Errorf("sample %s: id or subject too long for the backlog", metrics.PublicMsgID(e.id))
	}
	n := 8 + 2 + len(e.id) + 2 + len(e.subject) + len(e.data)
	if n > math.MaxUint32 {
		return nil, fmt.Errorf("sample %s: too large for the backlog", metrics.PublicMsgID(e.id))
	}
	buf := make([]byte, recHeader, recHeader+n)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(e.ts.UnixNano()))
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(e.id)))
	buf = append(buf, e.id...)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(e.subject)))
	buf = append(buf, e.subject...)
	buf = append(buf, e.data...)
	binary.LittleEndian.PutUint32(buf, uint32(n))
	binary.LittleEndian.PutUint32(buf[4:], crc32.Checksum(buf[recHeader:], castagnoli))
	return buf, nil
}

// decodeRecord reads the record at the start of buf; ok is false when it
// is cut short or damaged. The entry's data aliases buf.
func decodeRecord(buf []byte) (r record, ok bool) {
	if len(buf) < recHeader {
		return r, false
	}
	n := int64(binary.LittleEndian.Uint32(buf))
	if n > int64(len(buf)-recHeader) {
		return r, false
	}
	p := buf[recHeader : recHeader+n]
	if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(buf[4:]) || len(p) < 12 {
		return r, false
	}
	ts := int64(binary.LittleEndian.Uint64(p))
	p = p[8:]
	field := func() (string, bool) {
		if len(p) < 2 {
			return "", false
		}
		l := int(binary.LittleEndian.Uint16(p))
		if len(p) < 2+l {
			return "", false
		}
		s := string(p[2 : 2+l])
		p = p[2+l:]
		return s, true
	}
	id, ok1 := field()
	subject, ok2 := field()
	if !ok1 || !ok2 {
		return r, false
	}
	r.entry = entry{id: id, subject: subject, ts: time.Unix(0, ts), data: p}
	r.size = len(p)
	r.n = recHeader + n
	return r, true
}

// push appends e, on disk if it can, and drops what no longer fits. A failed write keeps e in memory instead: it is
// still sent, only not across a restart.
func (b *diskBacklog) push(e entry, now time.Time) (dropped int, first bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := record{entry: e, size: len(e.data)}
	if err := b.write(&r); err != nil {
		if !b.writeErr {
			b.log.Warn("backlog: writing to disk failed; keeping samples in memory until it works again",
				"dir", b.dir, "err", err)
			b.writeErr = true
		}
	} else {
		r.data = nil
		if b.writeErr {
			b.log.Info("backlog: writing to disk works again", "dir", b.dir)
			b.writeErr = false
		}
	}
	dropped, first = b.add(r, now)
	b.flushHead()
	return dropped, first
}

// write writes r to the newest segment, beginning a new one when that is
// full or cannot be appended to, and sets where r is.
func (b *diskBacklog) write(r *record) error {
	if b.closed {
		return errors.New("backlog closed")
	}
	buf, err := encodeRecord(r.entry)
	if err != nil {
		return err
	}
	seg := b.active()
	if seg == nil || seg.size > int64(len(segMagic)) && seg.size+int64(len(buf)) > b.segSize {
		if seg != nil {
			b.seal(seg)
		}
		if seg, err = b.create(); err != nil {
			return err
		}
	}
	if _, err := seg.f.Write(buf); err != nil {
		// Cut off what part of the record got out, so that the segment
		// ends with a whole record, and append to it no more.
		if terr := seg.f.Truncate(seg.size); terr != nil {
			err = errors.Join(err, terr)
		}
		b.seal(seg)
		return fmt.Errorf("%s: %w", seg.f.Name(), err)
	}
	r.seg, r.off, r.n = seg, seg.size, int64(len(buf))
	seg.size += r.n
	seg.live++
	return nil
}

// active is the segment appended to, or nil.
func (b *diskBacklog) active() *segment {
	if len(b.segs) == 0 || b.segs[len(b.segs)-1].sealed {
		return nil
	}
	return b.segs[len(b.segs)-1]
}

func (b *diskBacklog) create() (*segment, error) {
	num := b.nextSeg
	path := filepath.Join(b.dir, segName(num))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	b.nextSeg++
	if _, err := f.WriteString(segMagic); err != nil {
		f.Close()
		b.removeFile(path)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	seg := &segment{num: num, f: f, size: int64(len(segMagic))}
	b.segs = append(b.segs, seg)
	return seg, nil
}

// seal ends appends to seg; a segment left with nothing to send goes.
func (b *diskBacklog) seal(seg *segment) {
	seg.sealed = true
	if seg.live == 0 {
		b.removeSegment(seg)
		return
	}
	// Once per segment: what it holds is on the disk before the next.
	_ = seg.f.Sync()
}

func (b *diskBacklog) removeSegment(seg *segment) {
	seg.f.Close()
	b.removeFile(seg.f.Name())
	if i := slices.Index(b.segs, seg); i >= 0 {
		b.segs = slices.Delete(b.segs, i, i+1)
	}
}

func (b *diskBacklog) removeFile(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		b.log.Warn("backlog: cannot remove a file", "file", path, "err", err)
	}
}

// peek returns the oldest sample still young enough to send, read back
// from disk. A record that cannot be read back is dropped, and with it the
// rest of its segment, which the same fault most likely spoilt.
func (b *diskBacklog) peek(now time.Time) (entry, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.flushHead()
	b.expire(now)
	for len(b.items) > 0 {
		r := &b.items[0]
		if r.data != nil {
			return r.entry, true
		}
		buf := make([]byte, r.n)
		_, err := r.seg.f.ReadAt(buf, r.off)
		if err == nil {
			got, ok := decodeRecord(buf)
			if ok && got.id == r.id {
				r.data = got.data // kept while it is the head: it is retried
				return r.entry, true
			}
			err = errors.New("record damaged")
		}
		seg, lost := r.seg, 0
		for len(b.items) > 0 && b.items[0].seg == seg {
			b.drop()
			lost++
		}
		b.log.Warn("backlog segment unreadable; its samples are dropped", "file", seg.f.Name(),
			"offset", r.off, "dropped", lost, "err", err)
	}
	return entry{}, false
}

// pop removes the oldest sample if it is still id (see ledger.take).
func (b *diskBacklog) pop(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.take(id) {
		b.flushHead()
	}
}

// forget moves the send position past a record that left the ledger;
// its segment goes once it holds nothing more to send.
func (b *diskBacklog) forget(r record) {
	if r.seg == nil {
		return
	}
	b.headSeg, b.headOff, b.headDirty = r.seg.num, r.off+r.n, true
	r.seg.live--
	if r.seg.live == 0 && r.seg.sealed {
		b.removeSegment(r.seg)
	}
}

// flushHead saves the position of the first unsent record, in place: 20
// bytes in one sector are written whole or not at all, and the CRC tells
// which.
func (b *diskBacklog) flushHead() {
	if !b.headDirty || b.closed {
		return
	}
	var buf [headLen]byte
	binary.LittleEndian.PutUint64(buf[:], b.headSeg)
	binary.LittleEndian.PutUint64(buf[8:], uint64(b.headOff))
	binary.LittleEndian.PutUint32(buf[16:], crc32.Checksum(buf[:16], castagnoli))
	var err error
	if b.head == nil {
		b.head, err = os.OpenFile(filepath.Join(b.dir, headFile), os.O_RDWR|os.O_CREATE, 0o600)
	}
	if err == nil {
		_, err = b.head.WriteAt(buf[:], 0)
	}
	if err != nil {
		// The position lags: after a restart some samples go again.
		if !b.writeErr {
			b.log.Warn("backlog: saving the send position failed", "dir", b.dir, "err", err)
			b.writeErr = true
		}
		return
	}
	b.headDirty = false
}

// close saves the position and releases the directory. With nothing left
// to send it leaves no file behind.
func (b *diskBacklog) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.flushHead()
	var errs []error
	for _, seg := range slices.Clone(b.segs) {
		if seg.live == 0 {
			b.removeSegment(seg)
		} else if !seg.sealed {
			if err := seg.f.Sync(); err != nil {
				errs = append(errs, fmt.Errorf("backlog %s: %w", seg.f.Name(), err))
			}
		}
	}
	if b.head != nil {
		if err := b.head.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("backlog %s: %w", b.head.Name(), err))
		}
	}
	if len(b.segs) == 0 {
		b.removeFile(filepath.Join(b.dir, headFile))
	}
	b.closeFiles()
	return errors.Join(errs...)
}

// closeFiles closes every file without another write, as a crash would.
func (b *diskBacklog) closeFiles() {
	b.closed = true
	for _, seg := range b.segs {
		seg.f.Close()
	}
	if b.head != nil {
		b.head.Close()
	}
	b.lock.Close() // releases the flock
}
