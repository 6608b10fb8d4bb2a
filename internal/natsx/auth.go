package natsx

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
)

// InboxPrefix is the prefix of host's reply inboxes (nats.CustomInboxPrefix).
// An agent's credential may subscribe below it only, so JetStream's
// publish acks reach the agent and nothing else does, and no other
// credential can read them.
func InboxPrefix(host string) string { return "_INBOX." + host }

// Auth is how a client proves who it is to NATS and checks the server.
type Auth struct {
	// Creds is a credentials file: the NKey seed file `hub agent add`
	// writes, or a .creds file (user JWT and seed) of an operator-mode
	// cluster. Empty: no credential.
	Creds string
	// CA verifies the server's certificate; Cert and Key are the client's
	// certificate for a server that asks for one.
	CA, Cert, Key string
}

// Options are the nats.go options for a. Files are read now, so a missing
// or unreadable one fails start-up with an error naming the setting; the
// error never holds a file's content.
func (a Auth) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if a.Creds != "" {
		b, err := os.ReadFile(a.Creds)
		if err != nil {
			return nil, fmt.Errorf("nats-creds: %w", err)
		}
		if bytes.Contains(b, []byte("BEGIN NATS USER JWT")) {
			opts = append(opts, nats.UserCredentials(a.Creds))
		} else {
			o, err := nats.NkeyOptionFromSeed(a.Creds)
			clear(b)
			if err != nil {
				return nil, fmt.Errorf("nats-creds %s: no NKey seed or user JWT in it: %w", a.Creds, err)
			}
			opts = append(opts, o)
		}
	}
	if a.CA != "" {
		if _, err := os.Stat(a.CA); err != nil {
			return nil, fmt.Errorf("nats-ca: %w", err)
		}
		opts = append(opts, nats.RootCAs(a.CA))
	}
	if (a.Cert == "") != (a.Key == "") {
		return nil, errors.New("nats-cert and nats-key: give both or neither")
	}
	if a.Cert != "" {
		opts = append(opts, nats.ClientCert(a.Cert, a.Key))
	}
	return opts, nil
}
