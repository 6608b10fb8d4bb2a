// Command tsgen writes the page's generated files (webui/src/*.gen.*) from
// the Go types and defaults of the hub's JSON (internal/tsgen). Run it with
// `make generate`.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sysperf/sysperf/internal/tsgen"
)

func main() {
	root := flag.String("root", ".", "the repository root")
	flag.Parse()
	if err := run(*root); err != nil {
		fmt.Fprintln(os.Stderr, "tsgen:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	files, err := tsgen.Files()
	if err != nil {
		return err
	}
	for name, b := range files {
		path := filepath.Join(root, filepath.FromSlash(name))
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
			continue // unchanged: keep its mtime, so make does not rebuild the UI
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}
