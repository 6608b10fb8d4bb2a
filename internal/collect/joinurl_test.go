package collect

import "testing"

// A model URL with a query (an access token a proxy wants) keeps it, and
// the endpoint goes into the path, not after the query.
func TestJoinURLKeepsQuery(t *testing.T) {
	tests := []struct{ base, path, want string }{
		{"http://127.0.0.1:8090", "/health", "http://127.0.0.1:8090/health"},
		{"http://127.0.0.1:8090/", "/metrics", "http://127.0.0.1:8090/metrics"},
		{"http://h/det?token=t&x=1", "/metrics", "http://h/det/metrics?token=t&x=1"},
		{"http://h:8091/llm/?api_key=k", "/slots", "http://h:8091/llm/slots?api_key=k"},
		{"http://u:p@h/v1", "/props", "http://u:p@h/v1/props"},
	}
	for _, tc := range tests {
		if got := joinURL(tc.base, tc.path); got != tc.want {
			t.Errorf("joinURL(%q, %q) = %q, want %q", tc.base, tc.path, got, tc.want)
		}
	}
	targets := DefaultScrapeTargets("http://h/det?token=t", "")
	if len(targets) != 1 || targets[0].URL != "http://h/det/metrics?token=t" {
		t.Errorf("scrape target of a model URL with a query: %+v", targets)
	}
}
