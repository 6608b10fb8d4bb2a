package size

import (
	"strings"
	"testing"
)

func TestBytesReadsUnits(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Bytes
	}{
		{"4294967296", 4 << 30},
		{"0", 0},
		{"4GiB", 4 << 30},
		{"4gib", 4 << 30},
		{" 512 MiB ", 512 << 20},
		{"80GB", 80_000_000_000},
		{"500MB", 500_000_000},
		{"1.5TiB", 3 << 39},
		{"64KiB", 64 << 10},
		{"2KB", 2000},
		{"100B", 100},
		{"1TB", 1_000_000_000_000},
		{"2.5B", 2},
	} {
		var b Bytes
		if err := b.UnmarshalText([]byte(c.in)); err != nil || b != c.want {
			t.Errorf("%q: %d, %v; want %d", c.in, b, err, c.want)
		}
	}
}

func TestBytesRefusesWhatIsNoSize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "not a size"},
		{"GB", "not a size"},
		{"12XB", "not a size"},
		{"4 GiBs", "not a size"},
		{"NaNGB", "not a size"},
		{"-1", "must not be negative"},
		{"-2GiB", "must not be negative"},
		{"99999999999999999999", "too large"},
		{"10000000TB", "too large"},
	} {
		b := Bytes(7)
		err := b.UnmarshalText([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error saying %q", c.in, err, c.want)
		}
		if b != 7 {
			t.Errorf("%q: a refused size changed the setting to %d", c.in, b)
		}
	}
}

func TestBytesWritesWhatItReads(t *testing.T) {
	for _, c := range []struct {
		in   Bytes
		want string
	}{
		{0, "0"},
		{4 << 30, "4GiB"},
		{80_000_000_000, "80GB"},
		{48 << 20, "48MiB"},
		{1000, "1KB"},
		{1023, "1023"},
		{3 << 39, "1536GiB"},
	} {
		text, err := c.in.MarshalText()
		if err != nil || string(text) != c.want {
			t.Errorf("%d: %q, %v; want %q", c.in, text, err, c.want)
		}
		var back Bytes
		if err := back.UnmarshalText(text); err != nil || back != c.in {
			t.Errorf("%q reads back as %d, %v; want %d", text, back, err, c.in)
		}
	}
}
