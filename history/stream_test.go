package history_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// TestStreamReadsWhatGetBatchReads checks the Stream's own batch direct
// gets against jetstreamext.GetBatch, which it replaced: the same rows,
// the stream's time for an envelope without ts, invalid envelopes
// skipped, other conversations' messages and stored headers in between,
// pages across several batches, and a read with nothing to read.
func TestStreamReadsWhatGetBatchReads(t *testing.T) {
	e := newEnv(t)
	for i := range 700 {
		var data []byte
		switch {
		case i%7 == 3:
			data = []byte(`{"sender":"u1","client_id":"x","body":"not an object"}`)
		case i%5 == 1:
			data = fmt.Appendf(nil, `{"sender":"u1","client_id":"c%d","body":{"text":"no ts <%d>"}}`, i, i)
		default:
			data = fmt.Appendf(nil, `{"sender":"u2","client_id":"c%d","ts":"2026-01-02T03:04:05Z","kind":"reaction","ref":1,"body": {"e" : "\u2028"}}`, i)
		}
		conv := "g1"
		if i%3 == 2 {
			conv = "g2"
		}
		msg := &nats.Msg{Subject: schema.Msg(conv), Data: data, Header: nats.Header{}}
		if i%2 == 0 {
			msg.Header.Set(schema.HeaderMsgID, fmt.Sprint("id-", i))
			msg.Header.Set(schema.HeaderOrigin, "s1")
		}
		if _, err := e.js.PublishMsg(ctxT(t), msg); err != nil {
			t.Fatal(err)
		}
	}
	// want is g1's rows after seq as the reader decoded them before, read
	// under the subject the stream stores them.
	l, err := schema.ReadLayout(ctxT(t), e.js)
	if err != nil {
		t.Fatal(err)
	}
	want := func(after uint64) []*protocol.Message {
		it, err := jetstreamext.GetBatch(ctxT(t), e.js, schema.StreamChat, 1000,
			jetstreamext.GetBatchSeq(after+1), jetstreamext.GetBatchSubject(l.StoredMsg("g1")))
		if err != nil {
			t.Fatal(err)
		}
		var out []*protocol.Message
		for raw, err := range it {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if env, err := protocol.DecodeEnvelope(raw.Data); err == nil {
				out = append(out, env.Message("g1", raw.Sequence, protocol.FormatTime(raw.Time)))
			}
		}
		return out
	}
	st := mustStream(t, e)
	all := want(0)
	if len(all) < 300 {
		t.Fatalf("only %d rows to compare", len(all))
	}
	for _, tc := range []struct {
		after uint64
		limit int
	}{{0, 500}, {0, 10}, {all[100].Seq, 300}, {all[len(all)-2].Seq, 50}, {all[len(all)-1].Seq, 50}} {
		got, more, err := st.After(ctxT(t), "g1", tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		exp := want(tc.after)
		wantMore := len(exp) > tc.limit
		if wantMore {
			exp = exp[:tc.limit]
		}
		if len(got) == 0 && len(exp) == 0 && !more {
			continue
		}
		if !reflect.DeepEqual(got, exp) || more != wantMore {
			t.Fatalf("After(%d, %d): %d rows more=%v, want %d more=%v", tc.after, tc.limit, len(got), more, len(exp), wantMore)
		}
	}
	before, more, err := st.Before(ctxT(t), "g1", 0, 20)
	if err != nil || !more || !reflect.DeepEqual(before, all[len(all)-20:]) {
		t.Fatalf("Before(0, 20): %d rows, more=%v, %v", len(before), more, err)
	}
	if n, err := st.CountAfter(ctxT(t), "g1", 0, 10_000); err != nil || n == 0 {
		t.Fatalf("CountAfter: %d, %v", n, err)
	}
	if rows, more, err := st.After(ctxT(t), "nobody", 0, 50); err != nil || len(rows) != 0 || more {
		t.Fatalf("After of an empty conversation: %d rows, more %v, %v", len(rows), more, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := st.After(ctx, "g1", 0, 50); !errors.Is(err, context.Canceled) {
		t.Fatalf("After with a cancelled context: %v", err)
	}
}
