package collect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/sysperf/sysperf/internal/redact"
)

// defaultHTTPTimeout bounds a model-server request when the caller gives no
// client of its own; the agent's context usually ends it sooner.
const defaultHTTPTimeout = 3 * time.Second

// Body caps: a health answer is a few hundred bytes, /slots grows with the
// slot count and /metrics with the series, so anything past these is not
// what we asked for.
const (
	maxJSONBody    = 1 << 20
	maxMetricsBody = 4 << 20
)

// finishBefore returns a context ending a little before ctx's deadline, so
// a collector facing a slow server writes its own "timeout" verdict before
// the agent stops waiting for it and the reading is lost.
func finishBefore(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	margin := min(time.Until(dl)/10, 250*time.Millisecond)
	return context.WithDeadline(ctx, dl.Add(-margin))
}

func orDefaultClient(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return &http.Client{Timeout: defaultHTTPTimeout}
}

// httpGet fetches url and returns its status code and body, read up to
// limit bytes. A body longer than limit is an error rather than a silently
// truncated document that would then fail to parse for an obscure reason.
func httpGet(ctx context.Context, client *http.Client, rawURL string, limit int64) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s: %w", redact.URL(rawURL), redact.Error(err))
	}
	return doLimited(client, req, limit)
}

// doLimited sends req and reads the body up to limit bytes.
func doLimited(client *http.Client, req *http.Request, limit int64) (int, []byte, error) {
	where := redact.URL(req.URL.String())
	resp, err := client.Do(req)
	if err != nil {
		// The client's error quotes the URL, query and all.
		return 0, nil, fmt.Errorf("GET %s: %w", where, redact.Error(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("GET %s: read body: %w", where, err)
	}
	if int64(len(body)) > limit {
		return resp.StatusCode, nil, fmt.Errorf("GET %s: body over %d bytes: %w", where, limit, errBodyTooLarge)
	}
	return resp.StatusCode, body, nil
}

var errBodyTooLarge = errors.New("body too large")

// reasonOf turns a transport error into the short reason the dashboard
// shows next to "unreachable".
func reasonOf(err error) string {
	var netErr net.Error
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	case errors.As(err, &dnsErr):
		return "no such host"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, errBodyTooLarge):
		return "body too large"
	}
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}

func httpReason(code int) string { return fmt.Sprintf("HTTP %d", code) }

// joinURL appends an endpoint path to a configured base URL's path,
// tolerating a trailing slash and keeping its query (an access token, say):
// http://h/v1?token=t and /metrics make http://h/v1/metrics?token=t. A base
// that does not parse is joined as text, so the request fails naming it.
func joinURL(base, path string) string {
	u, err := url.Parse(base)
	if err != nil {
		return strings.TrimRight(base, "/") + path
	}
	return u.JoinPath(path).String()
}
