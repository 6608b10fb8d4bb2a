package sources

import (
	"strings"
	"testing"
)

func TestRedactDSN(t *testing.T) {
	tests := []struct {
		name, dsn, want string
	}{
		{"url with password", "postgres://app:s3cr%40t@db:5432/hsi?sslmode=disable",
			"postgres://app:xxxxx@db:5432/hsi?sslmode=disable"},
		{"url without password", "postgres://app@db/hsi", "postgres://app@db/hsi"},
		{"url password in query", "postgresql://db/hsi?user=app&password=hunter2",
			"postgresql://db/hsi?password=xxxxx&user=app"},
		{"redis url", "redis://:topsecret@127.0.0.1:6379/0", "redis://:xxxxx@127.0.0.1:6379/0"},
		{"keyword bare", "host=db user=app password=hunter2 dbname=hsi",
			"host=db user=app password=xxxxx dbname=hsi"},
		{"keyword quoted", `host=db password='it\'s secret' dbname=hsi`,
			"host=db password=xxxxx dbname=hsi"},
		{"keyword spaced", "host=db password = hunter2", "host=db password = xxxxx"},
		{"unparseable url", "postgres://app:pw@db:port/x%zz", "xxxxx"},
		{"no secret", "host=db dbname=hsi", "host=db dbname=hsi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RedactDSN(tt.dsn)
			if got != tt.want {
				t.Fatalf("RedactDSN(%q) = %q, want %q", tt.dsn, got, tt.want)
			}
			for _, secret := range []string{"s3cr", "hunter2", "topsecret", "secret'", ":pw@"} {
				if strings.Contains(got, secret) {
					t.Fatalf("RedactDSN(%q) = %q still shows %q", tt.dsn, got, secret)
				}
			}
		})
	}
}

func TestRedactSecret(t *testing.T) {
	if got := redactSecret(`password "pw1" rejected for pw1`, "pw1"); got != `password "xxxxx" rejected for xxxxx` {
		t.Fatalf("got %q", got)
	}
	if got := redactSecret("nothing", ""); got != "nothing" {
		t.Fatalf("empty secret changed the text: %q", got)
	}
}
