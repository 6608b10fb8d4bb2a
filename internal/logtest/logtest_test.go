package logtest

import (
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestNewKeepsLevelAndAbove(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  []string
		not   []string
	}{
		{slog.LevelDebug, []string{"msg=d", "msg=i", "msg=w"}, nil},
		{slog.LevelInfo, []string{"msg=i", "msg=w"}, []string{"msg=d"}},
		{slog.LevelWarn, []string{"msg=w"}, []string{"msg=d", "msg=i"}},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			log, buf := New(tc.level)
			log.Debug("d")
			log.Info("i")
			log.Warn("w")
			got := buf.String()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("log lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("log has %q below its level:\n%s", n, got)
				}
			}
		})
	}
}

// TestBufferReadWhileWritten reads the buffer while several goroutines
// write to it, as a test reads a component's log; under -race a buffer
// without its lock fails here, and every line must arrive whole.
func TestBufferReadWhileWritten(t *testing.T) {
	const writers, lines = 4, 200
	var buf Buffer
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(&buf, "w%d-%d\n", w, i)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
			_ = buf.String()
		}
	}
	got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	seen := map[string]bool{}
	for _, l := range got {
		seen[l] = true
	}
	for w := range writers {
		for i := range lines {
			if l := fmt.Sprintf("w%d-%d", w, i); !seen[l] {
				t.Fatalf("line %q missing or torn", l)
			}
		}
	}
}

// TestOnlyTestsImportTestSupport keeps test-support packages out of the
// binaries: only _test.go files and other test-support packages may import
// them. A package is test support when its name ends in "test", as this
// one, natsxtest and sourcestest do (the standard library's httptest
// convention), or when its non-test files import "testing".
func TestOnlyTestsImportTestSupport(t *testing.T) {
	root, module := moduleRoot(t)
	type pkg struct {
		support bool
		imports map[string][]string // import path -> files importing it
	}
	pkgs := map[string]*pkg{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (n == "node_modules" || n == "testdata" || n == "vendor" || strings.HasPrefix(n, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		ip := module
		if rel != "." {
			ip += "/" + filepath.ToSlash(rel)
		}
		p := pkgs[ip]
		if p == nil {
			p = &pkg{support: strings.HasSuffix(ip, "test"), imports: map[string][]string{}}
			pkgs[ip] = p
		}
		for _, spec := range f.Imports {
			imp, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if imp == "testing" {
				p.support = true
			}
			p.imports[imp] = append(p.imports[imp], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := pkgs[module+"/internal/logtest"]; p == nil || !p.support {
		t.Fatalf("walk of %s did not find this package as test support; the check sees nothing", root)
	}
	for ip, p := range pkgs {
		if p.support {
			continue
		}
		for imp, files := range p.imports {
			if q := pkgs[imp]; q != nil && q.support {
				t.Errorf("%s imports test-support package %s in %s", ip, imp, strings.Join(files, ", "))
			}
		}
	}
}

// moduleRoot finds go.mod above the test's directory and the module path
// it declares.
func moduleRoot(t *testing.T) (dir, module string) {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if m, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
					return dir, strings.TrimSpace(m)
				}
			}
			t.Fatalf("%s/go.mod names no module", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}
