package server

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// cookieName is the session cookie of the hub listening on addr. Cookies
// are shared by every port of a host, so the port is in the name: signing
// in to a second hub on the same machine does not sign out of the first.
func cookieName(addr string) string {
	name := "sysperf_session"
	if _, port, err := net.SplitHostPort(addr); err == nil {
		name += "_" + port
	}
	return name
}

// minTokenLen keeps a hand-written token from being guessable; generated
// ones are 43 characters.
const minTokenLen = 16

// ReadTokens reads a token file: one token per line, so that several are
// valid at once (while one is rotated out, say); blank lines and lines
// starting with '#' are skipped. Errors name the file and the line, never
// the token.
func ReadTokens(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	var tokens []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < minTokenLen || strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("token file %s line %d: a token is one word of at least %d characters", path, n, minTokenLen)
		}
		tokens = append(tokens, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("token file %s: no token in it", path)
	}
	return tokens, nil
}

// EnsureTokenFile returns the tokens of path, first writing a new random
// token there (mode 0600, its directory created) when the file does not
// exist. It reports whether it wrote one.
func EnsureTokenFile(path string) (tokens []string, created bool, err error) {
	if _, err := os.Stat(path); err == nil {
		tokens, err := ReadTokens(path)
		return tokens, false, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("token file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, false, fmt.Errorf("token file: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, false, fmt.Errorf("token file: random: %w", err)
	}
	// URL-safe: the sign-in link carries it in a query.
	tok := base64.RawURLEncoding.EncodeToString(raw)
	// O_EXCL: two hubs starting at once must not each write their own.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		tokens, err := ReadTokens(path)
		return tokens, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("token file: %w", err)
	}
	_, werr := f.WriteString(tok + "\n")
	if err := errors.Join(werr, f.Close()); err != nil {
		return nil, false, fmt.Errorf("token file %s: %w", path, err)
	}
	return []string{tok}, true, nil
}

// keys holds what a request's credential is compared with: SHA-256 sums,
// so that every comparison is over equal lengths and takes the same time
// whatever the token's length.
type keys struct {
	tokens   [][32]byte
	metrics  [][32]byte
	sessions [][32]byte
	cookies  []string // session cookie value of each token, same order
}

func newKeys(tokens, metricsTokens []string) *keys {
	k := &keys{}
	for _, t := range tokens {
		k.tokens = append(k.tokens, sha256.Sum256([]byte(t)))
		c := sessionValue(t)
		k.cookies = append(k.cookies, c)
		k.sessions = append(k.sessions, sha256.Sum256([]byte(c)))
	}
	if metricsTokens == nil {
		metricsTokens = tokens
	}
	for _, t := range metricsTokens {
		k.metrics = append(k.metrics, sha256.Sum256([]byte(t)))
	}
	return k
}

// sessionValue is the cookie of a token: derived from it, so sessions
// survive a restart and end when the token leaves the file, and the
// cookie is not the token itself.
func sessionValue(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("sysperf dashboard session v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// match compares v with every key, always all of them.
func match(v string, against [][32]byte) int {
	sum := sha256.Sum256([]byte(v))
	found := -1
	for i := range against {
		if subtle.ConstantTimeCompare(sum[:], against[i][:]) == 1 && found < 0 {
			found = i
		}
	}
	return found
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// signedIn reports whether r carries a dashboard token as a bearer header
// or a session cookie.
func (k *keys) signedIn(r *http.Request, cookie string) bool {
	if tok, ok := bearer(r); ok {
		return match(tok, k.tokens) >= 0
	}
	if c, err := r.Cookie(cookie); err == nil {
		return match(c.Value, k.sessions) >= 0
	}
	return false
}

// metricsOK reports whether r carries a /metrics bearer token.
func (k *keys) metricsOK(r *http.Request) bool {
	tok, ok := bearer(r)
	return ok && match(tok, k.metrics) >= 0
}

// Loopback reports whether a listen address can only be reached from this
// machine: a loopback IP or "localhost". An empty or unspecified host
// listens on every interface and is not.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hosts is the Host allow-list: a page on a foreign name that resolves to
// this hub (DNS rebinding) is refused, whatever else it carries.
type hosts struct {
	names map[string]bool
	// anyIP admits any IP literal, when the hub listens on every
	// interface: a browser sends an IP as Host only when the user typed
	// it, and a rebinding page cannot make one.
	anyIP bool
}

func newHosts(listen string, extra []string) *hosts {
	h := &hosts{names: map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}}
	if host, _, err := net.SplitHostPort(listen); err == nil {
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			h.anyIP = true
		} else {
			h.names[normHost(host)] = true
		}
	}
	for _, n := range extra {
		if n = normHost(strings.TrimSpace(n)); n != "" {
			h.names[n] = true
		}
	}
	return h
}

// normHost lowers a Host and strips its port, brackets and trailing dot.
func normHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

func (h *hosts) allowed(host string) bool {
	n := normHost(host)
	if n == "" {
		return false
	}
	if h.names[n] {
		return true
	}
	return h.anyIP && net.ParseIP(n) != nil
}
