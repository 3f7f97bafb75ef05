package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// conversation appends n plain messages with seqs start, start+step, ... and
// returns them.
func conversation(t testing.TB, s history.Store, conv string, start, step uint64, n int) []*protocol.Message {
	t.Helper()
	var out []*protocol.Message
	for i := range n {
		out = append(out, msg(conv, start+uint64(i)*step, "u1"))
	}
	mustAppend(t, s, out...)
	return clones(out)
}

func clones(ms []*protocol.Message) []*protocol.Message {
	out := make([]*protocol.Message, len(ms))
	for i, m := range ms {
		out[i] = clone(m)
	}
	return out
}

// walkForward pages through conv with After and checks every page against
// want (ascending).
func walkForward(t testing.TB, s history.Store, conv string, want []*protocol.Message, limit int) {
	t.Helper()
	var cursor uint64
	for i := 0; ; i += limit {
		got, more := after(t, s, conv, cursor, limit)
		end := min(i+limit, len(want))
		samePage(t, fmt.Sprintf("%s After(%d,%d)", conv, cursor, limit), want[i:end], got)
		if wantMore := end < len(want); more != wantMore {
			t.Fatalf("%s After(%d,%d): more=%v, want %v", conv, cursor, limit, more, wantMore)
		}
		if !more {
			return
		}
		cursor = got[len(got)-1].Seq
	}
}

// walkBackward pages through conv with Before from the newest and checks
// every page against want (ascending).
func walkBackward(t testing.TB, s history.Store, conv string, want []*protocol.Message, limit int) {
	t.Helper()
	var cursor uint64 // 0: newest
	for end := len(want); ; end -= limit {
		got, more := before(t, s, conv, cursor, limit)
		start := max(end-limit, 0)
		samePage(t, fmt.Sprintf("%s Before(%d,%d)", conv, cursor, limit), want[start:end], got)
		if wantMore := start > 0; more != wantMore {
			t.Fatalf("%s Before(%d,%d): more=%v, want %v", conv, cursor, limit, more, wantMore)
		}
		if !more {
			return
		}
		cursor = got[0].Seq
	}
}

func testAfterPages(t *testing.T, s history.Store) {
	want := conversation(t, s, "c", 10, 2, 25) // seqs 10..58
	for _, limit := range []int{1, 7, 10, 24, 25, 26, 500} {
		walkForward(t, s, "c", want, limit)
	}
	cases := []struct {
		name  string
		after uint64
		limit int
		first int // index into want of the first row, len(want) for none
		more  bool
	}{
		{"zero", 0, 10, 0, true},
		{"below first", 9, 25, 0, false},
		{"in a gap", 11, 3, 1, true},
		{"on a row", 12, 3, 2, true},
		{"exactly the rest", 50, 4, 21, false},
		{"last", 58, 10, 25, false},
		{"beyond last", 1000, 10, 25, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, more := after(t, s, "c", tc.after, tc.limit)
			samePage(t, tc.name, want[tc.first:min(tc.first+tc.limit, len(want))], got)
			if more != tc.more {
				t.Errorf("more=%v, want %v", more, tc.more)
			}
		})
	}
}

func testBeforePages(t *testing.T, s history.Store) {
	want := conversation(t, s, "c", 10, 2, 25) // seqs 10..58
	for _, limit := range []int{1, 7, 10, 24, 25, 26, 500} {
		walkBackward(t, s, "c", want, limit)
	}
	cases := []struct {
		name   string
		before uint64
		limit  int
		end    int // index into want after the last row
		more   bool
	}{
		{"newest", 0, 5, 25, true},
		{"newest all", 0, 25, 25, false},
		{"above last", 1000, 5, 25, true},
		{"on last", 58, 5, 24, true},
		{"in a gap", 57, 5, 24, true},
		{"exactly the rest", 20, 5, 5, false},
		{"on first", 10, 5, 0, false},
		{"below first", 3, 5, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, more := before(t, s, "c", tc.before, tc.limit)
			samePage(t, tc.name, want[max(tc.end-tc.limit, 0):tc.end], got)
			if more != tc.more {
				t.Errorf("more=%v, want %v", more, tc.more)
			}
		})
	}
}

func testLimitOne(t *testing.T, s history.Store) {
	want := conversation(t, s, "c", 1, BucketSize, 5)
	walkForward(t, s, "c", want, 1)
	walkBackward(t, s, "c", want, 1)
}

