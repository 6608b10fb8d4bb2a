package redact

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestURLAndDSN(t *testing.T) {
	tests := []struct {
		name, in, want string
		dsn            bool
	}{
		{name: "plain", in: "nats://127.0.0.1:4321", want: "nats://127.0.0.1:4321"},
		{name: "password", in: "nats://u:pw@a:4222", want: "nats://u:xxxxx@a:4222"},
		{name: "nats token as user", in: "nats://s3cr3t-token@a:4222", want: "nats://xxxxx@a:4222"},
		{name: "every URL of a cluster list", in: "nats://u:pw@a:4222,nats://v:secret@b:4222", want: "nats://u:xxxxx@a:4222,nats://v:xxxxx@b:4222"},
		{name: "list with spaces", in: "nats://a:4222, nats://v:secret@b:4222", want: "nats://a:4222,nats://v:xxxxx@b:4222"},
		{name: "unparsable with credentials", in: "nats://u:pw@a:port", want: unparsable},
		{name: "unparsable without credentials", in: "http://[::1/x", want: "http://[::1/x"},
		{name: "http basic auth", in: "http://a:b@127.0.0.1:8090/health", want: "http://a:xxxxx@127.0.0.1:8090/health"},
		{name: "postgres url", in: "postgres://app:s3cr%40t@db:5432/hsi?sslmode=disable", want: "postgres://app:xxxxx@db:5432/hsi?sslmode=disable", dsn: true},
		{name: "postgres user is a name", in: "postgres://app@db/hsi", want: "postgres://app@db/hsi", dsn: true},
		{name: "password in query", in: "postgresql://db/hsi?user=app&password=hunter2", want: "postgresql://db/hsi?user=app&password=xxxxx", dsn: true},
		{name: "query without password untouched", in: "postgres://db/hsi?b=2&a=1", want: "postgres://db/hsi?b=2&a=1", dsn: true},
		{name: "redis", in: "redis://:topsecret@127.0.0.1:6379/0", want: "redis://:xxxxx@127.0.0.1:6379/0", dsn: true},
		{name: "keyword bare", in: "host=db user=app password=hunter2 dbname=hsi", want: "host=db user=app password=xxxxx dbname=hsi", dsn: true},
		{name: "keyword quoted", in: `host=db password='it\'s secret' dbname=hsi`, want: "host=db password=xxxxx dbname=hsi", dsn: true},
		{name: "keyword spaced", in: "host=db password = hunter2", want: "host=db password = xxxxx", dsn: true},
		{name: "unparsable dsn url", in: "postgres://app:pw@db:port/x%zz", want: unparsable, dsn: true},
		{name: "no secret", in: "host=db dbname=hsi", want: "host=db dbname=hsi", dsn: true},
		{name: "query token", in: "http://prom:9090/?token=s3cr3t&x=1", want: "http://prom:9090/?token=xxxxx&x=1"},
		{name: "query names are credentials in any case and as parts", in: "https://h/p?X-Api-Key=s3cr1&access_token=s3cr2&SIG=s3cr3&Signature=s3cr4&apikey=s3cr5&session_id=s3cr6&passwd=s3cr7&pwd=s3cr8&auth=s3cr9&Credential=s3cr10&limit=5",
			want: "https://h/p?X-Api-Key=xxxxx&access_token=xxxxx&SIG=xxxxx&Signature=xxxxx&apikey=xxxxx&session_id=xxxxx&passwd=xxxxx&pwd=xxxxx&auth=xxxxx&Credential=xxxxx&limit=5"},
		{name: "escaped parameter name", in: "http://h/?api%5Fkey=s3cr3t", want: "http://h/?api%5Fkey=xxxxx"},
		{name: "fragment token", in: "https://h/cb#access_token=s3cr3t&state=1", want: "https://h/cb#access_token=xxxxx&state=1"},
		{name: "http token as user", in: "https://s3cr3t@h/hook", want: "https://xxxxx@h/hook"},
		{name: "redis user is a name", in: "redis://app:s3cr3t@h:6379/0", want: "redis://app:xxxxx@h:6379/0", dsn: true},
		{name: "unparsable with a token parameter", in: "http://h:port/?token=s3cr3t", want: unparsable},
		{name: "postgres url with password parameter unparsable", in: "postgres://h:port/?password=hunter2", want: unparsable, dsn: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, fn := URL, "URL"
			if tc.dsn {
				f, fn = DSN, "DSN"
			}
			got := f(tc.in)
			if got != tc.want {
				t.Fatalf("%s(%q) = %q, want %q", fn, tc.in, got, tc.want)
			}
			for _, secret := range []string{"s3cr", "hunter2", "topsecret", "secret'", ":pw@", ":b@", "token-"} {
				if strings.Contains(got, secret) {
					t.Fatalf("%s(%q) = %q still shows %q", fn, tc.in, got, secret)
				}
			}
		})
	}
}

func TestSecret(t *testing.T) {
	if got := Secret(`password "pw1" rejected for pw1`, "pw1"); got != `password "xxxxx" rejected for xxxxx` {
		t.Fatalf("got %q", got)
	}
	if got := Secret("nothing", ""); got != "nothing" {
		t.Fatalf("empty secret changed the text: %q", got)
	}
}

func TestPassword(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://:topsecret@127.0.0.1:6379/0", "topsecret"},
		{"postgres://app:pw@db:port/x%zz", "pw"},
		{"postgresql://db/hsi?user=app&password=hunter2", "hunter2"},
		{"host=db password='it secret' dbname=hsi", "it secret"},
		{"host=db password=hunter2", "hunter2"},
		{"postgres://app@db/hsi", ""},
		{"host=db dbname=hsi", ""},
	}
	for _, tc := range tests {
		if got := Password(tc.in); got != tc.want {
			t.Errorf("Password(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{`Get "http://u:***@h:1/health?token=s3cr3t": dial tcp 127.0.0.1:1: connect: connection refused`,
			`Get "http://u:xxxxx@h:1/health?token=xxxxx": dial tcp 127.0.0.1:1: connect: connection refused`},
		{"GET http://h/m?api_key=s3cr3t: HTTP 500", "GET http://h/m?api_key=xxxxx: HTTP 500"},
		{"nats connect nats://tok3n@a:4222,nats://u:s3cr3t@b:4222: timeout", "nats connect nats://xxxxx@a:4222,nats://u:xxxxx@b:4222: timeout"},
		{"failed: host=db password=hunter2 user=x", "failed: host=db password=xxxxx user=x"},
		{"connection refused", "connection refused"},
		{"see http://h/x, then retry", "see http://h/x, then retry"},
	}
	for _, tc := range tests {
		if got := Text(tc.in); got != tc.want {
			t.Errorf("Text(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestError(t *testing.T) {
	if Error(nil) != nil {
		t.Fatal("Error(nil) is not nil")
	}
	inner := errors.New(`Post "http://h/hook?token=s3cr3t": EOF`)
	err := Error(fmt.Errorf("deliver: %w", inner))
	if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "token=xxxxx") {
		t.Fatalf("Error() = %q", err)
	}
	if !errors.Is(err, inner) {
		t.Fatal("the masked error no longer wraps the original")
	}
}
