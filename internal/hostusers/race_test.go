//go:build race

package hostusers

// raceEnabled is true when the tests run with the race detector, whose
// instrumentation changes the relative cost of the code being timed.
const raceEnabled = true
