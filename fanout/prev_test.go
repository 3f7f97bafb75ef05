package fanout

import (
	"context"
	"testing"

	"github.com/natter-chat/natter/protocol"
)

// pagesOnly is a Messages that can only read pages.
type pagesOnly struct{ befores int }

func (m *pagesOnly) Last(context.Context, string) (uint64, error) { return 0, nil }
func (m *pagesOnly) Before(_ context.Context, _ string, before uint64, _ int) ([]*protocol.Message, bool, error) {
	m.befores++
	return []*protocol.Message{{Seq: before - 2}}, true, nil
}

// withPrevOf also tells a prev without a page.
type withPrevOf struct {
	pagesOnly
	prevOfs int
}

func (m *withPrevOf) PrevOf(_ context.Context, _ string, seq uint64) (uint64, error) {
	m.prevOfs++
	return seq - 2, nil
}

// The prev of a conversation the fan-out does not remember comes from
// PrevOf when the history has it (one direct get of the stream, where a
// Before page of one costs several batch reads), from a Before page of
// one otherwise; either way the same seq, and remembered after.
func TestPrevsLookUp(t *testing.T) {
	ctx := t.Context()
	both := &withPrevOf{}
	p := newPrevs(both, 10)
	if prev, err := p.of(ctx, "c", 10); err != nil || prev != 8 {
		t.Fatalf("of(c, 10) = %d, %v, want 8", prev, err)
	}
	if prev, err := p.of(ctx, "c", 12); err != nil || prev != 10 {
		t.Fatalf("of(c, 12) = %d, %v, want 10 (remembered)", prev, err)
	}
	if both.prevOfs != 1 || both.befores != 0 {
		t.Fatalf("%d PrevOf, %d Before look-ups, want 1 and 0", both.prevOfs, both.befores)
	}
	pages := &pagesOnly{}
	p = newPrevs(pages, 10)
	if prev, err := p.of(ctx, "c", 10); err != nil || prev != 8 {
		t.Fatalf("of(c, 10) from a page = %d, %v, want 8", prev, err)
	}
	if pages.befores != 1 {
		t.Fatalf("%d Before look-ups, want 1", pages.befores)
	}
}
