package metrics

import (
	"strconv"
	"strings"
)

// NATS subjects and stream names.
const (
	SubjectSamples = "sysperf.v1.sample.>"
	SubjectLatency = "sysperf.v1.latency.>"
	SubjectAlerts  = "sysperf.v1.alert.>"
	SubjectUpdate  = "sysperf.v1.update"

	StreamSamples = "SYSPERF_SAMPLES"
	StreamAlerts  = "SYSPERF_ALERTS"

	samplePrefix  = "sysperf.v1.sample."
	latencyPrefix = "sysperf.v1.latency."
	alertPrefix   = "sysperf.v1.alert."
)

// SampleSubject is where host publishes its samples.
func SampleSubject(host string) string { return samplePrefix + host }

// LatencySubject is where a pipeline on host pushes stage observations.
func LatencySubject(host, stage string) string { return latencyPrefix + host + "." + stage }

// AlertSubject is where the hub publishes alert transitions into state.
func AlertSubject(state AlertState) string { return alertPrefix + string(state) }

// MsgID is the JetStream de-duplication id of a sample:
// host/boot/seq/key. JetStream de-duplicates across the whole stream, and
// host, boot and seq are public (the update shows them), so key is what
// keeps another publisher from claiming a host's next id first and making
// its real sample a "duplicate": a secret the agent draws at each start
// (MsgKey) and sends nowhere but in this header, which only the hub reads.
func MsgID(s *Sample, key string) string {
	return s.Host + "/" + s.Boot + "/" + strconv.FormatUint(s.Seq, 10) + "/" + key
}

// MsgKeyBytes is how many random bytes make a MsgID key: 128 bits cannot
// be guessed within a de-duplication window.
const MsgKeyBytes = 16

// PublicMsgID is id without its secret key, for logs and errors.
func PublicMsgID(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[:i]
	}
	return id
}

// ParseLatencySubject returns the host and stage of a latency subject.
func ParseLatencySubject(subject string) (host, stage string, ok bool) {
	rest, found := strings.CutPrefix(subject, latencyPrefix)
	if !found {
		return "", "", false
	}
	host, stage, found = strings.Cut(rest, ".")
	if !found || !ValidToken(host) || !ValidToken(stage) {
		return "", "", false
	}
	return host, stage, true
}

// ValidToken reports whether s is a non-empty NATS-safe subject token:
// letters, digits, '-' and '_'.
func ValidToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenByte(s[i]) {
			return false
		}
	}
	return true
}

// HostToken turns a hostname into a subject token: dots and other bytes
// become '-', so "gpu01.lab" is "gpu01-lab".
func HostToken(hostname string) string {
	b := []byte(hostname)
	if len(b) > 128 {
		b = b[:128]
	}
	for i := range b {
		if !tokenByte(b[i]) {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "unknown"
	}
	return string(b)
}

func tokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}
