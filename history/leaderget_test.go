package history

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// behindStream is a message stream whose direct gets are answered by a
// replica that has not stored anything from seq from on yet.
type behindStream struct {
	jetstream.Stream
	from uint64
}

func (b behindStream) GetMsg(ctx context.Context, seq uint64, opts ...jetstream.GetMsgOpt) (*jetstream.RawStreamMsg, error) {
	if seq >= b.from {
		return nil, jetstream.ErrMsgNotFound
	}
	return b.Stream.GetMsg(ctx, seq, opts...)
}

// A message just acknowledged is found by Get although the replica that
// answers the direct get is behind: the leader is asked (an edit of a
// message right after its send was refused as not found on a 3-node
// cluster, NATTER_E2E_TOPOLOGY=cluster3x4). A seq the stream does not
// have, or of another conversation, stays not found.
func TestStreamGetAsksTheLeaderPastABehindReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, schema.Msg("c"), []byte(`{"sender":"u1","client_id":"x","body":{"text":"hi"}}`))
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewStream(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	p := st.part("c")
	p.stream = behindStream{Stream: p.stream, from: ack.Sequence}
	m, err := st.Get(ctx, "c", ack.Sequence)
	if err != nil || m.Seq != ack.Sequence || m.Sender != "u1" || string(m.Body) != `{"text":"hi"}` || m.TS == "" {
		t.Fatalf("Get of the acknowledged seq %d = %+v, %v", ack.Sequence, m, err)
	}
	if _, err := st.Get(ctx, "other", ack.Sequence); err != ErrNotFound {
		t.Fatalf("Get of another conversation's seq: %v", err)
	}
	if _, err := st.Get(ctx, "c", ack.Sequence+1); err != ErrNotFound {
		t.Fatalf("Get of a seq not stored: %v", err)
	}
}
