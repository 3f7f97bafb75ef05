package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// The schema is R3 on a 3-node cluster, and an acknowledged message
// survives the shutdown of the stream leader.
func TestClusterSchemaR3SurvivesLeaderShutdown(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	_, js := c.Connect(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := schema.Ensure(ctx, js, schema.Config{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("CHAT: replicas %d, cluster %+v", info.Config.Replicas, info.Cluster)
	}
	for _, b := range []string{schema.BucketConversations, schema.BucketPresence} {
		kv, err := js.KeyValue(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		ks, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r := ks.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas; r != 3 {
			t.Fatalf("bucket %s: %d replicas", b, r)
		}
	}
	ack, err := js.Publish(ctx, schema.Msg("c1"), []byte(`{"sender":"u1","client_id":"1","body":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	leader := c.ServerNamed(info.Cluster.Leader)
	if leader == nil {
		t.Fatalf("no node named %q", info.Cluster.Leader)
	}
	if err := leader.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	// Reads and writes work again once a new leader is elected.
	var msg *jetstream.RawStreamMsg
	for {
		msg, err = st.GetMsg(ctx, ack.Sequence)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("message %d not readable after the leader's shutdown: %v", ack.Sequence, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if string(msg.Data) != `{"sender":"u1","client_id":"1","body":{}}` {
		t.Fatalf("message = %s", msg.Data)
	}
	for {
		ack2, err := js.Publish(ctx, schema.Msg("c1"), []byte(`{}`))
		if err == nil {
			if ack2.Sequence <= ack.Sequence {
				t.Fatalf("seq after failover %d ≤ %d", ack2.Sequence, ack.Sequence)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no publish after the leader's shutdown: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("stream writable again %v after the leader %s shut down", time.Since(began).Round(time.Millisecond), info.Cluster.Leader)
}
