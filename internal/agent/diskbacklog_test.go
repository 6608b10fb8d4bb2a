package agent

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/logtest"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// recSize is the bytes on disk of testRecord(i, …) for a one-digit i with
// 100 bytes of data; testSeg makes segments of three such records.
const (
	recSize = recHeader + 8 + 2 + 1 + 2 + 1 + 100
	testSeg = int64(len(segMagic) + 3*recSize)
)

// testData is the sample bytes of record i: different for every i, so a
// record read back under the wrong id shows.
func testData(i, size int) []byte {
	return bytes.Repeat([]byte{byte('a' + i%26)}, size)
}

func testRecord(i int, ts time.Time) entry {
	return entry{id: strconv.Itoa(i), subject: "s", ts: ts, data: testData(i, 100)}
}

func openDisk(t *testing.T, dir string, maxAge time.Duration, maxBytes int, segSize int64, log *slog.Logger) *diskBacklog {
	t.Helper()
	if log == nil {
		log = testLogger(t)
	}
	b, err := openDiskBacklog(dir, maxAge, maxBytes, segSize, log)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = b.close() })
	return b
}

// crash lets go of b as a killed process would: no last write.
func crash(b *diskBacklog) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closeFiles()
}

// stop is one way a backlog is let go of, named for the subtest.
type stop struct {
	name string
	stop func(*diskBacklog)
}

// stops are the ways a backlog ends that the next start must cope with:
// a clean close and a crash.
func stops() []stop {
	return []stop{
		{"clean close", func(b *diskBacklog) { _ = b.close() }},
		{"crash", crash},
	}
}

// queuedIDs is what q holds, oldest first.
func queuedIDs(q queue) []string {
	var out []string
	switch b := q.(type) {
	case *backlog:
		return ids(b)
	case *diskBacklog:
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, r := range b.items {
			out = append(out, r.id)
		}
	}
	return out
}

// drain sends everything: peek and pop until empty, checking each
// sample's bytes are those pushed under its id.
func drain(t *testing.T, q queue, now time.Time) []string {
	t.Helper()
	var out []string
	for {
		e, ok := q.peek(now)
		if !ok {
			return out
		}
		i, err := strconv.Atoi(e.id)
		if err != nil {
			t.Fatalf("id %q", e.id)
		}
		if !bytes.Equal(e.data, testData(i, len(e.data))) || len(e.data) == 0 || e.subject != "s" {
			t.Fatalf("sample %s read back as %q on %q", e.id, e.data, e.subject)
		}
		out = append(out, e.id)
		q.pop(e.id)
	}
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

func seq(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

// TestDiskBacklogOrderAcrossReopen queues ten samples over four segments,
// sends four, and lets go of the backlog: a new one on the directory
// sends the other six in order, with their bytes and timestamps, then
// what is pushed after them.
func TestDiskBacklogOrderAcrossReopen(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_767_268_800, 0)
	for _, tc := range stops() {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b := openDisk(t, dir, time.Hour, 1<<20, testSeg, nil)
			for i := range 10 {
				b.push(testRecord(i, t0.Add(time.Duration(i)*time.Second)), t0)
			}
			if n := len(files(t, dir)); n != 4 {
				t.Errorf("%d files for 10 records of 3 a segment, want 4", n)
			}
			for i := range 4 {
				e, _ := b.peek(t0)
				b.pop(e.id)
				if i == 2 && slices.Contains(files(t, dir), segName(0)) {
					t.Errorf("segment 0 kept after its records were sent: %v", files(t, dir))
				}
			}
			tc.stop(b)

			b = openDisk(t, dir, time.Hour, 1<<20, testSeg, nil)
			if got := queuedIDs(b); !reflect.DeepEqual(got, seq(4, 10)) {
				t.Fatalf("reopened with %v, want %v", got, seq(4, 10))
			}
			if e, _ := b.peek(t0); !e.ts.Equal(t0.Add(4 * time.Second)) {
				t.Errorf("ts %v read back, want %v", e.ts, t0.Add(4*time.Second))
			}
			if n, bytes, dropped := b.stats(); n != 6 || bytes != 600 || dropped != 0 {
				t.Errorf("stats %d, %d bytes, %d dropped", n, bytes, dropped)
			}
			b.push(testRecord(10, t0.Add(10*time.Second)), t0)
			if got := drain(t, b, t0); !reflect.DeepEqual(got, seq(4, 11)) {
				t.Errorf("sent %v, want %v", got, seq(4, 11))
			}
		})
	}
}

