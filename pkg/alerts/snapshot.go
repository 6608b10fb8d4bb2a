package alerts

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
)

// AppendJSON appends the snapshot's JSON to b: what encoding/json writes
// from its tags, byte for byte, without reflection (a fleet's state is
// thousands of alerts, encoded after every evaluation). The hub calls it
// directly: json.Marshal would check the output over again.
func (st Snapshot) AppendJSON(b []byte) []byte {
	// About 200 bytes an alert: grown once, not by doubling.
	b = slices.Grow(b, 16+200*len(st.Alerts))
	b = append(b, `{"alerts":`...)
	if st.Alerts == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i := range st.Alerts {
		if i > 0 {
			b = append(b, ',')
		}
		b = st.Alerts[i].appendJSON(b)
	}
	return append(b, "]}"...)
}

// MarshalJSON is AppendJSON for encoding/json.
func (st Snapshot) MarshalJSON() ([]byte, error) {
	return st.AppendJSON(nil), nil
}

func (a *SavedAlert) appendJSON(b []byte) []byte {
	b = appendString(append(b, `{"rule":`...), a.Rule)
	if a.Host != "" {
		b = appendString(append(b, `,"host":`...), a.Host)
	}
	if a.Target != "" {
		b = appendString(append(b, `,"target":`...), a.Target)
	}
	b = appendString(append(b, `,"state":`...), string(a.State))
	if a.Severity != "" {
		b = appendString(append(b, `,"severity":`...), string(a.Severity))
	}
	b = appendTime(b, `,"since":`, a.Since)
	b = appendFloat(append(b, `,"value":`...), a.Value)
	if a.Detail != "" {
		b = appendString(append(b, `,"detail":`...), a.Detail)
	}
	if a.NoData {
		b = append(b, `,"no_data":true`...)
	}
	b = append(b, `,"levels":`...)
	if a.Levels == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i, l := range a.Levels {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(append(b, `{"severity":`...), string(l.Severity))
		b = appendTime(b, `,"since":`, l.Since)
		b = appendTime(b, `,"cleared_at":`, l.ClearedAt)
		if l.Active {
			b = append(b, `,"active":true`...)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendTime appends key and t as time.Time's MarshalJSON does; nothing
// for the zero time (omitzero).
func appendTime(b []byte, key string, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	if y := t.Year(); y < 0 || y > 9999 {
		// Out of RFC 3339's range: encoding/json's error, written as null
		// (no alert starts there).
		return append(append(b, key...), "null"...)
	}
	b = append(append(b, key...), '"')
	return append(t.AppendFormat(b, time.RFC3339Nano), '"')
}

// appendFloat appends f as encoding/json does; null for NaN and ±Inf,
// which the engine never keeps.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendString appends s quoted: as is when it is printable ASCII that
// needs no escape (names, hosts, targets), else as encoding/json escapes
// it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
