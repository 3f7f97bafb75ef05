//go:build race

package gateway

// raceEnabled: the race detector doubles the runtime's stack guard, so
// every goroutine's stack grows past the smallest size at once.
const raceEnabled = true
