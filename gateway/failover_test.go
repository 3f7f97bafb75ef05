package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// Killing the node that leads CHAT while sends flow makes no send fail
// with internal: the gateway retries the publish across the election, and
// answers unavailable only past PublishRetry. Every acknowledged message
// is stored once, at the seq its ack gave.
func TestSendDuringLeaderFailover(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	gwNC, gwJS := c.Connect(t)
	nc, js := c.Connect(t)
	h := harnessOn(t, schema.Config{Replicas: 3}, gwNC, gwJS, nc, js)
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream, err := js.Stream(ctx, schema.StreamChat)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := c.ServerNamed(info.Cluster.Leader)
	if leader == nil {
		t.Fatalf("no node named %q", info.Cluster.Leader)
	}

	var (
		mu          sync.Mutex
		acked       = map[string]uint64{} // client_id -> seq
		codes       = map[string]int{}    // error code -> count
		longest     time.Duration         // the longest wait for one ack
		afterKill   int                   // acks of sends begun after the kill
		killed      = make(chan struct{})
		stop        = make(chan struct{})
		wg          sync.WaitGroup
		senders     = []*client.Client{h.dial("alice"), h.dial("alice")}
		killedAt    time.Time
		beforeKill  = 20
		wantedAfter = 20
	)
	for w, cl := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				began := time.Now()
				for {
					sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
					ack, err := cl.Send(sctx, "g1", id, map[string]string{"text": id})
					scancel()
					var pe *protocol.Error
					if err != nil && !errors.As(err, &pe) {
						t.Errorf("send %s: %v", id, err)
						return
					}
					mu.Lock()
					if err != nil {
						// A client following docs/protocol.md retries
						// unavailable with the same client_id.
						codes[pe.Code]++
						mu.Unlock()
						time.Sleep(50 * time.Millisecond)
						continue
					}
					if prev, ok := acked[id]; ok && prev != ack.Seq {
						t.Errorf("%s acked at %d, then at %d", id, prev, ack.Seq)
					}
					acked[id] = ack.Seq
					longest = max(longest, time.Since(began))
					select {
					case <-killed:
						if began.After(killedAt) {
							afterKill++
						}
					default:
					}
					mu.Unlock()
					break
				}
			}
		}()
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			if ctx.Err() != nil {
				close(stop)
				wg.Wait()
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("sends before the kill", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= beforeKill })
	mu.Lock()
	killedAt = time.Now()
	close(killed)
	mu.Unlock()
	if err := leader.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor("sends after the kill", func() bool { mu.Lock(); defer mu.Unlock(); return afterKill >= wantedAfter })
	close(stop)
	wg.Wait()

	t.Logf("killed CHAT leader %s; %d sends acked, longest wait for an ack %s, error replies %v",
		info.Cluster.Leader, len(acked), longest.Round(time.Millisecond), codes)
	if codes[protocol.CodeInternal] > 0 {
		t.Fatalf("%d sends answered internal during the failover", codes[protocol.CodeInternal])
	}

	// Every acked message is in the stream once, at its seq.
	info, err = stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		raw, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		env, err := protocol.DecodeEnvelope(raw.Data)
		if err != nil {
			t.Fatal(err)
		}
		stored[env.ClientID]++
		if want, ok := acked[env.ClientID]; ok && want != seq {
			t.Errorf("%s acked at seq %d, stored at %d", env.ClientID, want, seq)
		}
	}
	for id := range acked {
		if stored[id] != 1 {
			t.Errorf("%s acked, stored %d times", id, stored[id])
		}
	}
}

// A send while CHAT has no leader (here: no stream at all, which answers
// publishes the same way, with no responders) is retried with the same
// Nats-Msg-Id until the stream is back; past PublishRetry it is answered
// unavailable, never internal.
func TestSendRetriesWhileStreamGone(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.PublishRetry = 3 * time.Second })
	h.convs.add("g1", protocol.ConversationGroup, "alice", "alice", "bob")
	alice := h.dial("alice")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	send := func(id string) (*protocol.Ack, time.Duration, error) {
		began := time.Now()
		ack, err := alice.Send(ctx, "g1", id, map[string]string{"text": id})
		return ack, time.Since(began), err
	}
	if _, _, err := send("before"); err != nil {
		t.Fatal(err)
	}
	if err := h.js.DeleteStream(ctx, schema.StreamChat); err != nil {
		t.Fatal(err)
	}

	// Back within the budget: the send is acknowledged.
	back := make(chan error, 1)
	time.AfterFunc(time.Second, func() {
		// The consumers of the deleted stream go away a moment after it.
		var err error
		for range 50 {
			if err = schema.Ensure(ctx, h.js, schema.Config{}); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		back <- err
	})
	ack, took, err := send("during")
	if err != nil {
		t.Fatalf("send while CHAT was gone for 1 s: %v after %s", err, took)
	}
	if ack.Seq == 0 || ack.Duplicate || took < 900*time.Millisecond {
		t.Fatalf("ack %+v after %s", ack, took)
	}
	if err := <-back; err != nil {
		t.Fatalf("recreate CHAT: %v", err)
	}

	// Gone for longer than the budget: unavailable, retry with the same
	// client_id.
	if err := h.js.DeleteStream(ctx, schema.StreamChat); err != nil {
		t.Fatal(err)
	}
	_, took, err = send("later")
	wantCode(t, err, protocol.CodeUnavailable, "retry with the same client_id")
	if took < 3*time.Second || took > 6*time.Second {
		t.Fatalf("unavailable after %s, want after the 3 s budget", took)
	}
}

// Only the errors of a stream between leaders are retried; a refusal of
// the message itself fails at once.
func TestPublishRetryable(t *testing.T) {
	api := func(status int, code jetstream.ErrorCode) error {
		return fmt.Errorf("nats: %w", &jetstream.APIError{Code: status, ErrorCode: code, Description: "x"})
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"no responders", nats.ErrNoResponders, true},
		{"no stream response", jetstream.ErrNoStreamResponse, true},
		{"attempt timed out", context.DeadlineExceeded, true},
		{"nats timeout", nats.ErrTimeout, true},
		{"reconnecting", nats.ErrConnectionReconnecting, true},
		{"temporarily unavailable", api(503, jsErrClusterNotAvail), true},
		{"stream offline", api(500, jsErrStreamOffline), true},
		{"no leader 503", api(503, 10999), true},
		{"too large", api(400, jetstream.JSErrCodeStreamMessageExceedsMaximum), false},
		{"stream not found", api(404, jetstream.JSErrCodeStreamNotFound), false},
		{"jetstream disabled", api(503, jetstream.JSErrCodeJetStreamNotEnabled), false},
		{"wrong stream", errors.New("nats: expected stream does not match"), false},
		{"connection closed", nats.ErrConnectionClosed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryable(tc.err); got != tc.want {
				t.Fatalf("retryable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
