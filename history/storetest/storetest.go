// Package storetest is the conformance suite every history.Store must pass.
// A store's own test calls Run with a constructor; the suite builds a fresh
// store for each subtest, so stores need no cleanup between cases.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// BucketSize is the bucket size (in global seqs) a store that partitions by
// seq ranges should use under Run, so that pages cross many bucket
// boundaries. The suite's seqs are chosen around multiples of it.
const BucketSize = 16

// Run runs the whole suite against stores made by newStore. newStore is
// called once per subtest and must return an empty store; it should register
// its own cleanup (Close, removing files or keyspaces) with t.Cleanup.
// Stores that bucket by seq should be configured with BucketSize.
func Run(t *testing.T, newStore func(t *testing.T) history.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s history.Store)
	}{
		{"Empty", testEmpty},
		{"AppendIdempotent", testAppendIdempotent},
		{"Conflict", testConflict},
		{"AfterPages", testAfterPages},
		{"BeforePages", testBeforePages},
		{"LimitOne", testLimitOne},
		{"SparseInterleaved", testSparseInterleaved},
		{"BucketBoundaries", testBucketBoundaries},
		{"Edits", testEdits},
		{"Count", testCount},
		{"Last", testLast},
		{"BigBody", testBigBody},
		{"Unicode", testUnicode},
		{"ConcurrentAppend", testConcurrentAppend},
		{"ReplyFields", testReplyFields},
		{"Threads", testThreads},
		{"ThreadPages", testThreadPages},
		{"Expiry", testExpiry},
		{"Erase", testErase},
		{"Drop", testDrop},
		{"Rows", testRows},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			tc.run(t, s)
		})
	}
}

// msg returns a plain message with a body naming its seq.
func msg(conv string, seq uint64, sender string) *protocol.Message {
	return &protocol.Message{
		Conv:     conv,
		Seq:      seq,
		Sender:   sender,
		ClientID: fmt.Sprintf("c%d", seq),
		TS:       fmt.Sprintf("2026-01-02T03:04:%02d.%09dZ", seq%60, seq),
		Body:     []byte(fmt.Sprintf(`{"text":"m%d"}`, seq)),
	}
}

// event returns an edit, delete or reaction row aimed at ref.
func event(conv string, seq uint64, sender, kind string, ref uint64, body string) *protocol.Message {
	m := msg(conv, seq, sender)
	m.Kind, m.Ref, m.Body = kind, ref, []byte(body)
	return m
}

// clone copies m deeply, so expectations do not share bytes with what the
// store was given.
func clone(m *protocol.Message) *protocol.Message {
	c := *m
	c.Body = append([]byte(nil), m.Body...)
	return &c
}

func mustAppend(t testing.TB, s history.Store, msgs ...*protocol.Message) {
	t.Helper()
	if err := s.Append(context.Background(), msgs); err != nil {
		t.Fatalf("Append(%d rows): %v", len(msgs), err)
	}
}

func after(t testing.TB, s history.Store, conv string, seq uint64, limit int) ([]*protocol.Message, bool) {
	t.Helper()
	got, more, err := s.After(context.Background(), conv, seq, limit)
	if err != nil {
		t.Fatalf("After(%q, %d, %d): %v", conv, seq, limit, err)
	}
	checkPage(t, got, more, limit)
	return got, more
}

func before(t testing.TB, s history.Store, conv string, seq uint64, limit int) ([]*protocol.Message, bool) {
	t.Helper()
	got, more, err := s.Before(context.Background(), conv, seq, limit)
	if err != nil {
		t.Fatalf("Before(%q, %d, %d): %v", conv, seq, limit, err)
	}
	checkPage(t, got, more, limit)
	return got, more
}

func last(t testing.TB, s history.Store, conv string) uint64 {
	t.Helper()
	n, err := s.Last(context.Background(), conv)
	if err != nil {
		t.Fatalf("Last(%q): %v", conv, err)
	}
	return n
}

func count(t testing.TB, s history.Store, conv string, seq uint64) uint64 {
	t.Helper()
	n, err := s.Count(context.Background(), conv, seq)
	if err != nil {
		t.Fatalf("Count(%q, %d): %v", conv, seq, err)
	}
	return n
}

