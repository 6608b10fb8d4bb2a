//go:build !race

package hub

// raceDetector: see race_on_test.go.
const raceDetector = false
