package schema_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// Every consumer of CHAT has one filter subject (a consumer with several
// costs the file store a pass over every subject of a block per message
// once it is behind: BenchmarkConsumerBacklog), and it still reads exactly
// what it read with two: a fan-out partition's consumer its partition's
// messages and membership events, pushnotify and the events writer every
// message and membership event. Ensure brings consumers made by a release
// that had two filters (the configs below) to one, in place.
func TestChatConsumersHaveOneFilter(t *testing.T) {
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	ctx := t.Context()
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	l, err := schema.ReadLayout(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	// What the previous release made: two filters each.
	old := map[string][]string{
		schema.ConsumerPush:          {schema.StoredMsgWildcard, schema.StoredMemberWildcard},
		schema.ConsumerServiceEvents: {schema.StoredMsgWildcard, schema.StoredMemberWildcard},
	}
	for p := range l.Partitions {
		ps := fmt.Sprint(p)
		old[schema.ConsumerFanoutPartition(p)] = []string{"chat.msg.*." + ps, "chat.member.*." + ps}
	}
	for _, cc := range schema.Consumers(l, schema.StreamChat) {
		if f, ok := old[cc.Durable]; ok {
			cc.FilterSubjects = f
			if _, err := js.UpdateConsumer(ctx, schema.StreamChat, cc); err != nil {
				t.Fatalf("make %s as before: %v", cc.Durable, err)
			}
		}
	}
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatalf("ensure over two-filter consumers: %v", err)
	}

	// Three messages and a membership event in each of 40 conversations.
	perPartition := make([]uint64, l.Partitions)
	for i := range 40 {
		conv := fmt.Sprintf("c%d", i)
		for _, subj := range []string{schema.Member(conv), schema.Msg(conv), schema.Msg(conv), schema.Msg(conv)} {
			if _, err := js.Publish(ctx, subj, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
		}
		perPartition[l.Partition(conv)] += 4
	}
	want := map[string]uint64{schema.ConsumerPush: 160, schema.ConsumerServiceEvents: 160}
	for p, n := range perPartition {
		if n == 0 {
			t.Fatalf("no conversation in partition %d", p)
		}
		want[schema.ConsumerFanoutPartition(p)] = n
	}
	for name, n := range want {
		// A consumer counts what the stream stored a moment after the
		// publish's ack: wait for it (never more than it should have).
		var ci *jetstream.ConsumerInfo
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			c, err := js.Consumer(ctx, schema.StreamChat, name)
			if err != nil {
				t.Fatal(err)
			}
			if ci = c.CachedInfo(); ci.NumPending >= n || time.Now().After(deadline) {
				break
			}
		}
		if len(ci.Config.FilterSubjects) > 1 {
			t.Errorf("%s has %d filters: %v", name, len(ci.Config.FilterSubjects), ci.Config.FilterSubjects)
		}
		if ci.NumPending != n {
			t.Errorf("%s (filters %v %q) has %d pending, want %d", name, ci.Config.FilterSubjects, ci.Config.FilterSubject, ci.NumPending, n)
		}
	}
	for _, cc := range schema.Consumers(l, schema.StreamChat) {
		if len(cc.FilterSubjects) > 1 {
			t.Errorf("schema gives %s %d filters: %v", cc.Durable, len(cc.FilterSubjects), cc.FilterSubjects)
		}
	}
}
