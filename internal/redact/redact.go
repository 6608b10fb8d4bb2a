// Package redact hides the secrets in URLs, connection strings and the
// text that quotes them. Every URL or DSN that reaches a log line, an
// error, the API, NATS or the dashboard passes through here first, so
// there is one idea of what a secret is:
//
//   - a URL's password, and its whole user info where the scheme makes a
//     lone user a token (http, nats, ws; not postgres or redis, where it is
//     a user name);
//   - the value of every query (or fragment) parameter whose name looks
//     like a credential: token, key, secret, password, passwd, pwd, auth,
//     sig, signature, credential, session and names containing them, such
//     as access_token, api_key or X-Api-Key, in any case;
//   - password=... in a keyword/value connection string (PostgreSQL).
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces a secret.
const Mask = "xxxxx"

// unparsable replaces a URL that carries credentials but does not parse:
// where the secret ends cannot be known, so nothing of it is shown.
const unparsable = "(a URL with credentials that does not parse)"

// nameSchemes are those whose lone user is a name (postgres://app@db),
// not a token as in nats://s3cr3t@host or https://token@host.
var nameSchemes = map[string]bool{
	"postgres": true, "postgresql": true, "redis": true, "rediss": true,
	"mysql": true, "mongodb": true, "mongodb+srv": true, "amqp": true, "amqps": true,
}

// credentialWords are the parts of a parameter name that make its value a
// secret; matched case-insensitively anywhere in the name, so x-api-key
// and access_token count. Masking a harmless value ("monkey") costs less
// than showing one key.
var credentialWords = []string{
	"token", "key", "secret", "pass", "pwd", "auth", "sig", "credential", "session", "cookie", "jwt", "bearer",
}

// kvPassword matches password=... in a keyword/value connection string,
// quoted ('...' with \' escapes) or bare up to the next space.
var kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// looseURLPassword finds the password of a URL that url.Parse refuses.
var looseURLPassword = regexp.MustCompile(`://[^:/@]*:([^@/]+)@`)

// inText finds the URLs in free text such as an error message; quotes,
// spaces and angle brackets end one, as Go's %q and most messages put them.
var inText = regexp.MustCompile("[A-Za-z][A-Za-z0-9+.-]*://[^\\s\"'`<>]+")

// Credential reports whether a parameter or header name looks like it
// carries a secret.
func Credential(name string) bool {
	n := strings.ToLower(name)
	for _, w := range credentialWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// Password returns the password a URL or keyword/value DSN carries, even
// one that does not parse, so that an error quoting it can be masked with
// Secret; "" when it has none.
func Password(s string) string {
	if !strings.Contains(s, "://") {
		if m := kvPassword.FindStringSubmatch(s); m != nil {
			return strings.Trim(m[2], "'")
		}
		return ""
	}
	if u, err := url.Parse(s); err == nil {
		if pw, ok := u.User.Password(); ok {
			return pw
		}
		return u.Query().Get("password")
	}
	if m := looseURLPassword.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

// URL returns rawURL, or each URL of a comma-separated list (a NATS
// cluster), with its credentials masked.
func URL(rawURL string) string {
	parts := strings.Split(rawURL, ",")
	for i, p := range parts {
		parts[i] = one(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

func one(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") || hasCredentialParam(raw) {
			return unparsable
		}
		return raw
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Mask)
		} else if !nameSchemes[strings.ToLower(u.Scheme)] {
			u.User = url.User(Mask)
		}
	}
	u.RawQuery = maskParams(u.RawQuery)
	if u.Fragment != "" && strings.Contains(u.Fragment, "=") {
		// OAuth's implicit flow puts access_token in the fragment.
		u.Fragment, u.RawFragment = maskParams(u.EscapedFragment()), ""
	}
	// url.String escapes the mask's characters nowhere, so it stays readable.
	return u.String()
}

// maskParams masks the values of credential-looking parameters of a raw
// query, keeping the order and spelling of everything else.
func maskParams(raw string) string {
	if raw == "" {
		return raw
	}
	pairs := strings.Split(raw, "&")
	for i, p := range pairs {
		k, _, has := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if has && Credential(name) {
			pairs[i] = k + "=" + Mask
		}
	}
	return strings.Join(pairs, "&")
}

// hasCredentialParam says whether unparsed text has a parameter that
// looks like a credential.
func hasCredentialParam(raw string) bool {
	_, q, ok := strings.Cut(raw, "?")
	if !ok {
		_, q, ok = strings.Cut(raw, "#")
	}
	return ok && maskParams(q) != q || kvPassword.MatchString(raw)
}

// DSN returns a database connection string with its password masked. It
// reads the URL form (postgres://user:pw@host/db?password=pw) and the
// keyword/value form (host=db password=pw).
func DSN(dsn string) string {
	if strings.Contains(dsn, "://") {
		return URL(dsn)
	}
	return kvPassword.ReplaceAllString(dsn, "${1}"+Mask)
}

// Text masks every URL in free text, such as an error that quotes the URL
// it failed on (Go's HTTP client quotes query strings whole), and every
// password=... of a connection string.
func Text(s string) string {
	if !strings.Contains(s, "://") && !strings.Contains(strings.ToLower(s), "password") {
		return s
	}
	s = inText.ReplaceAllStringFunc(s, func(m string) string {
		// Punctuation after a URL ("GET http://h/x?k=v: refused") is the
		// sentence's, not the URL's.
		core := strings.TrimRight(m, ".,;:)]")
		return URL(core) + m[len(core):]
	})
	return kvPassword.ReplaceAllString(s, "${1}"+Mask)
}

// Error returns err with Text applied to its message; errors.Is and
// errors.As still see the error it wraps. Nil stays nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	return masked{err}
}

type masked struct{ err error }

func (m masked) Error() string { return Text(m.err.Error()) }
func (m masked) Unwrap() error { return m.err }

// Secret masks every occurrence of secret in s. Drivers quote the
// connection string or the password in some errors; this is the last line
// that keeps it out of a reason shown on the dashboard.
func Secret(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, Mask)
}
