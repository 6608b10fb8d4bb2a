package source

import (
	"testing"

	"github.com/sysperf/sysperf/pkg/metrics"
)

func TestApply(t *testing.T) {
	t.Run("a direct source's entries follow its reading", func(t *testing.T) {
		u := &metrics.Update{Errors: map[string]string{metrics.SectionRedis: "waiting for the first poll"}}
		Reading{Section: metrics.SectionRedis, Via: "redis", Up: true, Fill: func(u *metrics.Update) map[string]bool {
			n := int64(3)
			u.Databases.Redis.ConnectedClients = &n
			return nil
		}}.Apply(u)
		if *u.Databases.Redis.ConnectedClients != 3 || u.Sources[metrics.SectionRedis] != "redis" {
			t.Fatalf("redis %+v sources %v", u.Databases.Redis, u.Sources)
		}
		if why, ok := u.Errors[metrics.SectionRedis]; ok {
			t.Fatalf("errors[redis] = %q after an answer without a reason", why)
		}

		Reading{Section: metrics.SectionRedis, Via: "redis", Reason: "refused"}.Apply(u)
		if u.Errors[metrics.SectionRedis] != "refused" || u.Sources[metrics.SectionRedis] != "redis" {
			t.Fatalf("errors %v sources %v", u.Errors, u.Sources)
		}
	})

	t.Run("a fallback is credited with what it filled", func(t *testing.T) {
		u := &metrics.Update{
			Sources: map[string]string{metrics.SectionGPU: "none", metrics.SectionInference: "agents"},
			Errors:  map[string]string{metrics.SectionGPU: "no agent", metrics.SectionInference: "kept"},
		}
		Reading{Section: "prometheus", Up: true, Fill: func(*metrics.Update) map[string]bool {
			return map[string]bool{metrics.SectionGPU: true, metrics.SectionInference: false}
		}}.Apply(u)
		want := map[string]string{metrics.SectionGPU: "prometheus", metrics.SectionInference: "agents+prometheus"}
		for k, v := range want {
			if u.Sources[k] != v {
				t.Errorf("sources[%s] = %q, want %q", k, u.Sources[k], v)
			}
		}
		if _, ok := u.Sources["prometheus"]; ok {
			t.Error("a fallback got an entry of its own in sources")
		}
		if _, ok := u.Errors[metrics.SectionGPU]; ok || u.Errors[metrics.SectionInference] != "kept" || len(u.Errors) != 1 {
			t.Errorf("errors %v: want gpu's cleared (filled alone), inference's kept (completed)", u.Errors)
		}
	})
}
