// Package webui serves the dashboard's build (webui/dist, made by
// `npm run build`) from inside the binary.
//
// The build is not committed; webui/dist/.keep is, so the go:embed pattern
// matches in a fresh checkout and `go build` works before the UI is built.
// A binary built that way serves a page explaining how to build the UI.
package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed all:dist
var dist embed.FS

// Cache policies. Vite puts a content hash in every name under assets/, so
// those never change under the same URL; everything else (index.html
// above all) must be revalidated or a new release would keep loading old
// asset names.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheRevalid   = "no-cache"
)

// contentTypes is explicit rather than mime.TypeByExtension because the
// latter consults the host's mime tables, which differ between machines
// (and lack .woff2 or .map on some).
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".webmanifest": "application/manifest+json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".webp":        "image/webp",
	".ico":         "image/x-icon",
	".woff":        "font/woff",
	".woff2":       "font/woff2",
	".txt":         "text/plain; charset=utf-8",
}

type file struct {
	body        []byte
	etag        string
	contentType string
}

type handler struct {
	files map[string]file // by slash path without the leading "/"
	built bool
}

// Handler serves the embedded build: files with their content types,
// hashed assets cached for a year, index.html revalidated, and index.html
// for any client route (a path whose last segment has no dot). Without a
// build it answers every page request with instructions (503).
func Handler() http.Handler {
	h, err := newHandler(dist, "dist")
	if err != nil {
		// The embedded FS is part of the binary; failing to read it is a
		// broken build, not a runtime condition.
		panic(fmt.Sprintf("webui: reading embedded build: %v", err))
	}
	return h
}

// Built reports whether the binary carries a UI build, so the hub can say
// so in its start-up log.
func Built() bool {
	_, err := fs.Stat(dist, "dist/index.html")
	return err == nil
}

func newHandler(fsys fs.FS, root string) (*handler, error) {
	sub, err := fs.Sub(fsys, root)
	if err != nil {
		return nil, fmt.Errorf("sub %s: %w", root, err)
	}
	h := &handler{files: map[string]file{}}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(path.Base(p), ".") {
			return nil
		}
		body, err := fs.ReadFile(sub, p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		sum := sha256.Sum256(body)
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			ct = http.DetectContentType(body)
		}
		h.files[p] = file{body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, contentType: ct}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root, err)
	}
	_, h.built = h.files["index.html"]
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	// API and WebSocket paths the hub does not know must not turn into the
	// SPA's HTML: a client expecting JSON would get a confusing 200.
	if name == "api" || strings.HasPrefix(name, "api/") || name == "ws" || strings.HasPrefix(name, "ws/") {
		http.NotFound(w, r)
		return
	}
	if name == "" {
		name = "index.html"
	}
	if f, ok := h.files[name]; ok {
		h.serve(w, r, name, f)
		return
	}
	if name == "index.html" && !h.built {
		notBuilt(w, r)
		return
	}
	if strings.HasPrefix(name, "assets/") || strings.Contains(path.Base(name), ".") {
		// A missing file is a 404, never index.html: a stale page asking
		// for an old hashed asset must fail loudly, not parse HTML as JS.
		http.NotFound(w, r)
		return
	}
	if !h.built {
		notBuilt(w, r)
		return
	}
	h.serve(w, r, "index.html", h.files["index.html"])
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request, name string, f file) {
	hdr := w.Header()
	hdr.Set("Content-Type", f.contentType)
	hdr.Set("ETag", f.etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(name, "assets/") {
		hdr.Set("Cache-Control", cacheImmutable)
	} else {
		hdr.Set("Cache-Control", cacheRevalid)
	}
	// ServeContent answers If-None-Match against the ETag and handles HEAD
	// and ranges; the zero modtime keeps it from sending Last-Modified.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
}

const notBuiltPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>sysperf — dashboard not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1f2937}
code,pre{background:#f3f4f6;border-radius:4px;padding:.1rem .3rem}pre{padding:.75rem}</style></head>
<body><h1>The dashboard is not built into this binary</h1>
<p>This hub was compiled before the web UI was built, so it has no page to show.
The API (<code>/api/v1/performance</code>, <code>/api/v1/history</code>, <code>/api/v1/alerts</code>)
and the WebSocket <code>/ws/system</code> work as usual.</p>
<p>Build the UI and the binaries together from the repository root:</p>
<pre>make build</pre>
<p>or build the UI alone, then rebuild the hub:</p>
<pre>cd webui &amp;&amp; npm ci &amp;&amp; npm run build
cd .. &amp;&amp; go build -o bin/hub ./cmd/hub</pre>
</body></html>
`

func notBuilt(w http.ResponseWriter, _ *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	// 503 so a health check or a script notices the missing UI; the body
	// tells a person what to do.
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(notBuiltPage))
}
