package fanout

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/protocol"
)

// Messages is what the fan-out reads of a conversation's history: its
// newest seq, for conversation pushes, and the item before a seq, for a
// push's prev when the fan-out does not remember it. history.Pages is one.
type Messages interface {
	Last(ctx context.Context, conv string) (uint64, error)
	Before(ctx context.Context, conv string, before uint64, limit int) ([]*protocol.Message, bool, error)
}

// prevs remembers, per conversation, the seq of the last message item the
// fan-out handled, which is the prev of the conversation's next item. A
// consume loop (one per partition) is serial and in stream order, so while
// it gets every delivery of its consumer one after the other (consecutive
// consumer seqs under one pin, each a first delivery) nothing of its
// conversations can have come between. Any other step (a worker that just
// started or got the pin back, a redelivery, a rewind, which restarts the
// consumer seqs at 1) forgets everything: an entry is then re-read from
// the history, the same pages' prev comes from, so the two cannot
// disagree.
type prevs struct {
	msgs Messages
	size int
	last map[string]uint64
	next uint64 // the consumer seq expected next; 0 before the first
	pin  string // the pin the deliveries came under
}

func newPrevs(msgs Messages, size int) *prevs {
	return &prevs{msgs: msgs, size: size, last: make(map[string]uint64)}
}

// saw records the delivery the consume loop is at, made under pin.
func (p *prevs) saw(meta *jetstream.MsgMetadata, pin string) {
	if meta.Sequence.Consumer != p.next || meta.NumDelivered != 1 || pin != p.pin {
		clear(p.last)
	}
	p.next, p.pin = meta.Sequence.Consumer+1, pin
}

// PrevOfer is a Messages that can tell the seq of a conversation's newest
// item below a seq without reading a page (history.Reader: the prev its
// After pages start with). The fan-out asks it instead of a Before page of
// one: a page reads the store's watermark, the stream's newest message and
// a widening window of the stream below seq, several batch direct gets of
// which each makes the server count the subject's messages to the end of
// the stream, about a millisecond of server CPU per conversation with
// 1,000 busy ones (issue 19); PrevOf is one direct get of the subject's
// last message below seq.
type PrevOfer interface {
	PrevOf(ctx context.Context, conv string, seq uint64) (uint64, error)
}

// lookUp reads the prev of conv's item seq from the history.
func (p *prevs) lookUp(ctx context.Context, conv string, seq uint64) (uint64, error) {
	if po, ok := p.msgs.(PrevOfer); ok {
		return po.PrevOf(ctx, conv, seq)
	}
	older, _, err := p.msgs.Before(ctx, conv, seq, 1)
	if err != nil || len(older) == 0 {
		return 0, err
	}
	return older[0].Seq, nil
}

// of returns the prev of conv's item seq and remembers seq as conv's last.
// A failed look-up forgets conv, so a retry looks again.
func (p *prevs) of(ctx context.Context, conv string, seq uint64) (uint64, error) {
	prev, ok := p.last[conv]
	if !ok || prev >= seq {
		var err error
		if prev, err = p.lookUp(ctx, conv, seq); err != nil {
			delete(p.last, conv)
			return 0, fmt.Errorf("prev of %s/%d: %w", conv, seq, err)
		}
	}
	if _, ok := p.last[conv]; !ok && len(p.last) >= p.size {
		// Bounded like the member cache: an arbitrary tenth goes.
		n := max(p.size/10, 1)
		for k := range p.last {
			if n == 0 {
				break
			}
			delete(p.last, k)
			n--
		}
	}
	p.last[conv] = seq
	return prev, nil
}
