package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Why the agent unmaps its own start-up pages: the file pages in its RSS
// (the binary, libc and the loader) are whatever the kernel mapped while it
// started, not what it uses. This kernel maps a whole page-cache folio, or
// 64 KiB around the page, on each fault, and start-up (package inits, the
// config, TLS, NVML's loading) touches code and tables all over the binary,
// so 9.3-9.8 MiB of file pages stayed mapped for life, nearly all of the
// binary's text and read-only data. Unmapped once, after start-up, what
// comes back is what the collections, the GC and NVML's retries touch:
// 7.5-7.7 MiB (README, "Agent cost").
//
// MADV_DONTNEED on a private file mapping drops the process's page-table
// entries and nothing else: the pages stay in the page cache, and the next
// access maps them again (a minor fault). It would throw away a page the
// process had written (a private, copy-on-write copy, counted as
// Anonymous in smaps, as relocated RELRO pages are), so a mapping with any
// such page is left alone, and so is every writable one.

// startupMappings are the file mappings present when the agent starts,
// before anything is loaded at run time: the binary, the libraries the
// loader mapped and the loader itself, none of which is ever unmapped. Only
// those are trimmed, so a library loaded later (NVML, unloaded and loaded
// again while the GPU collector backs off, and at shutdown) can never be
// unmapped underneath a madvise; a mapping split since (mprotect) no longer
// matches its span and is left alone too.
type startupMappings map[span]bool

// span is a mapping's address range.
type span struct{ lo, hi uintptr }

// trimmable is a mapping that can lose its page-table entries and nothing
// else.
type trimmable struct {
	span
	path string
	rss  uint64 // bytes resident before the trim
}

// snapshotMappings records the process's file mappings (smaps is
// /proc/self/smaps).
func snapshotMappings(smaps string) (startupMappings, error) {
	ms, err := readMappings(smaps)
	if err != nil {
		return nil, err
	}
	out := make(startupMappings, len(ms))
	for _, m := range ms {
		if m.file {
			out[m.span] = true
		}
	}
	return out, nil
}

// trim drops the page-table entries of every start-up mapping that is still
// read-only, private and unwritten, and returns the bytes that were
// resident in them.
func (s startupMappings) trim(smaps string) (uint64, error) {
	ts, err := s.trimmable(smaps)
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, t := range ts {
		// The raw call: the range is the kernel's, not a Go object.
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, t.lo, t.hi-t.lo, unix.MADV_DONTNEED); e != 0 {
			return total, fmt.Errorf("madvise %s %#x-%#x: %w", t.path, t.lo, t.hi, e)
		}
		total += t.rss
	}
	return total, nil
}

// trimmable lists the mappings trim would unmap.
func (s startupMappings) trimmable(smaps string) ([]trimmable, error) {
	ms, err := readMappings(smaps)
	if err != nil {
		return nil, err
	}
	var out []trimmable
	for _, m := range ms {
		if m.file && s[m.span] && !m.writable && m.private && m.anon == 0 && m.rss > 0 {
			out = append(out, trimmable{span: m.span, path: m.path, rss: m.rss})
		}
	}
	return out, nil
}

// mapping is one entry of /proc/<pid>/smaps.
type mapping struct {
	span
	path                    string
	file, writable, private bool
	rss, anon               uint64 // bytes
}

// readMappings parses smaps: a header line per mapping ("lo-hi perms
// offset dev inode path"), then its "Key: value kB" lines.
func readMappings(path string) ([]mapping, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ms, err := parseMappings(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ms, nil
}

func parseMappings(r io.Reader) ([]mapping, error) {
	var out []mapping
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Bytes()
		fs := bytes.Fields(line)
		if len(fs) < 2 {
			continue
		}
		if key, ok := bytes.CutSuffix(fs[0], []byte(":")); ok {
			if len(out) == 0 {
				return nil, fmt.Errorf("%q before any mapping", line)
			}
			m := &out[len(out)-1]
			var err error
			switch string(key) {
			case "Rss":
				m.rss, err = kB(fs)
			case "Anonymous":
				m.anon, err = kB(fs)
			}
			if err != nil {
				return nil, fmt.Errorf("%q: %w", line, err)
			}
			continue
		}
		m, err := parseHeader(fs)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

func parseHeader(fs [][]byte) (mapping, error) {
	if len(fs) < 5 || len(fs[1]) != 4 {
		return mapping{}, fmt.Errorf("not a mapping")
	}
	lo, hi, ok := bytes.Cut(fs[0], []byte("-"))
	if !ok {
		return mapping{}, fmt.Errorf("no address range")
	}
	a, err := strconv.ParseUint(string(lo), 16, 64)
	if err != nil {
		return mapping{}, err
	}
	b, err := strconv.ParseUint(string(hi), 16, 64)
	if err != nil {
		return mapping{}, err
	}
	m := mapping{span: span{uintptr(a), uintptr(b)}, writable: fs[1][1] == 'w', private: fs[1][3] == 'p'}
	// A file mapping has an inode and an absolute path; [heap], [stack],
	// [vdso] and anonymous mappings have neither.
	if string(fs[4]) != "0" && len(fs) > 5 && fs[5][0] == '/' {
		m.file = true
		m.path = string(bytes.Join(fs[5:], []byte(" ")))
	}
	return m, nil
}

// kB reads "Key: 123 kB" into bytes.
func kB(fs [][]byte) (uint64, error) {
	if len(fs) != 3 || string(fs[2]) != "kB" {
		return 0, fmt.Errorf("want a size in kB")
	}
	n, err := strconv.ParseUint(string(fs[1]), 10, 64)
	return n << 10, err
}
