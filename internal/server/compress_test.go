package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawDial opens /ws/system?query on a plain TCP connection offering
// permessage-deflate, as a browser does, and returns the connection and
// its reader, past the upgrade.
func rawDial(t testing.TB, s *Server, query string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws/system?%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nAuthorization: %s\r\n\r\n",
		query, s.Addr(), signedIn().Get("Authorization"))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
		t.Fatalf("upgrade: %s, extensions %q", resp.Status, resp.Header.Get("Sec-WebSocket-Extensions"))
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br
}

// firstFrame opens /ws/system?query as rawDial does and returns the first
// frame's RSV1 bit (set: compressed) and payload length.
func firstFrame(t *testing.T, s *Server, query string) (compressed bool, size int) {
	t.Helper()
	conn, br := rawDial(t, s, query)
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	h0, payload := readFrame(t, br)
	return h0&0x40 != 0, len(payload)
}

// readFrame reads one frame the server sent (unmasked): its first byte
// (FIN, RSV1–3, opcode) and its payload.
func readFrame(t *testing.T, br *bufio.Reader) (h0 byte, payload []byte) {
	t.Helper()
	h := make([]byte, 2)
	if _, err := io.ReadFull(br, h); err != nil {
		t.Fatal(err)
	}
	size := int(h[1] & 0x7f)
	switch size {
	case 126, 127:
		ext := make([]byte, map[int]int{126: 2, 127: 8}[size])
		if _, err := io.ReadFull(br, ext); err != nil {
			t.Fatal(err)
		}
		size = 0
		for _, b := range ext {
			size = size<<8 | int(b)
		}
	}
	payload = make([]byte, size)
	if _, err := io.ReadFull(br, payload); err != nil {
		t.Fatal(err)
	}
	return h[0], payload
}

// TestCompressOnlyBig: a host view goes as it is, even to a client that
// offers compression (each client's copy would be compressed on its own,
// CPU per browser per tick); a message of compressFrom bytes or more, the
// whole update of a large site here, is compressed.
func TestCompressOnlyBig(t *testing.T) {
	s := start(t, Config{})
	hosts := make([]string, 40)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("gpu%02d", i)
	}
	full := publishSite(t, s, site(time.Now().UTC(), 8, hosts...))
	if len(full) < compressFrom {
		t.Fatalf("the whole update is %d bytes, want ≥ %d for this test", len(full), compressFrom)
	}
	if compressed, size := firstFrame(t, s, "view=host&host=gpu01"); compressed || size >= compressFrom {
		t.Fatalf("host view: compressed %v, %d bytes; want it as it is", compressed, size)
	}
	if compressed, size := firstFrame(t, s, "view=all"); !compressed || size >= len(full)/2 {
		t.Fatalf("whole update of %d bytes: compressed %v, %d bytes; want it compressed", len(full), compressed, size)
	}
}
