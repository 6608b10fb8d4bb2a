package loadtest

import (
	"strings"
	"testing"
)

// A restarted hub's history equals the old one's within the packed
// slots' bound; a lost or doubled sample, or a field gone, does not.
func TestSamePoints(t *testing.T) {
	body := func(util, power string, extra string) []byte {
		return []byte(`{"range":"60m","points":[{"timestamp":"2026-12-04T23:31:00Z","gpu":{"utilization":50}},` +
			`{"timestamp":"2026-12-04T23:32:00Z","gpu":{"utilization":` + util + `,"power_w":` + power + extra + `}}]}`)
	}
	before := body("65.43790690104167", "412.7", "")
	for _, c := range []struct {
		name  string
		after []byte
		fails string
	}{
		{"the same", before, ""},
		{"packed after the restart", body("65.41666666666667", "412.5", ""), ""},
		{"a sample of 12 counted twice", body("65.43790690104167", "444.4", ""), "power_w"},
		{"a field more", body("65.43790690104167", "412.7", `,"temperature_c":40`), "gpu"},
	} {
		n, err := samePoints(before, c.after)
		switch {
		case c.fails == "" && (err != nil || n != 2):
			t.Errorf("%s: %d points, %v; want 2 equal", c.name, n, err)
		case c.fails != "" && (err == nil || !strings.Contains(err.Error(), c.fails)):
			t.Errorf("%s: %v, want an error naming %s", c.name, err, c.fails)
		}
	}
	// The old hub read at a minute's start: its newest point is empty,
	// and the restarted hub has what came since.
	begun := []byte(strings.Replace(string(before), `]}`, `,{"timestamp":"2026-12-04T23:33:00Z"}]}`, 1))
	since := []byte(strings.Replace(string(before), `]}`, `,{"timestamp":"2026-12-04T23:33:00Z","containers":{"total":0}}]}`, 1))
	if n, err := samePoints(begun, since); err != nil || n != 2 {
		t.Errorf("a minute begun at the old hub's read: %d points, %v; want 2 equal", n, err)
	}
	if _, err := samePoints(before, []byte(`{"points":[]}`)); err == nil {
		t.Error("no point in common compared equal")
	}
}
