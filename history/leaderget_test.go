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

// lastBehindStream answers direct gets of a subject's last message as a
// replica that has stored nothing from seq from on yet.
type lastBehindStream struct {
	jetstream.Stream
	from uint64
}

func (b lastBehindStream) GetLastMsgForSubject(ctx context.Context, subj string) (*jetstream.RawStreamMsg, error) {
	for seq := b.from - 1; seq > 0; seq-- {
		m, err := b.Stream.GetMsg(ctx, seq)
		if err == nil && m.Subject == subj {
			return m, nil
		}
	}
	return nil, jetstream.ErrMsgNotFound
}

// What clients are shown as last_seq, and what their read and delivered
// markers are clamped to, counts a message acknowledged a moment ago
// although the replica answering direct gets is behind: Reader.Last asks
// the stream's leader (on a 3-node cluster a read of the message just
// received was clamped to the seq before it, and after a reconnect the
// user's read_seq was 0). Stream.Last, the direct get, answers as the
// replica does; Reader.Last takes the stream's side from LeaderLast.
func TestLastCountsWhatTheLeaderAcknowledged(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	var acks []uint64
	for range 2 {
		ack, err := js.Publish(ctx, schema.Msg("c"), []byte(`{"sender":"u1","client_id":"x","body":{"text":"hi"}}`))
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, ack.Sequence)
	}
	st, err := NewStream(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	p := st.part("c")
	p.stream = lastBehindStream{Stream: p.stream, from: acks[1]}
	if got, err := st.Last(ctx, "c"); err != nil || got != acks[0] {
		t.Fatalf("the behind replica's last: %d, %v, want %d", got, err, acks[0])
	}
	if got, err := st.LeaderLast(ctx, "c"); err != nil || got != acks[1] {
		t.Fatalf("LeaderLast %d, %v, want %d", got, err, acks[1])
	}
	if got, err := st.LeaderLast(ctx, "none"); err != nil || got != 0 {
		t.Fatalf("LeaderLast of a conversation without messages: %d, %v", got, err)
	}
}
