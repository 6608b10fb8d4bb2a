// Package redact hides the secrets in URLs and connection strings. Every
// URL or DSN that reaches a log line, an error, the API or the dashboard
// passes through here first, so there is one idea of what a secret is.
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

// tokenSchemes are those whose lone user name is a secret token
// (nats://s3cr3t@host), unlike postgres://app@host where it is a name.
var tokenSchemes = map[string]bool{"nats": true, "tls": true, "ws": true, "wss": true}

// kvPassword matches password=... in a keyword/value connection string,
// quoted ('...' with \' escapes) or bare up to the next space.
var kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// looseURLPassword finds the password of a URL that url.Parse refuses.
var looseURLPassword = regexp.MustCompile(`://[^:/@]*:([^@/]+)@`)

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
// cluster), with its password, a token given as the user and any password
// query parameter masked.
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
		if strings.Contains(raw, "@") || strings.Contains(strings.ToLower(raw), "password") {
			return unparsable
		}
		return raw
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Mask)
		} else if tokenSchemes[strings.ToLower(u.Scheme)] {
			u.User = url.User(Mask)
		}
	}
	if q := u.Query(); hasPassword(q) {
		for k := range q {
			if strings.EqualFold(k, "password") {
				q.Set(k, Mask)
			}
		}
		u.RawQuery = q.Encode()
	}
	// url.String escapes the mask's characters nowhere, so it stays readable.
	return u.String()
}

func hasPassword(q url.Values) bool {
	for k := range q {
		if strings.EqualFold(k, "password") {
			return true
		}
	}
	return false
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

// Secret masks every occurrence of secret in s. Drivers quote the
// connection string or the password in some errors; this is the last line
// that keeps it out of a reason shown on the dashboard.
func Secret(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, Mask)
}
