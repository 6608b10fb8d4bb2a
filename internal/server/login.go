package server

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// csp allows nothing but the hub itself: no inline script (the login
// page has none, the dashboard loads its theme script from a file), no
// inline style but the login page's, no framing. The charts' styles are
// set through the DOM (React's style props), which style-src does not
// govern. 'self' in connect-src covers ws: and wss: to the same host.
var csp = "default-src 'self'; script-src 'self'; style-src 'self' " + styleHash(loginCSS) + "; img-src 'self' data:; font-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// styleHash is the CSP source that admits exactly one inline <style>.
func styleHash(css string) string {
	sum := sha256.Sum256([]byte(css))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// loginCSS is the login page's style; the CSP admits it by its hash.
const loginCSS = `
body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}
form{display:flex;flex-direction:column;gap:.75rem}
input{font:inherit;padding:.5rem}
button{font:inherit;padding:.5rem;cursor:pointer}
.msg{padding:.5rem .75rem;border-left:4px solid #d97706}
`

// afterLogin is where a signed-in browser goes.
const afterLogin = "/system"

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// guard wraps every route: security headers on every answer, the Host
// allow-list, then the credential each path needs. /healthz (container
// and load-balancer probes) and /login need none.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		k := s.keys.Load()
		if !s.hosts.allowed(r.Host) {
			writeError(w, http.StatusMisdirectedRequest, "host "+quoteHost(r.Host)+
				" is not a name this hub answers to (a DNS-rebinding page looks like this); add it with --http-allowed-hosts")
			return
		}
		switch {
		case r.URL.Path == "/healthz" || r.URL.Path == "/login" || k == nil:
		case r.URL.Path == "/metrics":
			if !k.metricsOK(r) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="sysperf metrics"`)
				writeError(w, http.StatusUnauthorized, "/metrics needs Authorization: Bearer with the metrics token (--metrics-token-file, else the dashboard token)")
				return
			}
		case !k.signedIn(r, s.cookie):
			s.unauthorized(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func quoteHost(h string) string {
	if len(h) > 100 {
		h = h[:100] + "…"
	}
	return `"` + strings.ToValidUTF8(h, "?") + `"`
}

// unauthorized answers a request without a valid credential: a browser
// navigating to a page gets the login form, anything else JSON.
func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
		s.loginPage(w, http.StatusUnauthorized, "Sign in to see this hub's dashboard.")
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="sysperf"`)
	writeError(w, http.StatusUnauthorized, "sign in: send Authorization: Bearer <token> (the hub's --http-token-file) or sign in at /login")
}

// login serves the form (GET /login), takes it (POST /login) and signs in
// a link (GET /login?token=...), which `make run` prints.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	k := s.keys.Load()
	if k == nil {
		http.Redirect(w, r, afterLogin, http.StatusSeeOther)
		return
	}
	var tok string
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if !r.URL.Query().Has("token") {
			s.loginPage(w, http.StatusOK, "")
			return
		}
		tok = r.URL.Query().Get("token")
	case http.MethodPost:
		// A form from another site must not sign a browser in.
		if crossSite(r) {
			s.loginPage(w, http.StatusForbidden, "This sign-in came from another site and was refused.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		if err := r.ParseForm(); err != nil {
			s.loginPage(w, http.StatusBadRequest, "The form could not be read.")
			return
		}
		tok = strings.TrimSpace(r.PostForm.Get("token"))
	default:
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, "GET or POST /login")
		return
	}
	i := match(tok, k.tokens)
	if i < 0 {
		if n := s.wrongTokens.Add(1); s.signInLog.due(time.Now()) {
			s.log.Warn("sign-in refused: wrong token", "remote", r.RemoteAddr, "refused_total", n)
		}
		s.loginPage(w, http.StatusUnauthorized, "That token is not valid for this hub. It is in the hub's token file (--http-token-file, or http.token in its data directory).")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookie,
		Value:    k.cookies[i],
		Path:     "/",
		MaxAge:   30 * 24 * 3600,
		HttpOnly: true,
		Secure:   s.tls,
		SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, afterLogin, http.StatusSeeOther)
}

// crossSite reports whether a browser says the request comes from another
// site. Origin alone cannot tell: under Referrer-Policy no-referrer the
// hub's own form posts with Origin "null", as a sandboxed frame does, so
// Sec-Fetch-Site (sent by every current browser) decides then.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return true
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return false
	}
	u, err := url.Parse(o)
	return err != nil || !strings.EqualFold(u.Host, r.Host)
}

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Sign in · sysperf</title>
<style>` + loginCSS + `</style></head>
<body>
<h1>sysperf</h1>
{{if .}}<p class="msg" role="alert">{{.}}</p>{{end}}
<form method="post" action="/login">
<label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form>
</body></html>
`))

func (s *Server) loginPage(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = loginTmpl.Execute(w, msg)
}