// checkPage holds for every page: at most limit rows, ascending, and a
// page that says more is never empty.
func checkPage(t testing.TB, got []*protocol.Message, more bool, limit int) {
	t.Helper()
	if len(got) > limit {
		t.Fatalf("page has %d rows, limit %d", len(got), limit)
	}
	if more && len(got) == 0 {
		t.Fatalf("empty page with more=true")
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].Seq >= got[i].Seq {
			t.Fatalf("page not ascending: seq %d before %d", got[i-1].Seq, got[i].Seq)
		}
	}
}

// diff describes how a stored row differs from the expected one, "" if it
// does not. Type is a frame field and not stored, so it is not compared;
// Body is compared byte for byte.
func diff(want, got *protocol.Message) string {
	switch {
	case got == nil:
		return "missing"
	case want.Conv != got.Conv, want.Seq != got.Seq:
		return fmt.Sprintf("key (%q,%d), want (%q,%d)", got.Conv, got.Seq, want.Conv, want.Seq)
	case want.Sender != got.Sender, want.ClientID != got.ClientID, want.TS != got.TS:
		return fmt.Sprintf("sender/client_id/ts %q/%q/%q, want %q/%q/%q",
			got.Sender, got.ClientID, got.TS, want.Sender, want.ClientID, want.TS)
	case want.Kind != got.Kind, want.Ref != got.Ref:
		return fmt.Sprintf("kind/ref %q/%d, want %q/%d", got.Kind, got.Ref, want.Kind, want.Ref)
	case !bytes.Equal(want.Body, got.Body):
		return fmt.Sprintf("body %s, want %s", clip(got.Body), clip(want.Body))
	case want.EditSeq != got.EditSeq, want.Deleted != got.Deleted, want.DeletedBy != got.DeletedBy:
		return fmt.Sprintf("edit_seq/deleted/deleted_by %d/%v/%q, want %d/%v/%q",
			got.EditSeq, got.Deleted, got.DeletedBy, want.EditSeq, want.Deleted, want.DeletedBy)
	case want.ReplyTo != got.ReplyTo, want.Thread != got.Thread, !slices.Equal(want.Mentions, got.Mentions):
		return fmt.Sprintf("reply_to/thread/mentions %d/%d/%q, want %d/%d/%q",
			got.ReplyTo, got.Thread, got.Mentions, want.ReplyTo, want.Thread, want.Mentions)
	case (want.Quote == nil) != (got.Quote == nil), want.Quote != nil && *want.Quote != *got.Quote:
		return fmt.Sprintf("quote %+v, want %+v", got.Quote, want.Quote)
	case want.ThreadCount != got.ThreadCount, want.ThreadLastSeq != got.ThreadLastSeq:
		return fmt.Sprintf("thread_count/thread_last_seq %d/%d, want %d/%d",
			got.ThreadCount, got.ThreadLastSeq, want.ThreadCount, want.ThreadLastSeq)
	}
	return ""
}

