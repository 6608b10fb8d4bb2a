// Command tsgen writes webui/src/types.gen.ts from the Go types of the
// hub's JSON (internal/tsgen). Run it with `make generate`.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/sysperf/sysperf/internal/tsgen"
)

func main() {
	out := flag.String("out", tsgen.File, "the file to write")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "tsgen:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	b, err := tsgen.Generate(tsgen.Contract())
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(out); err == nil && bytes.Equal(old, b) {
		return nil // unchanged: keep its mtime, so make does not rebuild the UI
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}
