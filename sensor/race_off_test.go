//go:build !race

package sensor

// raceEnabled: the race detector slows the engine about tenfold, so load tests scale down.
const raceEnabled = false
