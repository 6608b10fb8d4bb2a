package sources

import (
	"net/url"
	"regexp"
	"strings"
)

// redacted replaces a secret wherever it shows.
const redacted = "xxxxx"

// kvPassword matches password=... in a keyword/value connection string,
// quoted ('...' with \' escapes) or bare up to the next space.
var kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// RedactDSN returns dsn with its password masked, for logs and errors. It
// understands the URL form (postgres://user:pw@host/db?password=pw) and the
// keyword/value form (host=... password=pw); anything else it cannot read
// is masked whole rather than risk showing a secret.
func RedactDSN(dsn string) string {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return redacted
		}
		if u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), redacted)
			}
		}
		q := u.Query()
		for k := range q {
			if strings.EqualFold(k, "password") {
				q.Set(k, redacted)
			}
		}
		u.RawQuery = q.Encode()
		// url.String escapes the mask's characters in neither place, so
		// the result stays readable.
		return u.String()
	}
	return kvPassword.ReplaceAllString(dsn, "${1}"+redacted)
}

// redactSecret masks every occurrence of secret in s. Drivers quote the
// connection string or the password in some errors; this is the last line
// that keeps it out of a reason shown on the dashboard.
func redactSecret(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, redacted)
}
