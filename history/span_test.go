package history

import (
	"context"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// TestStreamSpan checks the counts storeLacks relies on: every message of
// the conversation in (from, upTo], an invalid envelope included, none of
// another conversation's, and the seq of the first.
func TestStreamSpan(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	var mine []uint64
	for i := range 30 {
		conv, data := "c", `{"sender":"u1","client_id":"x","body":{}}`
		switch {
		case i%3 == 0:
			conv = "other"
		case i == 10:
			data = `not an envelope`
		}
		ack, err := js.Publish(ctx, schema.Msg(conv), []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		if conv == "c" {
			mine = append(mine, ack.Sequence)
		}
	}
	st, err := NewStream(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, upTo uint64 }{{0, 30}, {0, 1}, {2, 3}, {3, 11}, {11, 29}, {29, 30}, {30, 40}, {5, 5}} {
		var want, wantFirst uint64
		for _, seq := range mine {
			if seq > tc.from && seq <= tc.upTo {
				if want++; wantFirst == 0 {
					wantFirst = seq
				}
			}
		}
		n, first, ok, err := st.span(ctx, "c", tc.from, tc.upTo)
		if err != nil || !ok || n != want || first != wantFirst {
			t.Errorf("span(%d, %d) = %d, first %d, ok %v, %v; want %d, first %d", tc.from, tc.upTo, n, first, ok, err, want, wantFirst)
		}
	}
}
