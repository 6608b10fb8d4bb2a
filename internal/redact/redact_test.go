package redact

import (
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
		{name: "password in query", in: "postgresql://db/hsi?user=app&password=hunter2", want: "postgresql://db/hsi?password=xxxxx&user=app", dsn: true},
		{name: "query without password untouched", in: "postgres://db/hsi?b=2&a=1", want: "postgres://db/hsi?b=2&a=1", dsn: true},
		{name: "redis", in: "redis://:topsecret@127.0.0.1:6379/0", want: "redis://:xxxxx@127.0.0.1:6379/0", dsn: true},
		{name: "keyword bare", in: "host=db user=app password=hunter2 dbname=hsi", want: "host=db user=app password=xxxxx dbname=hsi", dsn: true},
		{name: "keyword quoted", in: `host=db password='it\'s secret' dbname=hsi`, want: "host=db password=xxxxx dbname=hsi", dsn: true},
		{name: "keyword spaced", in: "host=db password = hunter2", want: "host=db password = xxxxx", dsn: true},
		{name: "unparsable dsn url", in: "postgres://app:pw@db:port/x%zz", want: unparsable, dsn: true},
		{name: "no secret", in: "host=db dbname=hsi", want: "host=db dbname=hsi", dsn: true},
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
			for _, secret := range []string{"s3cr", "hunter2", "topsecret", "secret'", ":pw@", ":b@", "token"} {
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
