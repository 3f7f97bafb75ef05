package gateway

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBucket(200, 100, t0)
	for i := range 200 {
		if !b.allow(t0) {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	if b.allow(t0) {
		t.Fatal("request past the burst allowed")
	}
	if b.denied != 1 {
		t.Fatalf("denied = %d", b.denied)
	}
	// 100/s sustained: one token every 10 ms.
	t1 := t0.Add(time.Second)
	n := 0
	for b.allow(t1) {
		n++
	}
	if n != 100 {
		t.Fatalf("after 1 s, %d tokens, want 100", n)
	}
	// Never more than the burst, however long the pause.
	t2 := t1.Add(time.Hour)
	n = 0
	for b.allow(t2) {
		n++
	}
	if n != 200 {
		t.Fatalf("after an hour, %d tokens, want 200", n)
	}
}
