package lograte

import (
	"strconv"
	"testing"
	"time"
)

func TestAllow(t *testing.T) {
	l := Limiter{Every: 10 * time.Second}
	t0 := time.Unix(1000, 0)
	if ok, held := l.Allow("a", t0); !ok || held != 0 {
		t.Fatalf("first event: %v, %d held; want it through", ok, held)
	}
	for i := range 5 {
		if ok, _ := l.Allow("a", t0.Add(time.Duration(i+1)*time.Second)); ok {
			t.Fatalf("event %d within the interval let through", i)
		}
	}
	if ok, _ := l.Allow("b", t0.Add(time.Second)); !ok {
		t.Fatal("another key's first event held back")
	}
	if ok, held := l.Allow("a", t0.Add(10*time.Second)); !ok || held != 5 {
		t.Fatalf("event after the interval: %v, %d held; want through, 5 held", ok, held)
	}
	if ok, held := l.Allow("a", t0.Add(20*time.Second)); !ok || held != 0 {
		t.Fatalf("next interval: %v, %d held; want through, 0 held", ok, held)
	}
}

// TestAllowBounded: distinct keys past the bound start the table over
// instead of growing it.
func TestAllowBounded(t *testing.T) {
	l := Limiter{Every: time.Hour}
	now := time.Unix(1000, 0)
	for i := range 3 * maxKeys {
		if ok, _ := l.Allow(strconv.Itoa(i), now); !ok {
			t.Fatalf("key %d's first event held back", i)
		}
	}
	if n := len(l.last); n > maxKeys+1 {
		t.Fatalf("%d keys remembered, at most %d", n, maxKeys+1)
	}
}

func TestZeroLetsAllThrough(t *testing.T) {
	var l Limiter
	now := time.Unix(1000, 0)
	for range 3 {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatal("zero Limiter held an event back")
		}
	}
}
