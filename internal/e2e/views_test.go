package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sysperf/sysperf/internal/poll"
	"github.com/sysperf/sysperf/pkg/metrics"
)

// viewSample is an agent's sample of host with 8 GPUs.
func viewSample(host string, seq uint64) *metrics.Sample {
	s := &metrics.Sample{V: 1, Host: host, Boot: "b", Seq: seq, TS: time.Now().UnixNano(), Interval: int64(5 * time.Second)}
	for i := range 8 {
		util, temp, power, used, total := float64(10*i), 40.0+float64(i), 300.0, uint64(40<<30), uint64(141<<30)
		s.GPUs = append(s.GPUs, metrics.GPU{Index: i, UUID: fmt.Sprintf("GPU-%s-%d", host, i), Name: "NVIDIA H200",
			Util: &util, Temp: &temp, Power: &power, MemUsed: &used, MemTotal: &total, Processes: []metrics.Process{}})
	}
	return s
}

// TestViews runs a real hub fed three 8-GPU hosts: a browser on a host
// view gets that host's GPUs alone, two browsers of one view the same
// bytes, and the REST views follow.
func TestViews(t *testing.T) {
	h := StartHub(t, 200*time.Millisecond, nil)
	hosts := []string{"e2e-v1", "e2e-v2", "e2e-v3"}
	for i, host := range hosts {
		PublishSample(t, h.NATSURL(), viewSample(host, uint64(i)))
	}
	var fleet metrics.FleetUpdate
	poll.Until(t, "the fleet view to list three hosts", func() bool {
		return GetJSON(t, h, "/api/v1/hosts", &fleet) == http.StatusOK && len(fleet.Hosts) == 3
	})
	if fleet.Type != metrics.TypeFleet || fleet.Totals.GPUs != 24 || fleet.Hosts[1].Host != "e2e-v2" || *fleet.Hosts[1].UtilMax != 70 {
		t.Fatalf("fleet view %+v", fleet)
	}

	var u metrics.Update
	if code := GetJSON(t, h, "/api/v1/performance?host=e2e-v2", &u); code != http.StatusOK {
		t.Fatalf("performance?host=e2e-v2: %d", code)
	}
	onlyHostGPUs(t, u, "e2e-v2")
	var e struct{ Error string }
	if code := GetJSON(t, h, "/api/v1/performance?host=nope", &e); code != http.StatusNotFound ||
		!strings.Contains(e.Error, `unknown host "nope" (known hosts: e2e-v1, e2e-v2, e2e-v3)`) {
		t.Fatalf("performance?host=nope: %d %q", code, e.Error)
	}

	// Two browsers on gpu e2e-v2's view.
	a, b := DialWS(t, h), DialWS(t, h)
	for _, w := range []*WS{a, b} {
		w.Send(t, map[string]string{"type": "subscribe", "view": "host", "host": "e2e-v2"})
	}
	seen := map[string][]byte{} // a's host-view messages by timestamp
	hostView := func(w *WS) (metrics.Update, []byte) {
		for {
			typ, raw := w.Next(t)
			if typ != metrics.TypeUpdate {
				continue
			}
			var u metrics.Update
			if err := json.Unmarshal(raw, &u); err != nil {
				t.Fatal(err)
			}
			if len(u.Hosts) == 1 {
				return u, raw
			}
		}
	}
	var last time.Time
	for range 3 {
		u, raw := hostView(a)
		onlyHostGPUs(t, u, "e2e-v2")
		seen[u.Timestamp.String()] = raw
		last = u.Timestamp
	}
	for {
		u, raw := hostView(b)
		onlyHostGPUs(t, u, "e2e-v2")
		if u.Timestamp.After(last) {
			t.Fatalf("the second browser got none of the first one's ticks (%s past %s)", u.Timestamp, last)
		}
		if want, ok := seen[u.Timestamp.String()]; ok {
			if !bytes.Equal(raw, want) {
				t.Fatalf("two browsers of one view got different bytes for %s", u.Timestamp)
			}
			break
		}
	}
}

func onlyHostGPUs(t *testing.T, u metrics.Update, host string) {
	t.Helper()
	if len(u.GPUs) != 8 || len(u.Hosts) != 1 || u.Hosts[0].Host != host || u.GPU.Host != host {
		t.Fatalf("%s's view: %d GPUs, hosts %+v, gpu of %s", host, len(u.GPUs), u.Hosts, u.GPU.Host)
	}
	for _, g := range u.GPUs {
		if g.Host != host {
			t.Fatalf("%s's view holds a GPU of %s", host, g.Host)
		}
	}
}
