// Package enroll keeps the hosts and pipelines allowed to publish to the
// hub's embedded NATS: one NKey per enrolment, its public key in a file
// under the hub's data directory and its seed only in the credentials
// file handed to the host. The hub reads the file (and re-reads it when
// it changes) to set nats-server's users and their permissions.
package enroll

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/nats-io/nkeys"
	"github.com/sysperf/sysperf/internal/natsx"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// Kinds of enrolment.
const (
	// Agent publishes its host's samples and latency observations.
	Agent = "agent"
	// Pipeline publishes latency observations for one host only.
	Pipeline = "pipeline"
)

// FileName is the enrolment file in the data directory.
const FileName = "enrolled.json"

// Entry is one enrolled host or pipeline.
type Entry struct {
	Name  string    `json:"name"`
	Kind  string    `json:"kind"`
	Key   string    `json:"key"` // public NKey (U...)
	Added time.Time `json:"added"`
}

// Permissions are the subjects an enrolled credential may publish to and
// subscribe to; everything else is denied.
type Permissions struct {
	Publish   []string
	Subscribe []string
}

// Permissions of e: an agent publishes its own sample subject and latency
// subjects and receives JetStream's publish acks on its own inbox prefix;
// a pipeline publishes its host's latency subjects only.
func (e Entry) Permissions() Permissions {
	lat := metrics.LatencySubject(e.Name, ">")
	if e.Kind == Pipeline {
		return Permissions{Publish: []string{lat}}
	}
	return Permissions{
		Publish:   []string{metrics.SampleSubject(e.Name), lat},
		Subscribe: []string{natsx.InboxPrefix(e.Name) + ".>"},
	}
}

// Store is the enrolment file of one data directory.
type Store struct{ dir string }

// Open returns the store of dataDir; the file is created on the first Add.
func Open(dataDir string) *Store { return &Store{dir: dataDir} }

// Path is the enrolment file.
func (s *Store) Path() string { return filepath.Join(s.dir, FileName) }

// Load reads the enrolments; a missing file is none.
func (s *Store) Load() ([]Entry, error) {
	b, err := os.ReadFile(s.Path())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("enrolment: %w", err)
	}
	var f struct {
		Entries []Entry `json:"entries"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("enrolment %s: %w", s.Path(), err)
	}
	for i, e := range f.Entries {
		if err := check(e.Name, e.Kind); err != nil {
			return nil, fmt.Errorf("enrolment %s: entry %d: %w", s.Path(), i, err)
		}
		if !nkeys.IsValidPublicUserKey(e.Key) {
			return nil, fmt.Errorf("enrolment %s: entry %d (%s): not a user public key", s.Path(), i, e.Name)
		}
	}
	return f.Entries, nil
}

func check(name, kind string) error {
	if !metrics.ValidToken(name) {
		return fmt.Errorf("name %q: only letters, digits, '-' and '_', at most 128", name)
	}
	if kind != Agent && kind != Pipeline {
		return fmt.Errorf("kind %q: want %s or %s", kind, Agent, Pipeline)
	}
	return nil
}

// Add enrols name as kind with a new key, replacing (and so revoking) an
// earlier key of the same name and kind, and returns the credentials file
// for it: the only copy of its seed.
func (s *Store) Add(name, kind string) ([]byte, error) {
	if err := check(name, kind); err != nil {
		return nil, err
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("new nkey: %w", err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, err
	}
	err = s.update(func(es []Entry) ([]Entry, error) {
		es = slices.DeleteFunc(es, func(e Entry) bool { return e.Name == name && e.Kind == kind })
		return append(es, Entry{Name: name, Kind: kind, Key: pub, Added: time.Now().UTC().Truncate(time.Second)}), nil
	})
	if err != nil {
		return nil, err
	}
	return Creds(name, kind, seed), nil
}

// Revoke removes name's enrolment of kind. A running hub drops the
// credential, and disconnects a client using it, when it next reads the
// file.
func (s *Store) Revoke(name, kind string) error {
	return s.update(func(es []Entry) ([]Entry, error) {
		n := len(es)
		es = slices.DeleteFunc(es, func(e Entry) bool { return e.Name == name && e.Kind == kind })
		if len(es) == n {
			return nil, fmt.Errorf("%s %q is not enrolled", kind, name)
		}
		return es, nil
	})
}

// update applies edit under an exclusive lock (so concurrent commands do
// not lose each other's change) and replaces the file atomically, so the
// hub never reads half of it.
func (s *Store) update(edit func([]Entry) ([]Entry, error)) error {
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return fmt.Errorf("enrolment: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(s.dir, FileName+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("enrolment lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("enrolment lock: %w", err)
	}
	es, err := s.Load()
	if err != nil {
		return err
	}
	if es, err = edit(es); err != nil {
		return err
	}
	b, err := json.MarshalIndent(struct {
		Entries []Entry `json:"entries"`
	}{es}, "", "  ")
	if err != nil {
		return err
	}
	return WriteFile(s.Path(), append(b, '\n'))
}

// WriteFile writes b to path with mode 0600 through a temporary file and
// a rename, so a reader sees the old or the new content, never a part.
func WriteFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Creds is the credentials file of a seed, in the decorated form nats.go
// and the nats CLI read (nats.NkeyOptionFromSeed).
func Creds(name, kind string, seed []byte) []byte {
	return fmt.Appendf(nil, `# sysperf NATS credentials: %s %s. Secret: keep it mode 0600, pass it with --nats-creds.
-----BEGIN USER NKEY SEED-----
%s
------END USER NKEY SEED------
`, kind, name, seed)
}
