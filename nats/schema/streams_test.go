package schema_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// The partition Layout computes equals the server's partition() mapping
// (the account mapping of Mappings), for many ids of every length and
// alphabet an id may have, and for every N.
func TestPartitionEqualsServerMapping(t *testing.T) {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
	r := rand.New(rand.NewPCG(1, 2))
	ids := []string{"a", "dm_alice_bob", "g-0"}
	for range 20_000 {
		b := make([]byte, 1+r.IntN(64))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		ids = append(ids, string(b))
	}
	for _, n := range []int{2, 3, 4, 7, 16, schema.MaxStreams} {
		m := schema.Mappings(n)
		tr, err := server.NewSubjectTransform(schema.MsgWildcard, m[schema.MsgWildcard])
		if err != nil {
			t.Fatal(err)
		}
		l := schema.Layout{Partitions: n, Streams: n}
		used := map[string]bool{}
		for _, id := range ids {
			got, err := tr.Match(schema.Msg(id))
			if err != nil {
				t.Fatal(err)
			}
			if want := l.StoredMsg(id); got != want {
				t.Fatalf("N=%d: the server maps %s to %s, Layout says %s", n, schema.Msg(id), got, want)
			}
			if want := schema.PartitionStream(l.Partition(id)); l.StreamOf(id) != want {
				t.Fatalf("N=%d: StreamOf(%s) = %s, want %s", n, id, l.StreamOf(id), want)
			}
			used[l.StreamOf(id)] = true
		}
		if len(used) != n {
			t.Errorf("N=%d: %d ids used %d streams", n, len(ids), len(used))
		}
	}
}

// StreamOf allocates nothing: the send path calls it per message.
func TestStreamOfAllocatesNothing(t *testing.T) {
	l := schema.Layout{Partitions: 4, Streams: 4}
	conv := "dm_alice_bob"
	if n := testing.AllocsPerRun(1000, func() { _ = l.StreamOf(conv); _ = l.Partition(conv) }); n != 0 {
		t.Fatalf("StreamOf allocates %v times", n)
	}
}

// A schema of 4 streams on a server with the mapping: publishes to
// chat.msg.<conv> and chat.member.<conv> are stored in the stream StreamOf
// names, under StoredMsg and StoredMember, each stream has its partition's
// fan-out consumer and every other consumer; the layout is recorded and
// read back, and changing N either way is refused.
func TestStreamsEnsure(t *testing.T) {
	const n = 4
	s := natstest.StartStreams(t, n)
	_, js := natstest.Connect(t, s)
	ctx := t.Context()
	if err := schema.Ensure(ctx, js, schema.Config{Streams: n}); err != nil {
		t.Fatal(err)
	}
	l, err := schema.ReadLayout(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if l != (schema.Layout{Partitions: n, Streams: n}) {
		t.Fatalf("layout %+v", l)
	}
	if _, err := js.Stream(ctx, schema.StreamChat); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("a split schema has CHAT too: %v", err)
	}
	for p, name := range l.ChatStreams() {
		if name != "CHAT_"+strconv.Itoa(p) {
			t.Fatalf("stream %d is %s", p, name)
		}
		for _, c := range []string{schema.ConsumerFanoutPartition(p), schema.ConsumerHistory, schema.ConsumerPush, schema.ConsumerSearch, schema.ConsumerServiceEvents} {
			if _, err := js.Consumer(ctx, name, c); err != nil {
				t.Fatalf("consumer %s on %s: %v", c, name, err)
			}
		}
		if _, err := js.Consumer(ctx, name, schema.ConsumerFanoutPartition((p+1)%n)); !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Fatalf("%s has another partition's fan-out consumer: %v", name, err)
		}
	}
	seqs := map[string]uint64{}
	for i := range 100 {
		conv := fmt.Sprintf("conv-%d", i)
		for _, pub := range []struct{ subj, want string }{
			{schema.Msg(conv), l.StoredMsg(conv)},
			{schema.Member(conv), l.StoredMember(conv)},
		} {
			ack, err := js.Publish(ctx, pub.subj, []byte(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			if ack.Stream != l.StreamOf(conv) {
				t.Fatalf("%s stored in %s, StreamOf says %s", pub.subj, ack.Stream, l.StreamOf(conv))
			}
			if ack.Sequence != seqs[ack.Stream]+1 {
				t.Fatalf("%s: seq %d after %d in %s", pub.subj, ack.Sequence, seqs[ack.Stream], ack.Stream)
			}
			seqs[ack.Stream] = ack.Sequence
			st, err := js.Stream(ctx, ack.Stream)
			if err != nil {
				t.Fatal(err)
			}
			m, err := st.GetMsg(ctx, ack.Sequence)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != pub.want || schema.ConvFromSubject(m.Subject) != conv {
				t.Fatalf("%s stored as %s, Layout says %s", pub.subj, m.Subject, pub.want)
			}
		}
	}
	if len(seqs) != n {
		t.Fatalf("100 conversations used %d streams", len(seqs))
	}
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatalf("ensure again keeping N: %v", err)
	}
	for _, c := range []schema.Config{{Streams: 2}, {Streams: 1}, {Partitions: 8}} {
		if err := schema.Ensure(ctx, js, c); !errors.Is(err, schema.ErrRepartition) {
			t.Fatalf("ensure %+v = %v, want ErrRepartition", c, err)
		}
	}
	if r, err := schema.AutoReplicas(ctx, js); err != nil || r != 1 {
		t.Fatalf("AutoReplicas = %d, %v", r, err)
	}
}

// A schema with the one CHAT stream is never split by a later ensure.
func TestStreamsRefusedOnChat(t *testing.T) {
	s := natstest.StartStreams(t, 4)
	_, js := natstest.Connect(t, s)
	ctx := t.Context()
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	if err := schema.Ensure(ctx, js, schema.Config{Streams: 4}); !errors.Is(err, schema.ErrRepartition) {
		t.Fatalf("ensure 4 streams over CHAT = %v", err)
	}
	if l, err := schema.ReadLayout(ctx, js); err != nil || l.Split() || l.ChatStreams()[0] != schema.StreamChat {
		t.Fatalf("layout %+v, %v", l, err)
	}
}

// Dead letters of two partition streams' messages with the same seq are
// two letters: their Nats-Msg-Id names the stored subject too.
func TestDeadLetterIDsPerStream(t *testing.T) {
	l := schema.Layout{Partitions: 4, Streams: 4}
	a := schema.DeadLetter("a", 7, l.StoredMsg("a"), "bad", nil)
	b := schema.DeadLetter("b", 7, l.StoredMsg("b"), "bad", nil)
	if a.Header.Get(schema.HeaderMsgID) == b.Header.Get(schema.HeaderMsgID) {
		t.Fatalf("two messages' dead letters share Nats-Msg-Id %s", a.Header.Get(schema.HeaderMsgID))
	}
	again := schema.DeadLetter("a", 7, l.StoredMsg("a"), "other stage", nil)
	if a.Header.Get(schema.HeaderMsgID) != again.Header.Get(schema.HeaderMsgID) {
		t.Fatal("two stages' letters of one message differ")
	}
}
