// Package size reads and writes sizes in bytes as settings give them:
// a whole number of bytes, or a number with a unit.
package size

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Bytes is a size. It is written as a whole number of bytes or
// with a unit, as an operator reads sizes off df or a datasheet: 80GB and
// 500MB are powers of 1000, 4GiB and 512MiB powers of 1024.
type Bytes int64

// byteUnits from the longest suffix down, so "GiB" is not read as "B".
var byteUnits = []struct {
	suffix string
	size   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// UnmarshalText reads a size: 4294967296, 4GiB, 80GB, 1.5TiB. Units are
// matched without regard to case; a fraction of a byte is dropped.
func (b *Bytes) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	num, size := s, 1.0
	for _, u := range byteUnits {
		if len(s) > len(u.suffix) && strings.EqualFold(s[len(s)-len(u.suffix):], u.suffix) {
			num, size = strings.TrimSpace(s[:len(s)-len(u.suffix)]), u.size
			break
		}
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil && size == 1 {
		if n < 0 {
			return errors.New("a size must not be negative")
		}
		*b = Bytes(n)
		return nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("not a size: %q (bytes, or with a unit: 512MiB, 4GiB, 80GB)", s)
	}
	if f < 0 {
		return errors.New("a size must not be negative")
	}
	// 2^63 is exactly representable; anything at or past it overflows.
	if v := f * size; v < math.MaxInt64 {
		*b = Bytes(v)
		return nil
	}
	return fmt.Errorf("size %q too large", s)
}

// MarshalText writes the size with the unit that gives the shortest
// text among those that hold it whole (4GiB, 80GB), else in bytes, so a
// default reads as it was meant and reads back the same.
func (b Bytes) MarshalText() ([]byte, error) {
	n := int64(b)
	best := strconv.FormatInt(n, 10)
	for _, u := range byteUnits {
		if k := int64(u.size); n != 0 && k > 1 && n%k == 0 {
			if t := strconv.FormatInt(n/k, 10) + u.suffix; len(t) < len(best) {
				best = t
			}
		}
	}
	return []byte(best), nil
}
