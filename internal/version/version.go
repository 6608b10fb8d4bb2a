// Package version says which build a binary is. The Makefile stamps the
// version (git describe --always --dirty) and the commit at link time:
//
//	go build -ldflags "-X github.com/sysperf/sysperf/internal/version.version=v1.2-3-gabc1234 \
//	    -X github.com/sysperf/sysperf/internal/version.commit=abc1234..."
//
// A plain `go build` or `go install` falls back to what the Go toolchain
// recorded: the module version, else the VCS revision (vcs.revision).
package version

import (
	"fmt"
	"runtime/debug"
)

// Set by the linker (-X); they are never written at run time.
var version, commit string

// Info is a build's identity.
type Info struct {
	Version string
	Commit  string
}

// Get returns the stamped version and commit, filled in from the build
// information where the linker set nothing; "unknown" where neither knows.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return get(version, commit, bi)
}

func get(version, commit string, bi *debug.BuildInfo) Info {
	var rev string
	dirty := false
	if bi != nil {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if commit == "" {
		commit = rev
	}
	if version == "" {
		switch {
		case bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)":
			version = bi.Main.Version
		case rev != "":
			version = rev[:min(len(rev), 12)]
			if dirty {
				version += "-dirty"
			}
		}
	}
	if version == "" {
		version = "unknown"
	}
	if commit == "" {
		commit = "unknown"
	}
	return Info{Version: version, Commit: commit}
}

// Line is what program --version prints: "hub v1.2-3-gabc1234 (commit
// abc1234..., go1.25.0)".
func Line(program string) string {
	bi, _ := debug.ReadBuildInfo()
	goVersion := ""
	if bi != nil {
		goVersion = ", " + bi.GoVersion
	}
	i := get(version, commit, bi)
	return fmt.Sprintf("%s %s (commit %s%s)", program, i.Version, i.Commit, goVersion)
}
