package natsx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuthOptionsNameTheBadSetting(t *testing.T) {
	for _, tc := range []struct {
		auth Auth
		want string
	}{
		{Auth{Creds: "/nonexistent/creds"}, "nats-creds"},
		{Auth{CA: "/nonexistent/ca"}, "nats-ca"},
		{Auth{Cert: "x"}, "nats-cert and nats-key"},
	} {
		if _, err := tc.auth.Options(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", tc.auth, err, tc.want)
		}
	}
	junk := filepath.Join(t.TempDir(), "junk.creds")
	if err := os.WriteFile(junk, []byte("SUPERSECRETnotaseed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Auth{Creds: junk}.Options()
	if err == nil || strings.Contains(err.Error(), "SUPERSECRET") {
		t.Fatalf("junk credentials file: %v (want an error without its content)", err)
	}
}
