package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sysperf/sysperf/internal/enroll"
	"github.com/sysperf/sysperf/internal/natsd"
)

// enrolPoll is how often a running hub re-reads the enrolment file, so an
// added or revoked host takes effect within it.
const enrolPoll = time.Second

// enrolled reads the enrolment file as the embedded server's users and
// the hosts ingest lets through.
func enrolled(store *enroll.Store) ([]natsd.User, *enrolledSet, []byte, error) {
	raw, err := os.ReadFile(store.Path())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil, fmt.Errorf("enrolment: %w", err)
	}
	es, err := store.Load()
	if err != nil {
		return nil, nil, nil, err
	}
	set := &enrolledSet{agents: map[string]bool{}, latency: map[string]bool{}}
	users := make([]natsd.User, 0, len(es))
	for _, e := range es {
		p := e.Permissions()
		users = append(users, natsd.User{Key: e.Key, Publish: p.Publish, Subscribe: p.Subscribe})
		if e.Kind == enroll.Agent {
			set.agents[e.Name] = true
		}
		set.latency[e.Name] = true
	}
	return users, set, raw, nil
}

// NATSClientConnected reports whether a client named name is connected to
// the embedded NATS (false without one).
func (h *Hub) NATSClientConnected(name string) bool {
	return h.emb != nil && h.emb.Connected(name)
}

// ReloadEnrolment applies the enrolment file now: added credentials may
// connect, and a revoked one is refused and its connection closed. The
// hub also does this on its own within a second of the file changing.
func (h *Hub) ReloadEnrolment() error {
	if h.emb == nil || h.enrol == nil {
		return errors.New("enrolment: the hub has no embedded NATS (an external one keeps its own users)")
	}
	h.enrolMu.Lock()
	defer h.enrolMu.Unlock()
	users, set, raw, err := enrolled(h.enrol)
	if err != nil {
		return err
	}
	if err := h.emb.SetUsers(users); err != nil {
		return err
	}
	h.in.enrolled.Store(set)
	h.enrolRaw = raw
	h.log.Info("enrolment applied", "component", "nats", "agents", len(set.agents), "credentials", len(users), "file", h.enrol.Path())
	return nil
}

// watchEnrolment re-applies the enrolment file whenever its content
// changes. A file that does not parse keeps the users in force, with an
// error logged until it is fixed. The file is read only when os.Stat
// says it may have changed (unchanged): with 2,000 hosts enrolled it is
// 344 KB, which read and compared every second was 4 % of a busy hub's
// allocations.
func (h *Hub) watchEnrolment(ctx context.Context) {
	t := time.NewTicker(enrolPoll)
	defer t.Stop()
	path := h.enrol.Path()
	var lastErr string
	var last os.FileInfo // the file as it was before its last read; nil: read it
	var readAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fi, err := os.Stat(path)
		if err != nil {
			fi = nil
		}
		if unchanged(last, fi, readAt) {
			continue
		}
		last, readAt = fi, time.Now()
		raw, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			raw = nil
		}
		h.enrolMu.Lock()
		same := bytes.Equal(raw, h.enrolRaw)
		h.enrolMu.Unlock()
		if same {
			continue
		}
		if err := h.ReloadEnrolment(); err != nil {
			if err.Error() != lastErr {
				h.log.Error("enrolment not applied; the previous credentials stay in force", "err", err)
				lastErr = err.Error()
			}
			continue
		}
		lastErr = ""
	}
}

// racyMtime is how close to a read a file's modification time must be
// for the read not to vouch for it: a file system that keeps mtimes to
// the second (or two, FAT) gives a write in the same second as the read
// the same mtime.
const racyMtime = 2 * time.Second

// unchanged reports whether now is the file that was before, read at
// readAt, unmodified since: the same file (inode), size and mtime, that
// mtime already older than racyMtime at the read, so that any write
// since would have moved it. The enrolment command writes a new file and
// renames it over the old one: a new inode.
func unchanged(before, now os.FileInfo, readAt time.Time) bool {
	return before != nil && now != nil && os.SameFile(before, now) &&
		before.Size() == now.Size() && before.ModTime().Equal(now.ModTime()) &&
		readAt.Sub(now.ModTime()) > racyMtime
}

// lockDataDir takes an exclusive lock on dir for this process, so a second
// hub on the same JetStream store refuses to start instead of corrupting
// it. The lock goes with the process; the file holds its pid for the
// error the next one gets.
func lockDataDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	path := filepath.Join(dir, "hub.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data-dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		other := "unknown pid"
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b[:n]))); perr == nil {
			other = "pid " + strconv.Itoa(pid)
		}
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data-dir %s is in use by another hub (%s); one hub per data directory", dir, other)
		}
		return nil, fmt.Errorf("data-dir lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