// The bounds hold across a reopen, and what they drop is counted as in
// memory and leaves the disk.
func TestDiskBacklogBoundsOnReopen(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_767_268_800, 0)
	for _, tc := range []struct {
		name      string
		maxAge    time.Duration
		maxBytes  int
		now       time.Time // of the first peek after the reopen
		want      []string
		wantDrops uint64
		wantFiles int // segments after the drops
	}{
		{"within the bounds", time.Hour, 1 << 20, t0, seq(0, 9), 0, 3},
		{"a smaller byte bound drops the oldest", time.Hour, 450, t0, seq(5, 9), 5, 2},
		{"the age bound drops the oldest", 10 * time.Second, 1 << 20, t0.Add(15 * time.Second), seq(5, 9), 5, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b := openDisk(t, dir, time.Hour, 1<<20, testSeg, nil)
			for i := range 9 {
				b.push(testRecord(i, t0.Add(time.Duration(i)*time.Second)), t0)
			}
			crash(b)
			b = openDisk(t, dir, tc.maxAge, tc.maxBytes, testSeg, nil)
			if _, ok := b.peek(tc.now); !ok {
				t.Fatal("nothing to send")
			}
			if got := queuedIDs(b); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("kept %v, want %v", got, tc.want)
			}
			if n, bytes, dropped := b.stats(); dropped != tc.wantDrops || bytes != 100*n {
				t.Errorf("stats %d, %d bytes, %d dropped; want %d dropped", n, bytes, dropped, tc.wantDrops)
			}
			segs := 0
			for _, f := range files(t, dir) {
				if strings.HasSuffix(f, segSuffix) {
					segs++
				}
			}
			if segs != tc.wantFiles {
				t.Errorf("%d segments left, want %d: %v", segs, tc.wantFiles, files(t, dir))
			}
		})
	}
}

// TestDiskBacklogDamage damages the files of a backlog of nine samples in
// three segments, as a power loss or a bad disk would, and reopens it
// twice: the good records stay, the damage is logged once naming its file,
// and the next start finds nothing more to complain of.
func TestDiskBacklogDamage(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_767_268_800, 0)
	// off is where record i starts in its segment.
	off := func(i int) int64 { return int64(len(segMagic) + (i%3)*recSize) }
	seg := func(dir string, i int) string { return filepath.Join(dir, segName(uint64(i/3))) }
	flip := func(path string, at int64) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[at] ^= 0x40
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		sent    int // popped before the damage
		damage  func(dir string)
		want    []string
		logFile string // the file the warning names, "" for none
		warning string
	}{
		{"torn tail", 0, func(dir string) {
			if err := os.Truncate(seg(dir, 8), off(8)+recSize-10); err != nil {
				t.Fatal(err)
			}
		}, seq(0, 8), segName(2), "segment damaged"},
		{"torn within a record's header", 0, func(dir string) {
			if err := os.Truncate(seg(dir, 8), off(8)+4); err != nil {
				t.Fatal(err)
			}
		}, seq(0, 8), segName(2), "segment damaged"},
		{"a flipped byte in a sample in the middle", 0, func(dir string) {
			flip(seg(dir, 4), off(4)+recSize-50)
		}, slices.Concat(seq(0, 4), seq(6, 9)), segName(1), "segment damaged"},
		{"a flipped byte in a record's length", 0, func(dir string) {
			flip(seg(dir, 4), off(4))
		}, slices.Concat(seq(0, 4), seq(6, 9)), segName(1), "segment damaged"},
		{"a segment torn at its start", 0, func(dir string) {
			if err := os.WriteFile(filepath.Join(dir, segName(3)), []byte("SPB"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, seq(0, 9), segName(3), "torn at its start"},
		{"the send position kept", 4, func(string) {}, seq(4, 9), "", ""},
		// Without it everything still on disk goes again; the stream
		// drops the repeats.
		{"the send position damaged", 4, func(dir string) {
			flip(filepath.Join(dir, headFile), 3)
		}, seq(3, 9), headFile, "head position unreadable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b := openDisk(t, dir, time.Hour, 1<<20, testSeg, nil)
			for i := range 9 {
				b.push(testRecord(i, t0), t0)
			}
			for range tc.sent {
				e, _ := b.peek(t0)
				b.pop(e.id)
			}
			crash(b)
			tc.damage(dir)

			log, out := logtest.New(slog.LevelInfo)
			b = openDisk(t, dir, time.Hour, 1<<20, testSeg, log)
			if got := queuedIDs(b); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("kept %v, want %v", got, tc.want)
			}
			var warnings []string
			for _, l := range strings.Split(out.String(), "\n") {
				if strings.Contains(l, "level=WARN") {
					warnings = append(warnings, l)
				}
			}
			switch {
			case tc.logFile == "" && len(warnings) > 0:
				t.Errorf("warnings for undamaged files: %q", warnings)
			case tc.logFile != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.warning) ||
				!strings.Contains(warnings[0], filepath.Join(dir, tc.logFile))):
				t.Errorf("warnings %q, want one %q naming %s", warnings, tc.warning, tc.logFile)
			}
			crash(b)

			log, out = logtest.New(slog.LevelInfo)
			b = openDisk(t, dir, time.Hour, 1<<20, testSeg, log)
			if strings.Contains(out.String(), "level=WARN") {
				t.Errorf("the damage is reported again on the next start: %s", out.String())
			}
			b.push(testRecord(9, t0), t0)
			if got := drain(t, b, t0); !reflect.DeepEqual(got, append(tc.want, "9")) {
				t.Errorf("sent %v, want %v", got, append(tc.want, "9"))
			}
		})
	}
}