func clip(b []byte) string {
	if len(b) > 80 {
		return fmt.Sprintf("%q...(%d bytes)", b[:80], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// samePage fails unless got holds exactly want, in order.
func samePage(t testing.TB, what string, want, got []*protocol.Message) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%s: %d rows (%v), want %d (%v)", what, len(got), seqs(got), len(want), seqs(want))
	}
	for i := range want {
		if d := diff(want[i], got[i]); d != "" {
			t.Fatalf("%s: row %d (seq %d): %s", what, i, want[i].Seq, d)
		}
	}
}

func seqs(ms []*protocol.Message) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

// row returns the stored row (conv, seq), or nil.
func row(t testing.TB, s history.Store, conv string, seq uint64) *protocol.Message {
	t.Helper()
	got, _ := after(t, s, conv, seq-1, 1)
	if len(got) == 0 || got[0].Seq != seq {
		return nil
	}
	return got[0]
}

func testEmpty(t *testing.T, s history.Store) {
	for _, conv := range []string{"nobody", "x"} {
		if got, more := after(t, s, conv, 0, 50); len(got) != 0 || more {
			t.Errorf("After on %q: %d rows, more=%v", conv, len(got), more)
		}
		if got, more := before(t, s, conv, 0, 50); len(got) != 0 || more {
			t.Errorf("Before(0) on %q: %d rows, more=%v", conv, len(got), more)
		}
		if got, more := before(t, s, conv, 100, 50); len(got) != 0 || more {
			t.Errorf("Before(100) on %q: %d rows, more=%v", conv, len(got), more)
		}
		if n := last(t, s, conv); n != 0 {
			t.Errorf("Last(%q) = %d, want 0", conv, n)
		}
		if n := count(t, s, conv, 0); n != 0 {
			t.Errorf("Count(%q) = %d, want 0", conv, n)
		}
	}
	// A stored neighbour must not leak into an unknown conversation whose
	// name is its prefix or extension.
	mustAppend(t, s, msg("ab", 5, "u1"))
	for _, conv := range []string{"a", "abc", "b"} {
		if got, _ := after(t, s, conv, 0, 10); len(got) != 0 {
			t.Errorf("After on %q sees %v", conv, seqs(got))
		}
		if n := last(t, s, conv); n != 0 {
			t.Errorf("Last(%q) = %d, want 0", conv, n)
		}
	}
}

func testAppendIdempotent(t *testing.T, s history.Store) {
	var want []*protocol.Message
	var first, overlap []*protocol.Message
	for seq := uint64(1); seq <= 15; seq++ {
		m := msg("c", seq*3, "u1")
		want = append(want, clone(m))
		if seq <= 10 {
			first = append(first, m)
		}
		if seq >= 5 {
			overlap = append(overlap, clone(m))
		}
	}
	mustAppend(t, s, first...)
	mustAppend(t, s, first...) // the same batch again
	mustAppend(t, s, overlap...)
	mustAppend(t, s) // an empty batch is fine
	got, more := after(t, s, "c", 0, 100)
	samePage(t, "after re-appends", want, got)
	if more {
		t.Errorf("more=true on the whole conversation")
	}
	if n := count(t, s, "c", 0); n != 15 {
		t.Errorf("Count = %d, want 15", n)
	}
}

// testConflict checks that a seq offered again with other content fails
// Append with history.ErrConflict, stores nothing of the batch and changes
// nothing stored, while the same content stays a no-op.
func testConflict(t *testing.T, s history.Store) {
	orig := msg("c", 6, "u1")
	edited := msg("c", 7, "u1")
	mustAppend(t, s, orig, edited, event("c", 8, "u1", protocol.KindEdit, 7, editBody(8)))
	wantOrig := clone(orig)
	wantEdited := clone(edited)
	wantEdited.Body, wantEdited.EditSeq = []byte(editBody(8)), 8
	other := func(m *protocol.Message, change func(*protocol.Message)) *protocol.Message {
		c := clone(m)
		change(c)
		return c
	}
	cases := []struct {
		name  string
		batch []*protocol.Message
	}{
		{"other body", []*protocol.Message{other(orig, func(m *protocol.Message) { m.Body = []byte(`{"text":"rewritten"}`) })}},
		{"other sender", []*protocol.Message{other(orig, func(m *protocol.Message) { m.Sender = "u2" })}},
		{"other timestamp", []*protocol.Message{other(orig, func(m *protocol.Message) { m.TS = "2020-01-01T00:00:00Z" })}},
		{"other kind", []*protocol.Message{other(orig, func(m *protocol.Message) { m.Kind, m.Ref = protocol.KindReaction, 1 })}},
		{"other client id of an edited row", []*protocol.Message{other(edited, func(m *protocol.Message) { m.ClientID = "x" })}},
		{"with a new row", []*protocol.Message{msg("c", 20, "u1"), other(orig, func(m *protocol.Message) { m.Body = []byte(`{}`) })}},
		{"two copies in one batch", []*protocol.Message{msg("c", 30, "u1"), other(msg("c", 30, "u1"), func(m *protocol.Message) { m.Sender = "u3" })}},
	}
	for _, tc := range cases {
		err := s.Append(context.Background(), tc.batch)
		if !errors.Is(err, history.ErrConflict) {
			t.Errorf("%s: Append = %v, want ErrConflict", tc.name, err)
		}
	}
	got, _ := after(t, s, "c", 0, 100)
	samePage(t, "after the conflicts", []*protocol.Message{wantOrig, wantEdited, event("c", 8, "u1", protocol.KindEdit, 7, editBody(8))}, got)

	// The same content again, an edited row with its original body
	// included, is still a no-op.
	mustAppend(t, s, clone(orig), clone(edited))
	got, _ = after(t, s, "c", 0, 100)
	samePage(t, "after re-appending the same rows", []*protocol.Message{wantOrig, wantEdited, event("c", 8, "u1", protocol.KindEdit, 7, editBody(8))}, got)
}
