package webui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func builtFS() fstest.MapFS {
	return fstest.MapFS{
		"dist/.keep":                   {Data: []byte("placeholder")},
		"dist/index.html":              {Data: []byte(`<!doctype html><div id="root"></div><script src="/assets/index-abc123.js"></script>`)},
		"dist/assets/index-abc123.js":  {Data: []byte(`console.log("app")`)},
		"dist/assets/index-def456.css": {Data: []byte(`body{margin:0}`)},
		"dist/favicon.svg":             {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`)},
	}
}

func mustHandler(t *testing.T, fsys fstest.MapFS) *handler {
	t.Helper()
	h, err := newHandler(fsys, "dist")
	if err != nil {
		t.Fatalf("newHandler: %v", err)
	}
	return h
}

func TestHandlerBuilt(t *testing.T) {
	h := mustHandler(t, builtFS())
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantType           string
		wantCache          string
		wantBody           string
	}{
		{"root is index", "GET", "/", 200, "text/html; charset=utf-8", cacheRevalid, `<div id="root">`},
		{"index.html", "GET", "/index.html", 200, "text/html; charset=utf-8", cacheRevalid, `<div id="root">`},
		{"client route /system", "GET", "/system", 200, "text/html; charset=utf-8", cacheRevalid, `<div id="root">`},
		{"deep client route", "GET", "/hosts/gpu-box-1", 200, "text/html; charset=utf-8", cacheRevalid, `<div id="root">`},
		{"hashed js", "GET", "/assets/index-abc123.js", 200, "text/javascript; charset=utf-8", cacheImmutable, `console.log`},
		{"hashed css", "GET", "/assets/index-def456.css", 200, "text/css; charset=utf-8", cacheImmutable, `margin:0`},
		{"unhashed root file", "GET", "/favicon.svg", 200, "image/svg+xml", cacheRevalid, `<svg`},
		{"HEAD", "HEAD", "/system", 200, "text/html; charset=utf-8", cacheRevalid, ""},
		{"missing asset is 404 not html", "GET", "/assets/index-old999.js", 404, "", "", ""},
		{"missing dotted file is 404", "GET", "/robots.txt", 404, "", "", ""},
		{"dotfile not served", "GET", "/.keep", 404, "", "", ""},
		{"unknown api path is 404", "GET", "/api/v1/nope", 404, "", "", ""},
		{"unknown ws path is 404", "GET", "/ws/other", 404, "", "", ""},
		{"traversal stays inside", "GET", "/../../etc/passwd", 200, "text/html; charset=utf-8", cacheRevalid, `<div id="root">`},
		{"POST refused", "POST", "/system", 405, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", rec.Code, tc.wantStatus, rec.Body.String())
			}
			if tc.wantType != "" {
				if got := rec.Header().Get("Content-Type"); got != tc.wantType {
					t.Errorf("Content-Type = %q, want %q", got, tc.wantType)
				}
			}
			if tc.wantCache != "" {
				if got := rec.Header().Get("Cache-Control"); got != tc.wantCache {
					t.Errorf("Cache-Control = %q, want %q", got, tc.wantCache)
				}
			}
			if !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("body %q lacks %q", rec.Body.String(), tc.wantBody)
			}
			if tc.method == "HEAD" && rec.Body.Len() != 0 {
				t.Errorf("HEAD wrote a body of %d bytes", rec.Body.Len())
			}
		})
	}
}

func TestHandlerETagRevalidation(t *testing.T) {
	h := mustHandler(t, builtFS())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/system", nil))
	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on index.html")
	}
	req := httptest.NewRequest("GET", "/system", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Fatalf("revalidation status = %d, want 304", rec.Code)
	}

	// A different file has a different tag, so a changed build is refetched.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/assets/index-abc123.js", nil))
	if rec.Header().Get("ETag") == etag {
		t.Fatal("two different files share an ETag")
	}
}

func TestHandlerNotBuilt(t *testing.T) {
	h := mustHandler(t, fstest.MapFS{"dist/.keep": {Data: []byte("placeholder")}})
	if h.built {
		t.Fatal("handler claims a build with only .keep present")
	}
	for _, p := range []string{"/", "/system", "/index.html"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s: status = %d, want 503", p, rec.Code)
		}
		body := rec.Body.String()
		for _, want := range []string{"make build", "cd webui &amp;&amp; npm ci &amp;&amp; npm run build", "not built"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: not-built page lacks %q", p, want)
			}
		}
		if got := rec.Header().Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s: Cache-Control = %q, want no-store so a later build shows at once", p, got)
		}
	}
	// Assets still 404 rather than the instructions page.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/assets/index-abc123.js", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("asset without build: status = %d, want 404", rec.Code)
	}
}

// The real embedded FS must always load, built or not, and Built must agree
// with what the handler serves.
func TestHandlerEmbedded(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/system", nil))
	want := http.StatusServiceUnavailable
	if Built() {
		want = http.StatusOK
	}
	if rec.Code != want {
		t.Fatalf("GET /system = %d, want %d (Built=%v)", rec.Code, want, Built())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("Content-Type = %q", ct)
	}
}

func BenchmarkHandler(b *testing.B) {
	h, err := newHandler(builtFS(), "dist")
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range []string{"/system", "/assets/index-abc123.js"} {
		b.Run(p, func(b *testing.B) {
			req := httptest.NewRequest("GET", p, nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}
