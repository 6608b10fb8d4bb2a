package server

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name, addr string
		status     int
		wantErr    string
	}{
		{"healthy", srv.Listener.Addr().String(), http.StatusOK, ""},
		{"unspecified host is loopback", "0.0.0.0:" + port, http.StatusOK, ""},
		{"empty host is loopback", ":" + port, http.StatusOK, ""},
		{"starting", srv.Listener.Addr().String(), http.StatusServiceUnavailable, "503"},
		{"nothing listening", deadAddr, http.StatusOK, "connection refused"},
		{"bad address", "nonsense", http.StatusOK, `http "nonsense"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status = tc.status
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err := Check(ctx, tc.addr, "")
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
