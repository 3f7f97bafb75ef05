package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/internal/testbin"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// writerResume bounds how long the history writer may take to have every
// acked message in its store after kill -9 of the node that leads CHAT
// and the LEASES bucket: the elections (4-9 s each), an AckWait for a
// batch the dead leader delivered (10 s) and slack for a loaded machine.
// TestChaos saw the writer not catch up within 45 s.
const writerResume = 40 * time.Second

// chaosStreamsEnv, set to N > 1, runs the chaos tests that support it on
// `natter nats --streams N` (partition streams CHAT_0 … CHAT_{N-1}).
const chaosStreamsEnv = "NATTER_CHAOS_STREAMS"

// chaosNATSArgs are the `natter nats` flags NATTER_CHAOS_STREAMS asks for.
func chaosNATSArgs(t *testing.T) []string {
	v := os.Getenv(chaosStreamsEnv)
	if v == "" {
		return nil
	}
	if n, err := strconv.Atoi(v); err != nil || n < 1 || n > schema.MaxStreams {
		t.Fatalf("%s=%q: want 1 to %d", chaosStreamsEnv, v, schema.MaxStreams)
	}
	return []string{"--streams", v}
}

// kill -9 of the node that leads the message stream of conversation c0
// (CHAT, or with NATTER_CHAOS_STREAMS its partition stream) and the LEASES
// bucket while the history writer of an embedded store runs (as `natter
// history --data`, with its single-writer lease): the writer keeps running
// and has every acknowledged message in the store within writerResume. Its
// lease TTL is shorter than the elections, so the lease lapses while the
// bucket has no leader: a writer that stopped for good then (as it did)
// fails here. With partition streams the writer runs a loop per stream,
// and the killed stream's must resume.
func TestHistoryWriterSurvivesStreamLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos: separate NATS processes; not with -short")
	}
	c := &cluster{t: t, bin: testbin.Natter(t), dir: t.TempDir(), natsArgs: chaosNATSArgs(t)}
	c.startNATS()
	js := c.js(t)
	l, err := schema.ReadLayout(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	stream := l.StreamOf("c0")
	leader := streamLeaderOf(t, js, stream)
	colocate(t, js, schema.KVStream(schema.BucketLeases), leader)

	dir := filepath.Join(c.dir, "store")
	store, err := localstore.New(localstore.Config{Dir: dir, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	// The writer's connection is to the leader first: it loses it too.
	urls := strings.Split(c.natsURL, ",")
	for i, n := range c.nats {
		if n.name == leader {
			urls[0], urls[i] = urls[i], urls[0]
		}
	}
	wnc, err := nats.Connect(strings.Join(urls, ","), nats.DontRandomize(), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wnc.Close)
	wjs, err := jetstream.New(wnc)
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	w := history.NewWriter(history.WriterConfig{
		SingleWriter: localstore.Name(dir),
		LeaseTTL:     time.Second,
		Logger:       slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}, wjs, store)
	wctx, wcancel := context.WithCancel(context.Background())
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(wctx) }()
	t.Cleanup(func() {
		wcancel()
		<-wdone
		if t.Failed() {
			t.Logf("writer log:\n%s", logs.String())
		}
	})

	// A publisher sends all along, retrying across the election, and
	// records what was acknowledged, by conversation (seqs are per
	// stream).
	var (
		mu    sync.Mutex
		acked = map[string][]uint64{}
		n     int
	)
	pjs := c.js(t)
	pctx, pcancel := context.WithCancel(context.Background())
	defer pcancel()
	pdone := make(chan struct{})
	go func() {
		defer close(pdone)
		for i := 0; pctx.Err() == nil; i++ {
			body, _ := json.Marshal(map[string]string{"text": fmt.Sprint(i)})
			data, _ := json.Marshal(protocol.Envelope{Sender: "u1", ClientID: fmt.Sprint("m", i), Kind: protocol.KindMessage, Body: body})
			for pctx.Err() == nil {
				actx, acancel := context.WithTimeout(pctx, 5*time.Second)
				conv := fmt.Sprintf("c%d", i%4)
				ack, err := pjs.Publish(actx, schema.Msg(conv), data, jetstream.WithMsgID(fmt.Sprint("m", i)))
				acancel()
				if err == nil {
					mu.Lock()
					acked[conv] = append(acked[conv], ack.Sequence)
					n++
					mu.Unlock()
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	time.Sleep(3 * time.Second)
	t.Logf("kill -9 of %s, which leads %s and LEASES", leader, stream)
	node := c.node(leader)
	node.kill()
	killed := time.Now()
	t.Log(leaderChangedOf(t, js, stream, leader))
	time.Sleep(3*time.Second - time.Since(killed))
	node.start(false) // back after 3 s, as in TestChaos
	time.Sleep(8*time.Second - time.Since(killed))
	pcancel()
	<-pdone
	node.waitUp(60 * time.Second)
	mu.Lock()
	sent, total := acked, n
	mu.Unlock()
	if total == 0 {
		t.Fatal("nothing acknowledged")
	}

	for deadline := killed.Add(writerResume); ; {
		select {
		case err := <-wdone:
			wdone <- err
			t.Fatalf("the writer stopped after the leader was killed: %v", err)
		default:
		}
		missing := storeLacks(t, store, sent)
		if len(missing) == 0 {
			t.Logf("%d acked messages in the store %s after the kill", total, time.Since(killed).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acked messages still not in the store %s after the kill (first %s, last %s)",
				len(missing), total, time.Since(killed).Round(time.Millisecond), missing[0], missing[len(missing)-1])
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "lease") {
		t.Log("the writer's lease did not lapse this time")
	}
}

// colocate makes the node named leader lead stream too.
func colocate(t *testing.T, js jetstream.JetStream, stream, leader string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatalf("stream %s: %v", stream, err)
		}
		if cl := st.CachedInfo().Cluster; cl != nil && cl.Leader == leader {
			return
		}
		req := fmt.Sprintf(`{"placement":{"preferred":%q}}`, leader)
		if _, err := js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, []byte(req)); err != nil {
			t.Fatalf("step down %s: %v", stream, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// storeLacks returns the acked messages (conversation/seq) the store
// lacks, seqs by conversation.
func storeLacks(t *testing.T, store *localstore.Store, seqs map[string][]uint64) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var missing []string
	for conv, want := range seqs {
		have := map[uint64]bool{}
		for after := uint64(0); ; {
			rows, more, err := store.After(ctx, conv, after, 500)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range rows {
				have[m.Seq] = true
				after = m.Seq
			}
			if !more {
				break
			}
		}
		for _, s := range want {
			if !have[s] {
				missing = append(missing, fmt.Sprintf("%s/%d", conv, s))
			}
		}
	}
	return missing
}