// testSparseInterleaved spreads global seqs over many conversations at
// random, so each conversation's seqs have big gaps and cross many buckets.
func testSparseInterleaved(t *testing.T, s history.Store) {
	rng := rand.New(rand.NewPCG(1, 2))
	const convs = 12
	want := map[string][]*protocol.Message{}
	var batch []*protocol.Message
	seq := uint64(0)
	for range 1500 {
		seq += 1 + uint64(rng.IntN(5)) // other streams' subjects in between
		// A skewed choice: a few busy conversations, many quiet ones.
		c := fmt.Sprintf("conv-%d", min(rng.IntN(convs), rng.IntN(convs)))
		m := msg(c, seq, fmt.Sprintf("u%d", rng.IntN(3)))
		want[c] = append(want[c], clone(m))
		batch = append(batch, m)
		if len(batch) == 64 {
			mustAppend(t, s, batch...)
			batch = nil
		}
	}
	mustAppend(t, s, batch...)
	// One very quiet conversation: a row every few thousand seqs.
	for i := range 6 {
		m := msg("quiet", seq+uint64(i)*5003, "u1")
		want["quiet"] = append(want["quiet"], clone(m))
		mustAppend(t, s, m)
	}
	for c, ms := range want {
		for _, limit := range []int{1, 3, 50} {
			if limit == 1 && len(ms) > 200 {
				continue // enough covered by the other limits
			}
			walkForward(t, s, c, ms, limit)
			walkBackward(t, s, c, ms, limit)
		}
		if n := last(t, s, c); n != ms[len(ms)-1].Seq {
			t.Errorf("Last(%s) = %d, want %d", c, n, ms[len(ms)-1].Seq)
		}
		mid := ms[len(ms)/2].Seq
		if n, w := count(t, s, c, mid), uint64(len(ms)-len(ms)/2-1); n != w {
			t.Errorf("Count(%s, %d) = %d, want %d", c, mid, n, w)
		}
	}
}

// testBucketBoundaries puts rows on both sides of bucket edges and across
// huge gaps, including seqs far above 2^32.
func testBucketBoundaries(t *testing.T, s history.Store) {
	b := uint64(BucketSize)
	seqsIn := []uint64{1, b - 1, b, b + 1, 2*b - 1, 2 * b, 5*b + 3, 1 << 20, 1<<20 + 1, 1 << 33, 1<<33 + b, 1 << 40}
	var want []*protocol.Message
	for _, q := range seqsIn {
		want = append(want, msg("edge", q, "u1"))
	}
	// Append newest first: order of Append must not matter.
	rev := slices.Clone(want)
	slices.Reverse(rev)
	mustAppend(t, s, rev...)
	want = clones(want)
	for _, limit := range []int{1, 2, 3, 5, 100} {
		walkForward(t, s, "edge", want, limit)
		walkBackward(t, s, "edge", want, limit)
	}
	cases := []struct{ after, before uint64 }{{b - 1, b}, {b, b + 1}, {2*b - 1, 2 * b}, {1 << 20, 1<<20 + 1}}
	for _, tc := range cases {
		got, _ := after(t, s, "edge", tc.after, 1)
		if len(got) != 1 || got[0].Seq != tc.before {
			t.Errorf("After(%d, 1) = %v, want [%d]", tc.after, seqs(got), tc.before)
		}
		got, _ = before(t, s, "edge", tc.before, 1)
		if len(got) != 1 || got[0].Seq != tc.after {
			t.Errorf("Before(%d, 1) = %v, want [%d]", tc.before, seqs(got), tc.after)
		}
	}
	if n := last(t, s, "edge"); n != 1<<40 {
		t.Errorf("Last = %d, want %d", n, uint64(1)<<40)
	}
	if n := count(t, s, "edge", b); n != uint64(len(seqsIn)-3) {
		t.Errorf("Count(after %d) = %d, want %d", b, n, len(seqsIn)-3)
	}
}

func testConcurrentAppend(t *testing.T, s history.Store) {
	const writers, batches, per = 6, 20, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conv := fmt.Sprintf("w%d", w)
			for b := range batches {
				var batch []*protocol.Message
				for i := range per {
					// Seqs of all writers interleave in one global order.
					seq := uint64((b*per+i)*writers + w + 1)
					batch = append(batch, msg(conv, seq, "u1"))
				}
				if err := s.Append(context.Background(), batch); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range writers {
		conv := fmt.Sprintf("w%d", w)
		if n := count(t, s, conv, 0); n != batches*per {
			t.Errorf("Count(%s) = %d, want %d", conv, n, batches*per)
		}
		got, more := after(t, s, conv, 0, batches*per)
		if len(got) != batches*per || more {
			t.Errorf("After(%s) = %d rows, more=%v", conv, len(got), more)
		}
		if n, want := last(t, s, conv), uint64((batches*per-1)*writers+w+1); n != want {
			t.Errorf("Last(%s) = %d, want %d", conv, n, want)
		}
	}
}
