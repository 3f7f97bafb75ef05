package schema_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// The partition Layout computes is the one the server's subject transform
// stores: a publish to Msg(conv) and to Member(conv) is stored under
// StoredMsg(conv) and StoredMember(conv), the same partition for both, and
// the conversations spread over every partition.
func TestPartitionMatchesServer(t *testing.T) {
	for _, n := range []int{1, 4, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := natstest.Start(t)
			_, js := natstest.Connect(t, s)
			ctx := t.Context()
			if err := schema.Ensure(ctx, js, schema.Config{Partitions: n}); err != nil {
				t.Fatal(err)
			}
			l, err := schema.ReadLayout(ctx, js)
			if err != nil {
				t.Fatal(err)
			}
			if l.Partitions != n || l.Legacy {
				t.Fatalf("layout %+v, want %d partitions, not legacy", l, n)
			}
			st, err := js.Stream(ctx, schema.StreamChat)
			if err != nil {
				t.Fatal(err)
			}
			used := map[int]bool{}
			for i := range 200 {
				conv := fmt.Sprintf("c%d-%x", i, i*7919)
				if i == 0 {
					conv = "dm_alice_bob-very-long-conversation-id-of-sixty-four-characters1"
				}
				for _, pub := range []struct{ subj, want string }{
					{schema.Msg(conv), l.StoredMsg(conv)},
					{schema.Member(conv), l.StoredMember(conv)},
				} {
					ack, err := js.Publish(ctx, pub.subj, []byte(`{}`))
					if err != nil {
						t.Fatal(err)
					}
					m, err := st.GetMsg(ctx, ack.Sequence)
					if err != nil {
						t.Fatal(err)
					}
					if m.Subject != pub.want {
						t.Fatalf("%s stored as %s, Layout says %s", pub.subj, m.Subject, pub.want)
					}
					if got := schema.ConvFromSubject(m.Subject); got != conv {
						t.Fatalf("ConvFromSubject(%s) = %q", m.Subject, got)
					}
				}
				used[l.Partition(conv)] = true
			}
			if len(used) != n {
				t.Errorf("200 conversations used %d of %d partitions", len(used), n)
			}
		})
	}
}

// N is kept by an Ensure that names none and refused when changed.
func TestPartitionsRecorded(t *testing.T) {
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := t.Context()
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	if l, _ := schema.ReadLayout(ctx, js); l.Partitions != schema.DefaultPartitions {
		t.Fatalf("default layout %+v", l)
	}
	if err := schema.Ensure(ctx, js, schema.Config{Partitions: 8}); !errors.Is(err, schema.ErrRepartition) {
		t.Fatalf("changing N: %v", err)
	}
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{schema.ConsumerFanout, schema.ConsumerFanoutPartition(0), schema.ConsumerFanoutPartition(schema.DefaultPartitions - 1)} {
		if _, err := js.Consumer(ctx, schema.StreamChat, c); err != nil {
			t.Errorf("consumer %s: %v", c, err)
		}
	}
	if _, err := js.Consumer(ctx, schema.StreamChat, schema.ConsumerFanoutPartition(schema.DefaultPartitions)); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("a consumer beyond N: %v", err)
	}
}

// A CHAT stream made before partitions is upgraded in place: what it holds
// keeps its subject and stays readable through StoredMsgs, new messages
// are partitioned, and once none of the old ones is left an Ensure drops
// the fallback.
func TestUpgradeFromUnpartitioned(t *testing.T) {
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := t.Context()
	old := schema.ChatStream(schema.Config{})
	old.SubjectTransform = nil
	delete(old.Metadata, schema.MetaPartitions)
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	if l, _ := schema.ReadLayout(ctx, js); l.Partitions != 0 {
		t.Fatalf("main's stream read as %+v", l)
	}
	before, err := js.Publish(ctx, schema.Msg("c1"), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	l, _ := schema.ReadLayout(ctx, js)
	if l.Partitions != schema.DefaultPartitions || !l.Legacy {
		t.Fatalf("upgraded layout %+v", l)
	}
	st, _ := js.Stream(ctx, schema.StreamChat)
	last := func() uint64 {
		for _, subj := range l.StoredMsgs("c1") {
			if m, err := st.GetLastMsgForSubject(ctx, subj); err == nil {
				return m.Sequence
			}
		}
		return 0
	}
	if got := last(); got != before.Sequence {
		t.Fatalf("last of c1 after the upgrade: %d, want %d", got, before.Sequence)
	}
	after, err := js.Publish(ctx, schema.Msg("c1"), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := st.GetMsg(ctx, after.Sequence); m == nil || m.Subject != l.StoredMsg("c1") {
		t.Fatalf("a message after the upgrade stored as %v", m)
	}
	if got := last(); got != after.Sequence {
		t.Fatalf("last of c1: %d, want %d", got, after.Sequence)
	}
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	if l, _ := schema.ReadLayout(ctx, js); !l.Legacy {
		t.Fatal("the fallback was dropped while an old message is stored")
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(schema.Msg("c1"))); err != nil {
		t.Fatal(err)
	}
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	if l, _ := schema.ReadLayout(ctx, js); l.Legacy || l.Partitions != schema.DefaultPartitions {
		t.Fatalf("after the old messages left: %+v", l)
	}
}
