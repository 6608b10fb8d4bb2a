package export

import (
	"io"
	"net/http/httptest"
	"testing"
)

// One scrape of /metrics with the full update: gather and encode.
func BenchmarkScrape(b *testing.B) {
	e := New(&fakeHub{in: Ingest{Samples: 1}, latest: fullUpdate()})
	h := e.Handler()
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
		_, _ = io.Copy(io.Discard, rec.Body)
	}
}
