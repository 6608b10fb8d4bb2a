package enroll

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"
)

func TestAddRevokeList(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	creds := filepath.Join(dir, "gpu01.creds")
	if err := Command([]string{"add", "gpu01", "--out", creds}, dir, &out); err != nil {
		t.Fatal(err)
	}
	if err := Command([]string{"add", "--pipeline", "gpu01"}, dir, &out); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{creds, Open(dir).Path()} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	b, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		t.Fatalf("credentials file does not parse as nats.go reads it: %v", err)
	}
	pub, _ := kp.PublicKey()
	es, err := Open(dir).Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Name != "gpu01" || es[0].Kind != Agent || es[0].Key != pub || es[1].Kind != Pipeline {
		t.Fatalf("entries %+v, want gpu01 agent (key %s) and pipeline", es, pub)
	}
	seed, _ := kp.Seed()
	if strings.Contains(string(mustRead(t, Open(dir).Path())), string(seed)) {
		t.Fatal("the enrolment file holds a seed")
	}

	// Adding again replaces the key: the old credentials stop working.
	if _, err := Open(dir).Add("gpu01", Agent); err != nil {
		t.Fatal(err)
	}
	es, _ = Open(dir).Load()
	if len(es) != 2 || es[1].Key == pub {
		t.Fatalf("after re-adding: %+v", es)
	}

	out.Reset()
	if err := Command([]string{"list", "--data-dir", dir}, "elsewhere", &out); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "gpu01") != 2 {
		t.Fatalf("list:\n%s", out.String())
	}
	if err := Command([]string{"revoke", "gpu01"}, dir, &out); err != nil {
		t.Fatal(err)
	}
	if err := Command([]string{"revoke", "gpu01"}, dir, &out); err == nil || !strings.Contains(err.Error(), "not enrolled") {
		t.Fatalf("second revoke: %v", err)
	}
	es, _ = Open(dir).Load()
	if len(es) != 1 || es[0].Kind != Pipeline {
		t.Fatalf("after revoke: %+v", es)
	}
}

func TestBadInputIsRefused(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{}, {"add"}, {"add", "a.b"}, {"add", "x", "y"}, {"remove", "x"}, {"add", "x", "--bogus"}} {
		if err := Command(args, dir, &strings.Builder{}); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	if err := os.WriteFile(Open(dir).Path(), []byte(`{"entries":[{"name":"x","kind":"agent","key":"SUAnotapublickey"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir).Load(); err == nil || strings.Contains(err.Error(), "SUAnot") {
		t.Fatalf("bad key: %v (want an error that does not repeat the value)", err)
	}
}

func TestPermissions(t *testing.T) {
	a := Entry{Name: "gpu01", Kind: Agent}.Permissions()
	if strings.Join(a.Publish, " ") != "sysperf.v1.sample.gpu01 sysperf.v1.latency.gpu01.>" || strings.Join(a.Subscribe, " ") != "_INBOX.gpu01.>" {
		t.Fatalf("agent %+v", a)
	}
	p := Entry{Name: "gpu01", Kind: Pipeline}.Permissions()
	if strings.Join(p.Publish, " ") != "sysperf.v1.latency.gpu01.>" || len(p.Subscribe) != 0 {
		t.Fatalf("pipeline %+v", p)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
