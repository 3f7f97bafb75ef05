package admin

import (
	"slices"
	"testing"
)

// Consumers are listed with partition numbers in numeric order, the
// unpartitioned fan-out consumer first.
func TestCompareNames(t *testing.T) {
	got := []string{"pushnotify", "fanout-10", "history", "fanout-2", "fanout", "fanout-0", "audit-x"}
	slices.SortFunc(got, compareNames)
	want := []string{"audit-x", "fanout", "fanout-0", "fanout-2", "fanout-10", "history", "pushnotify"}
	if !slices.Equal(got, want) {
		t.Fatalf("sorted %v, want %v", got, want)
	}
}
