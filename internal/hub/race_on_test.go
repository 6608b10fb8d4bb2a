//go:build race

package hub

// raceDetector: the race detector's shadow memory is resident and never
// returned, so the process's RSS says nothing about the hub's.
const raceDetector = true
