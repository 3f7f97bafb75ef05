package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/auth"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// streamsEnv is a 3-node NATS cluster whose messages are in 4 partition
// streams (schema.Config.Streams), R3, with every role a process (an App)
// of its own, connected as its own NATS user over TCP.
type streamsEnv struct {
	c      *natstest.Cluster
	js     jetstream.JetStream
	layout schema.Layout
	gw1    *env // on n1
	gw2    *env // on n2
}

const streamParts = 4

func startStreams(t *testing.T) *streamsEnv {
	t.Helper()
	c := natstest.StartClusterStreams(t, 3, streamParts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := app.MigrateNATS(ctx, app.MigrateConfig{URL: c.URL(), Logger: testLogger(),
		Schema: schema.Config{Streams: streamParts, Replicas: 3}}); err != nil {
		t.Fatal(err)
	}
	_, js := c.Connect(t)
	l, err := schema.ReadLayout(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if l.Streams != streamParts || len(l.ChatStreams()) != streamParts {
		t.Fatalf("layout %+v", l)
	}
	s := &streamsEnv{c: c, js: js, layout: l}
	gw := func(node int) *env {
		return startWith(t, app.Config{
			HTTPAddr: "127.0.0.1:0",
			NATSURL:  c.Servers[node].RoleURL(natsrv.RoleGateway),
			Roles:    app.Roles{Gateway: true},
			Auth:     auth.Config{Secret: secret},
			Logger:   testLogger(),
		})
	}
	s.gw1, s.gw2 = gw(0), gw(1)
	startWith(t, app.Config{
		Roles: app.Roles{History: true}, HTTPAddr: "127.0.0.1:0",
		NATSURL: c.Servers[0].RoleURL(natsrv.RoleHistory), Logger: testLogger(),
		History: app.HistoryConfig{Dir: t.TempDir(), NoSync: true},
	})
	return s
}

// partitionConvs creates group conversations of alice and bob until each
// partition stream holds perPart of them.
func (s *streamsEnv) partitionConvs(t *testing.T, alice *client.Client, perPart int) [][]string {
	t.Helper()
	return partitionConvs(t, s.layout, alice, perPart)
}

// partitionConvs creates group conversations of alice and bob until each
// partition stream of l holds perPart of them.
func partitionConvs(t *testing.T, l schema.Layout, alice *client.Client, perPart int) [][]string {
	t.Helper()
	streamParts := l.Streams
	convs := make([][]string, streamParts)
	full := 0
	for i := 0; full < streamParts; i++ {
		if i > 40*streamParts*perPart {
			t.Fatalf("after %d conversations the partitions hold %v", i, convs)
		}
		conv, err := alice.CreateGroup(ctxT(t), fmt.Sprintf("g%d", i), "bob")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Partition(conv.Conv)
		if len(convs[p]) < perPart {
			if convs[p] = append(convs[p], conv.Conv); len(convs[p]) == perPart {
				full++
			}
		}
	}
	return convs
}

// Four partition streams on three nodes: sends in many conversations are
// stored in their conversation's stream with that stream's seqs, delivered
// live across two gateways, and read back by sync and by history with the
// prev chain intact.
func TestPartitionedStreams(t *testing.T) {
	s := startStreams(t)
	alice := s.gw1.dial(t, "alice")
	bob := s.gw2.dial(t, "bob")
	convs := s.partitionConvs(t, alice, 3)
	const perConv = 5
	acks := map[string][]uint64{}
	ctx := ctxT(t)
	for round := range perConv {
		for _, inPart := range convs {
			for _, conv := range inPart {
				ack, err := alice.Send(ctx, conv, fmt.Sprintf("%s-%d", conv, round), text(fmt.Sprintf("%s #%d", conv, round)))
				if err != nil {
					t.Fatal(err)
				}
				acks[conv] = append(acks[conv], ack.Seq)
			}
		}
	}
	// Live: bob gets every message, each conversation's in order, with
	// the seq of the ack.
	got := map[string][]uint64{}
	for range len(acks) * perConv {
		m := nextMessage(t, bob)
		got[m.Conv] = append(got[m.Conv], m.Seq)
	}
	for conv, want := range acks {
		if !slices.Equal(got[conv], want) {
			t.Fatalf("%s: bob got seqs %v, acks %v", conv, got[conv], want)
		}
	}
	// Stored in the conversation's partition stream, under its stored
	// subject; every stream has its own seqs (each counts from 1).
	perStream := map[string]uint64{}
	for conv, seqs := range acks {
		name := s.layout.StreamOf(conv)
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, seq := range seqs {
			raw, err := st.GetMsg(ctx, seq)
			if err != nil {
				t.Fatalf("%s seq %d in %s: %v", conv, seq, name, err)
			}
			if raw.Subject != s.layout.StoredMsg(conv) {
				t.Fatalf("%s seq %d in %s has subject %s", conv, seq, name, raw.Subject)
			}
		}
		perStream[name] = max(perStream[name], seqs[len(seqs)-1])
	}
	// Each stream counts its own seqs: its last seq is its own number of
	// messages, below the streams' total.
	var total uint64
	lasts := map[string]uint64{}
	for _, name := range s.layout.ChatStreams() {
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		state := st.CachedInfo().State
		if state.LastSeq < perStream[name] || state.LastSeq != state.Msgs {
			t.Fatalf("%s: last seq %d, %d messages, acks up to %d", name, state.LastSeq, state.Msgs, perStream[name])
		}
		lasts[name] = state.LastSeq
		total += state.Msgs
	}
	for name, last := range lasts {
		if last >= total {
			t.Fatalf("%s counted to %d of %d messages in all: the streams share seqs", name, last, total)
		}
	}
	// Sync and history give every conversation's messages, prev-chained.
	waitFor(t, 30*time.Second, func() bool { return s.historyCaughtUp(ctx) })
	for conv, want := range acks {
		// A group's member keys may still be on their way on a loaded
		// machine (the gateway checks them, not the document): a sync
		// refused as forbidden is asked again for a while.
		var page *protocol.MessagesFrame
		var err error
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			page, err = bob.Sync(ctx, conv, 0, 100)
			if code(err) != protocol.CodeForbidden || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatalf("sync %s (stream %s): %v", conv, s.layout.StreamOf(conv), err)
		}
		hist, err := bob.History(ctx, conv, 0, 100)
		if err != nil {
			t.Fatalf("history %s (stream %s): %v", conv, s.layout.StreamOf(conv), err)
		}
		for _, p := range [][]*protocol.Message{page.Messages, hist.Messages} {
			var seqs []uint64
			for i, m := range p {
				seqs = append(seqs, m.Seq)
				if i > 0 && m.Prev != p[i-1].Seq {
					t.Fatalf("%s: message %d has prev %d after %d", conv, m.Seq, m.Prev, p[i-1].Seq)
				}
			}
			if !slices.Equal(seqs, want) {
				t.Fatalf("%s: read seqs %v, acks %v", conv, seqs, want)
			}
		}
	}
}

// historyCaughtUp reports whether every partition stream's history
// consumer has acknowledged its last message.
func (s *streamsEnv) historyCaughtUp(ctx context.Context) bool {
	for _, name := range s.layout.ChatStreams() {
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		if err != nil {
			return false
		}
		cons, err := st.Consumer(ctx, schema.ConsumerHistory)
		if err != nil {
			return false
		}
		ci, err := cons.Info(ctx)
		if err != nil || ci.NumPending > 0 || ci.NumAckPending > 0 || ci.AckFloor.Stream < info.State.LastSeq {
			return false
		}
	}
	return true
}
