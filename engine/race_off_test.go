//go:build !race

package engine

// raceEnabled: the race detector slows the engine about thirtyfold; the single-goroutine load
// tests it finds nothing in run without it (make test runs them so).
const raceEnabled = false
