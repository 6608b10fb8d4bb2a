package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
)

// Check asks the hub listening on addr (its --http setting) for /healthz
// and returns nil when it serves updates. It is the container health check:
// distroless images have no curl. An unspecified listen host (0.0.0.0,
// [::], "") is reached on loopback. certFile, the hub's --http-tls-cert,
// makes it HTTPS.
func Check(ctx context.Context, addr, certFile string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("http %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme, client := "http", http.DefaultClient
	if certFile != "" {
		tr, err := pinned(certFile)
		if err != nil {
			return err
		}
		scheme, client = "https", &http.Client{Transport: tr}
	}
	url := scheme + "://" + net.JoinHostPort(host, port) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err // a *url.Error: it names the method and the URL
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// pinned is a transport that trusts exactly the certificate in certFile:
// the hub's own, which need not name the loopback address it is checked
// on.
func pinned(certFile string) (*http.Transport, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("http-tls-cert: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("http-tls-cert %s: no PEM certificate in it", certFile)
	}
	want := block.Bytes
	return &http.Transport{TLSClientConfig: &tls.Config{
		// The chain is not verified by name; the leaf must be the file's.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], want) {
				return errors.New("the server's certificate is not the one in " + certFile)
			}
			return nil
		},
	}}, nil
}
