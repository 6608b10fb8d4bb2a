package agent

import (
	"encoding/binary"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzDiskBacklogSegment feeds what a power loss, a bad disk or another
// program may leave in --backlog-dir: arbitrary segment contents after
// the magic and an arbitrary head file. Opening the backlog keeps the good
// records or refuses with an error, and draining it sends only records
// that frame and check, never panics or loops.
func FuzzDiskBacklogSegment(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	var seg []byte
	for i, e := range []entry{
		{id: "h/b/1", subject: "sysperf.v1.sample.h", ts: now, data: []byte{0x81, 0xa1, 'v', 0x01}},
		{id: "h/b/2", subject: "sysperf.v1.sample.h", ts: now.Add(time.Second), data: []byte("sample")},
		{id: "", subject: "", ts: now, data: nil},
	} {
		rec, err := encodeRecord(e)
		if err != nil {
			f.Fatal(err)
		}
		seg = append(seg, rec...)
		f.Add(append([]byte(nil), seg...), fuzzHead(0, 0))
		if i == 1 {
			f.Add(seg[:len(seg)-3], fuzzHead(0, int64(len(segMagic))+int64(len(rec))))
		}
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, []byte("not a head"))
	f.Add([]byte{}, fuzzHead(1<<63, -1))
	f.Fuzz(func(t *testing.T, segment, headBytes []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(0)), append([]byte(segMagic), segment...), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, headFile), headBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := openDiskBacklog(dir, 100*365*24*time.Hour, 64<<20, segmentSize(64<<20), slog.New(slog.DiscardHandler))
		if err != nil {
			return
		}
		defer func() {
			if err := b.close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}()
		n := b.len()
		if n > len(segment)/(recHeader+12) {
			t.Fatalf("%d records from %d bytes: more than can frame", n, len(segment))
		}
		for sent := 0; ; sent++ {
			e, ok := b.peek(now)
			if !ok {
				break
			}
			if sent > n {
				t.Fatalf("drained more records (%d) than were loaded (%d)", sent, n)
			}
			b.pop(e.id)
		}
	})
}

// fuzzHead is a head file pointing at segment seg, offset off.
func fuzzHead(seg uint64, off int64) []byte {
	buf := binary.LittleEndian.AppendUint64(nil, seg)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(off))
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
}
