package metrics

import (
	"strings"
	"sync"
)

// Strings keeps one copy of each string the Decoders given it read, so
// that what a caller keeps of a sample (a host's name, its GPUs' names
// and UUIDs, its processes' and models' names) holds that copy and not
// the sample's message: a string cut from the message keeps all of it
// alive. A 2,000-host hub kept some 7,800 messages (21 MB) alive that
// way, a few per host, through its newest figures, the entries it
// reuses and the update it last published; the strings themselves are
// under 1 MB. A fleet's strings are the same sample after sample, so a
// lookup finds nearly every one and allocates nothing.
//
// It is bounded: when it holds max strings or maxBytes of them, the
// strings not looked up since the last time it filled are forgotten (two
// generations), so strings that change every sample (an error's text, a
// new boot) cannot grow it. Safe for concurrent use.
type Strings struct {
	mu       sync.Mutex
	cur, old map[string]string
	bytes    int
	max      int
	maxBytes int
}

// NewStrings returns a Strings holding at most max strings and maxBytes
// of their bytes in each of its two generations.
func NewStrings(max, maxBytes int) *Strings {
	return &Strings{max: max, maxBytes: maxBytes}
}

// get returns the kept copy of s, keeping one first if there is none.
func (k *Strings) get(s string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if v, ok := k.cur[s]; ok {
		return v
	}
	v, ok := k.old[s]
	if !ok {
		v = strings.Clone(s)
	}
	if k.cur == nil || len(k.cur) >= k.max || k.bytes+len(v) > k.maxBytes {
		k.old, k.cur, k.bytes = k.cur, make(map[string]string, len(k.cur)), 0
	}
	k.cur[v] = v
	k.bytes += len(v)
	return v
}

// Len is how many strings k holds, both generations.
func (k *Strings) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.cur) + len(k.old)
}
