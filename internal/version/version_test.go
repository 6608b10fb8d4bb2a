package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	vcs := func(mainVersion string, modified bool) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/sysperf/sysperf", Version: mainVersion}}
		bi.Settings = append(bi.Settings, debug.BuildSetting{Key: "vcs.revision", Value: rev})
		if modified {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: "vcs.modified", Value: "true"})
		}
		return bi
	}
	cases := []struct {
		name            string
		version, commit string
		bi              *debug.BuildInfo
		want            Info
	}{
		{"stamped by the Makefile", "v0.3-4-g0123456-dirty", rev, vcs("(devel)", true), Info{"v0.3-4-g0123456-dirty", rev}},
		{"version stamped, commit from vcs", "0123456", "", vcs("(devel)", false), Info{"0123456", rev}},
		{"plain go build in a checkout", "", "", vcs("(devel)", false), Info{"0123456789ab", rev}},
		{"plain go build, modified tree", "", "", vcs("(devel)", true), Info{"0123456789ab-dirty", rev}},
		{"go install of a tag", "", "", vcs("v1.4.0", false), Info{"v1.4.0", rev}},
		{"nothing known", "", "", nil, Info{"unknown", "unknown"}},
		{"no vcs", "", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, Info{"unknown", "unknown"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := get(tc.version, tc.commit, tc.bi); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLine(t *testing.T) {
	l := Line("hub")
	if !strings.HasPrefix(l, "hub ") || !strings.Contains(l, "(commit ") || !strings.Contains(l, ", go1.") {
		t.Fatalf("line %q", l)
	}
}
