package sources

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type engineTrip func(*http.Request) (*http.Response, error)

func (f engineTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzEngineAPI feeds the Engine API's container list and inspect
// answers through the source's real read: an engine (or whatever answers
// on its socket) may send anything; the source reports it or an error,
// never panics.
func FuzzEngineAPI(f *testing.F) {
	dir := filepath.Join("testdata", "engine")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	inspects, err := filepath.Glob(filepath.Join(dir, "inspect-*.json"))
	if err != nil || len(inspects) == 0 {
		f.Fatalf("no inspect seeds: %v", err)
	}
	for i, p := range inspects {
		list := read("containers.json")
		if i%2 == 1 {
			list = read("containers-v1.52.json")
		}
		f.Add(list, read(filepath.Base(p)))
	}
	f.Add([]byte(`[{"Id":"","Names":[],"State":"exited"},{"Id":"/","Names":["/a","/b"],"State":"restarting","Health":{"Status":"unhealthy","Log":[]}}]`), []byte(`{"State":{"Health":{"Status":"unhealthy","FailingStreak":-1,"Log":[{"ExitCode":-1,"Output":"\n\n\u0000"}]}}}`))
	f.Add([]byte(`null`), []byte(`null`))
	f.Fuzz(func(t *testing.T, list, inspect []byte) {
		c, err := NewContainers(ContainersConfig{EngineHost: "http://engine", PingTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		c.client = &http.Client{Transport: engineTrip(func(r *http.Request) (*http.Response, error) {
			body := inspect
			if strings.HasSuffix(r.URL.Path, "/containers/json") {
				body = list
			}
			return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
		})}
		ep, ok := c.engineEndpoint()
		if !ok {
			t.Fatal("no engine endpoint")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := c.readEngine(ctx, ep)
		if err == nil {
			merge(nil, nil, got, true)
		}
	})
}