// Once everything is sent nothing is left on disk: at a clean close, and
// at the next start after a crash.
func TestDiskBacklogEmptyLeavesNoFiles(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_767_268_800, 0)
	for _, tc := range stops() {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b := openDisk(t, dir, time.Hour, 1<<20, testSeg, nil)
			for i := range 7 {
				b.push(testRecord(i, t0), t0)
			}
			if got := drain(t, b, t0); len(got) != 7 {
				t.Fatalf("sent %v", got)
			}
			tc.stop(b)
			b = openDisk(t, dir, time.Hour, 1<<20, testSeg, nil)
			if f := files(t, dir); len(f) != 0 || b.len() != 0 {
				t.Errorf("after a reopen %d queued and files %v", b.len(), f)
			}
			b.push(testRecord(7, t0), t0)
			if got := drain(t, b, t0); !reflect.DeepEqual(got, []string{"7"}) {
				t.Errorf("sent %v after the reopen", got)
			}
			if err := b.close(); err != nil {
				t.Fatal(err)
			}
			if f := files(t, dir); len(f) != 0 {
				t.Errorf("files %v left after the close", f)
			}
		})
	}
}

// A directory the agent cannot use stops start-up, naming it.
func TestBacklogDirUnusable(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	inUse := filepath.Join(base, "in-use")
	for _, tc := range []struct {
		name, dir, want string
	}{
		{"a file", file, "backlog-dir " + file + ": "},
		{"below a file", filepath.Join(file, "backlog"), "backlog-dir " + filepath.Join(file, "backlog") + ": mkdir"},
		{"in use by another agent", inUse, "backlog-dir " + inUse + ": in use by another agent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(time.Second)
			cfg.BacklogDir = tc.dir
			if tc.dir == inUse {
				newAgent(t, cfg)
			}
			a, err := New(cfg.Config, cfg.Plugs, nil)
			if err == nil {
				_ = a.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error starting %q", err, tc.want)
			}
		})
	}
	// --once leaves the directory to the agent that runs as a service.
	cfg := testConfig(time.Second)
	cfg.BacklogDir, cfg.Once = inUse, true
	newAgent(t, cfg)
}

// A write that fails (here: the disk is full) keeps the sample in memory,
// where it is sent in its turn; one warning when writes start failing, one
// line when they work again, however many samples in between.
func TestDiskBacklogWriteFailure(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_767_268_800, 0)
	dir := t.TempDir()
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full to fill the disk with: %v", err)
	}
	defer full.Close()
	log, out := logtest.New(slog.LevelInfo)
	b := openDisk(t, dir, time.Hour, 1<<20, testSeg, log)
	b.push(testRecord(0, t0), t0)

	// The open segment's writes go to a full device, and new segments
	// cannot be made: the directory's path now runs through a file.
	seg := b.segs[0]
	orig := seg.f
	seg.f = full
	b.dir = filepath.Join(orig.Name(), "x")
	for i := 1; i < 4; i++ {
		b.push(testRecord(i, t0), t0)
	}
	seg.f, b.dir = orig, dir
	b.push(testRecord(4, t0), t0)
	b.push(testRecord(5, t0), t0)

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "no space left") ||
		!strings.Contains(lines[1], "works again") {
		t.Errorf("log %q, want one warning and one recovery", lines)
	}
	if got := queuedIDs(b); !reflect.DeepEqual(got, seq(0, 6)) {
		t.Errorf("queued %v", got)
	}
	if fi, err := os.Stat(orig.Name()); err != nil || fi.Size() != int64(len(segMagic)+recSize) {
		t.Errorf("the segment written to when the disk filled is %v, %v: want only its one whole record", fi.Size(), err)
	}
	crash(b)
	// Those kept in memory go with the process; those on disk do not.
	b = openDisk(t, dir, time.Hour, 1<<20, testSeg, nil)
	if got := drain(t, b, t0); !reflect.DeepEqual(got, []string{"0", "4", "5"}) {
		t.Errorf("after a restart sent %v, want those written to disk", got)
	}
}

