//go:build race

package service_test

// raceDetector: the race detector slows the Go side several times, so
// throughput checks scale down and skip their time bounds.
const raceDetector = true
