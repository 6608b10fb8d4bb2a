package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestParseMappings(t *testing.T) {
	const smaps = `00400000-00411000 r--p 00000000 fd:00 1234 /usr/local/bin/sysperf agent
Size:                 68 kB
Rss:                  68 kB
Anonymous:             0 kB
00411000-0084f000 r-xp 00011000 fd:00 1234 /usr/local/bin/sysperf agent
Rss:                4344 kB
Anonymous:             0 kB
00d26000-00d27000 r--p 00925000 fd:00 1234 /usr/local/bin/sysperf agent
Rss:                   4 kB
Anonymous:             4 kB
00d27000-00d87000 rw-p 00926000 fd:00 1234 /usr/local/bin/sysperf agent
Rss:                 364 kB
Anonymous:           300 kB
3fe3c000-3fe5d000 rw-p 00000000 00:00 0                                  [heap]
Rss:                   8 kB
Anonymous:             8 kB
7ff44d109000-7ff44d12f000 r--s 00000000 fd:00 99 /dev/shm/x
Rss:                   8 kB
Anonymous:             0 kB
7ff44d2fc000-7ff44d2fe000 r-xp 00000000 00:00 0                          [vdso]
Rss:                   8 kB
Anonymous:             0 kB
`
	ms, err := parseMappings(strings.NewReader(smaps))
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping{
		{span{0x400000, 0x411000}, "/usr/local/bin/sysperf agent", true, false, true, 68 << 10, 0},
		{span{0x411000, 0x84f000}, "/usr/local/bin/sysperf agent", true, false, true, 4344 << 10, 0},
		{span{0xd26000, 0xd27000}, "/usr/local/bin/sysperf agent", true, false, true, 4 << 10, 4 << 10},
		{span{0xd27000, 0xd87000}, "/usr/local/bin/sysperf agent", true, true, true, 364 << 10, 300 << 10},
		{span{0x3fe3c000, 0x3fe5d000}, "", false, true, true, 8 << 10, 8 << 10},
		{span{0x7ff44d109000, 0x7ff44d12f000}, "/dev/shm/x", true, false, false, 8 << 10, 0},
		{span{0x7ff44d2fc000, 0x7ff44d2fe000}, "", false, false, true, 8 << 10, 0},
	}
	if len(ms) != len(want) {
		t.Fatalf("got %d mappings, want %d: %+v", len(ms), len(want), ms)
	}
	for i := range want {
		if ms[i] != want[i] {
			t.Errorf("mapping %d = %+v, want %+v", i, ms[i], want[i])
		}
	}
	// Only the first two: the RELRO page was written, the data is
	// writable, the heap and vDSO are no file, the shared mapping is not
	// private.
	all := make(startupMappings)
	for _, m := range ms {
		all[m.span] = true
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "smaps")
	if err := os.WriteFile(p, []byte(smaps), 0o600); err != nil {
		t.Fatal(err)
	}
	ts, err := all.trimmable(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].span != want[0].span || ts[1].span != want[1].span {
		t.Errorf("trimmable = %+v, want the first two mappings", ts)
	}

	for _, bad := range []string{
		"Rss: 4 kB\n",                  // a field before any mapping
		"00400000 r--p 0 fd:00 1 /x\n", // no range
		"0040000g-00411000 r--p 0 fd:00 1 /x\n",
		"00400000-00411000 r--p 0 fd:00 1 /x\nRss: x kB\n",
		"00400000-00411000 r--p 0 fd:00 1 /x\nRss: 4 MB\n",
	} {
		if _, err := parseMappings(strings.NewReader(bad)); err == nil {
			t.Errorf("parseMappings(%q) = nil error", bad)
		}
	}
}

// TestTrim runs the trim on the test process itself: its binary's pages
// are unmapped, and what it unmaps is only ever page-table entries, never
// a page the process wrote or a mapping made after the snapshot.
func TestTrim(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, b byte) *os.File {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if _, err := f.Write([]byte(strings.Repeat(string(b), 4*os.Getpagesize()))); err != nil {
			t.Fatal(err)
		}
		return f
	}
	mmap := func(f *os.File, prot int) []byte {
		b, err := unix.Mmap(int(f.Fd()), 0, 4*os.Getpagesize(), prot, unix.MAP_PRIVATE)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Munmap(b) })
		return b
	}
	// Clean and read-only, there before the snapshot: trimmed.
	clean := mmap(file("clean", 'c'), unix.PROT_READ)
	// Written, then made read-only like a RELRO segment: its page is the
	// process's own copy and must survive.
	written := mmap(file("written", 'w'), unix.PROT_READ|unix.PROT_WRITE)
	written[0] = 'X'
	if err := unix.Mprotect(written, unix.PROT_READ); err != nil {
		t.Fatal(err)
	}
	if clean[0] != 'c' { // maps the page in
		t.Fatalf("the clean mapping reads %q", clean[0])
	}

	maps, err := snapshotMappings(smaps)
	if err != nil {
		t.Fatal(err)
	}
	// Mapped after the snapshot (as NVML is): never trimmed.
	later := mmap(file("later", 'l'), unix.PROT_READ)
	if later[0] != 'l' {
		t.Fatalf("the later mapping reads %q", later[0])
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	before := residentIn(t, exe)
	ts, err := maps.trimmable(smaps)
	if err != nil {
		t.Fatal(err)
	}
	got := map[uintptr]bool{}
	for _, m := range ts {
		got[m.lo] = true
	}
	addr := func(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }
	if !got[addr(clean)] {
		t.Errorf("the clean read-only mapping is not trimmable: %+v", ts)
	}
	if got[addr(written)] {
		t.Errorf("the written mapping is trimmable: %+v", ts)
	}
	if got[addr(later)] {
		t.Errorf("a mapping made after the snapshot is trimmable: %+v", ts)
	}

	n, err := maps.trim(smaps)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("trim unmapped nothing")
	}
	if after := residentIn(t, exe); after >= before {
		t.Errorf("the test binary's resident pages: %d bytes before the trim, %d after", before, after)
	}
	if written[0] != 'X' || written[1] != 'w' {
		t.Errorf("the written page reads %q after the trim, want \"Xw\"", written[:2])
	}
	if clean[0] != 'c' || later[0] != 'l' {
		t.Errorf("the file mappings read %q and %q after the trim", clean[0], later[0])
	}
}

// residentIn is the bytes of the process's mappings of path resident now.
func residentIn(t *testing.T, path string) uint64 {
	t.Helper()
	ms, err := readMappings(smaps)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, m := range ms {
		if m.path == path {
			n += m.rss
		}
	}
	return n
}