// BenchmarkBacklog pushes and sends 4 KB samples: "steady" as while NATS
// is up (each sent as it is queued), "outage" a thousand queued then sent.
func BenchmarkBacklog(b *testing.B) {
	t0 := time.Now()
	data := bytes.Repeat([]byte{'x'}, 4096)
	kinds := []struct {
		name string
		open func(b *testing.B) queue
	}{
		{"memory", func(*testing.B) queue { return newBacklog(time.Hour, 64<<20) }},
		{"disk", func(b *testing.B) queue {
			d, err := openDiskBacklog(b.TempDir(), time.Hour, 64<<20, segmentSize(64<<20), slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = d.close() })
			return d
		}},
	}
	for _, k := range kinds {
		for _, batch := range []int{1, 1000} {
			name := "steady"
			if batch > 1 {
				name = "outage"
			}
			b.Run(k.name+"/"+name, func(b *testing.B) {
				q := k.open(b)
				b.SetBytes(int64(len(data)))
				i := 0
				for b.Loop() {
					q.push(entry{id: fmt.Sprint(i), subject: "s", ts: t0, data: data}, t0)
					i++
					if i%batch == 0 {
						for {
							e, ok := q.peek(t0)
							if !ok {
								break
							}
							q.pop(e.id)
						}
					}
				}
			})
		}
	}
}

// TestDiskBacklogFormat pins the bytes on disk to the layout documented
// at the top of diskbacklog.go, built here by hand: a directory an earlier
// agent left is read, and what this one writes, another reads.
func TestDiskBacklogFormat(t *testing.T) {
	t.Parallel()
	le := binary.LittleEndian
	crc := func(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }
	rec := func(ts int64, id, subject string, data []byte) []byte {
		p := le.AppendUint64(nil, uint64(ts))
		p = le.AppendUint16(p, uint16(len(id)))
		p = append(p, id...)
		p = le.AppendUint16(p, uint16(len(subject)))
		p = append(p, subject...)
		p = append(p, data...)
		out := le.AppendUint32(nil, uint32(len(p)))
		out = le.AppendUint32(out, crc(p))
		return append(out, p...)
	}
	head := func(seg, off uint64) []byte {
		b := le.AppendUint64(nil, seg)
		b = le.AppendUint64(b, off)
		return le.AppendUint32(b, crc(b))
	}
	t0 := time.Unix(1_767_268_800, 0)
	subject := metrics.SampleSubject("h")
	r0 := rec(t0.UnixNano(), "h/b/0", subject, []byte("sample zero"))
	r1 := rec(t0.Add(time.Second).UnixNano(), "h/b/1", subject, []byte("sample one"))
	dir := t.TempDir()
	seg0 := append([]byte("SPBLOG1\n"), append(r0, r1...)...)
	if err := os.WriteFile(filepath.Join(dir, "0000000000000000.seg"), seg0, 0o600); err != nil {
		t.Fatal(err)
	}
	// r0 was sent: the head points past it.
	if err := os.WriteFile(filepath.Join(dir, "head"), head(0, uint64(8+len(r0))), 0o600); err != nil {
		t.Fatal(err)
	}

	b := openDisk(t, dir, time.Hour, 1<<20, 1<<20, nil)
	e, ok := b.peek(t0)
	if !ok || e.id != "h/b/1" || e.subject != subject || !e.ts.Equal(t0.Add(time.Second)) || string(e.data) != "sample one" {
		t.Fatalf("first unsent = %+v, %v; want h/b/1", e, ok)
	}
	if got := queuedIDs(b); !reflect.DeepEqual(got, []string{"h/b/1"}) {
		t.Fatalf("queued %v", got)
	}

	// A new record goes to a new segment (one from an earlier run is never
	// appended to), framed the same.
	b.push(entry{id: "h/c/0", subject: subject, ts: t0.Add(2 * time.Second), data: []byte("sample two")}, t0)
	want := append([]byte("SPBLOG1\n"), rec(t0.Add(2*time.Second).UnixNano(), "h/c/0", subject, []byte("sample two"))...)
	if got, err := os.ReadFile(filepath.Join(dir, "0000000000000001.seg")); err != nil || !bytes.Equal(got, want) {
		t.Errorf("new segment = %q, %v\nwant %q", got, err, want)
	}
	// Sending h/b/1 empties segment 0, which goes; the head moves past it.
	b.pop("h/b/1")
	if got, err := os.ReadFile(filepath.Join(dir, "head")); err != nil || !bytes.Equal(got, head(0, uint64(len(seg0)))) {
		t.Errorf("head = %x, %v; want %x", got, err, head(0, uint64(len(seg0))))
	}
	if got := files(t, dir); !reflect.DeepEqual(got, []string{"0000000000000001.seg", "head"}) {
		t.Errorf("files %v", got)
	}
}
