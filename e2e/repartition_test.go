package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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

// supervised is an App restarted with its config whenever it stops
// itself because the message streams were re-partitioned (App.Relayout):
// what a process supervisor does for natter serve's non-zero exit.
type supervised struct {
	t        *testing.T
	cfg      app.Config
	mu       sync.Mutex
	a        *app.App
	restarts int
	kills    int
	kick     chan struct{} // the app was replaced (kill): watch the new one
	stop     chan struct{}
	done     chan struct{}
}

func supervise(t *testing.T, cfg app.Config) *supervised {
	t.Helper()
	s := &supervised{t: t, cfg: cfg, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	s.a = s.start()
	go s.loop()
	t.Cleanup(func() {
		close(s.stop)
		<-s.done
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.app().Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

func (s *supervised) start() *app.App {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		a, err := app.Start(ctx, s.cfg)
		cancel()
		if err == nil {
			return a
		}
		s.t.Logf("restart: %v", err)
		select {
		case <-s.stop:
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (s *supervised) loop() {
	defer close(s.done)
	for {
		a := s.app()
		select {
		case <-s.stop:
			return
		case <-s.kick:
			continue
		case <-a.Relayout():
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_ = a.Shutdown(ctx)
		cancel()
		next := s.start()
		if next == nil {
			return
		}
		s.mu.Lock()
		s.a, s.restarts = next, s.restarts+1
		s.mu.Unlock()
	}
}

// waitUntil polls cond until it holds or d has passed.
func waitUntil(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// kill stops the process at once, as a crash would (its WebSockets end
// mid-request), and starts it again, as its supervisor would.
func (s *supervised) kill() {
	old := s.app()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = old.Shutdown(ctx)
	cancel()
	next := s.start()
	if next == nil {
		return
	}
	s.mu.Lock()
	s.a, s.kills = next, s.kills+1
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *supervised) killed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kills
}

func (s *supervised) app() *app.App {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.a
}

func (s *supervised) restarted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

// redialer is a user's client that dials its gateway again (wherever the
// supervisor restarted it) when the connection ended.
type redialer struct {
	t    *testing.T
	user string
	gw   *supervised
	mu   sync.Mutex
	c    *client.Client
}

func (r *redialer) client(ctx context.Context) (*client.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.c != nil {
		select {
		case <-r.c.Done():
			r.c = nil
		default:
			return r.c, nil
		}
	}
	c, err := client.Dial(ctx, r.gw.app().WebSocketURL(), client.Options{Token: token(r.t, r.user)})
	if err != nil {
		return nil, err
	}
	r.c = c
	r.t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

// sent is one acknowledged send.
type sent struct {
	clientID string
	seq      uint64
}

// sendSurely sends until acknowledged, marking every attempt after the
// first a resend with the same client_id, through gateway restarts and
// the re-partition's fence.
func (r *redialer) sendSurely(ctx context.Context, conv, clientID string) (*protocol.Ack, error) {
	for attempt := 0; ; attempt++ {
		c, err := r.client(ctx)
		if err == nil {
			actx, cancel := context.WithTimeout(ctx, 20*time.Second)
			var ack *protocol.Ack
			if attempt == 0 {
				ack, err = c.Send(actx, conv, clientID, text(clientID))
			} else {
				ack, err = c.Resend(actx, conv, clientID, text(clientID))
			}
			cancel()
			if err == nil {
				return ack, nil
			}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("send %s in %s: %w", clientID, conv, err)
		}
		if c := code(err); c == protocol.CodeBadRequest || c == protocol.CodeTooLarge {
			return nil, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// 1 → 4 message streams while clients send over WebSockets: every
// acknowledged send is read back exactly once, each conversation's seqs
// only grow across the move, the prev chain runs across it (live and in
// pages), a sync from a seq before the move and a history page from one
// after it read across it; the processes that read the old layout stop
// and, restarted, adopt the new; an operator step with the old layout is
// refused.
func TestRepartitionUnderLoad(t *testing.T) { repartitionUnderLoad(t, false) }

// The same, with the sender's gateway killed while the old streams are
// fenced: its sends in flight are answered by the restarted gateway (the
// client resends with the same client_id), and still nothing acknowledged
// is lost or stored twice.
func TestRepartitionGatewayKilledDuringFence(t *testing.T) { repartitionUnderLoad(t, true) }

func repartitionUnderLoad(t *testing.T, killDuringFence bool) {
	const to = 4
	c := natstest.StartClusterStreams(t, 3, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := app.MigrateNATS(ctx, app.MigrateConfig{URL: c.URL(), Logger: testLogger(),
		Schema: schema.Config{Replicas: 3}}); err != nil {
		t.Fatal(err)
	}
	_, js := c.Connect(t)
	// Every node follows the recorded layout, as natter nats does.
	fctx, fstop := context.WithCancel(context.Background())
	var followers sync.WaitGroup
	t.Cleanup(func() { fstop(); followers.Wait() })
	for _, srv := range c.Servers {
		nc, err := srv.Connect("follow-layout")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		fjs, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		followers.Add(1)
		go func() {
			defer followers.Done()
			app.FollowStreams(fctx, srv, fjs, testLogger())
		}()
	}
	gw := func(node int) *supervised {
		return supervise(t, app.Config{
			HTTPAddr: "127.0.0.1:0",
			NATSURL:  c.Servers[node].RoleURL(natsrv.RoleGateway),
			Roles:    app.Roles{Gateway: true},
			Auth:     auth.Config{Secret: secret},
			Logger:   testLogger(),
		})
	}
	gw1, gw2 := gw(0), gw(1)
	hist := supervise(t, app.Config{
		Roles: app.Roles{History: true}, HTTPAddr: "127.0.0.1:0",
		NATSURL: c.Servers[0].RoleURL(natsrv.RoleHistory), Logger: testLogger(),
		History: app.HistoryConfig{Dir: t.TempDir(), NoSync: true},
	})
	alice := &redialer{t: t, user: "alice", gw: gw1}
	bob := &redialer{t: t, user: "bob", gw: gw2}
	ac, err := alice.client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Two conversations in each of the new streams.
	target := schema.Layout{Partitions: to, Streams: to}
	var convs []string
	for _, inPart := range partitionConvs(t, target, ac, 2) {
		convs = append(convs, inPart...)
	}

	var mu sync.Mutex
	acks := map[string][]sent{}
	record := func(conv, id string, ack *protocol.Ack) error {
		mu.Lock()
		defer mu.Unlock()
		prev := acks[conv]
		if n := len(prev); n > 0 && ack.Seq <= prev[n-1].seq {
			return fmt.Errorf("%s: %s acked seq %d after %s's %d", conv, id, ack.Seq, prev[n-1].clientID, prev[n-1].seq)
		}
		acks[conv] = append(prev, sent{id, ack.Seq})
		return nil
	}
	for round := range 3 {
		for _, conv := range convs {
			id := fmt.Sprintf("before-%d-%s", round, conv)
			ack, err := alice.sendSurely(ctx, conv, id)
			if err != nil {
				t.Fatal(err)
			}
			if err := record(conv, id, ack); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Bob's live pushes, across reconnects.
	var pushMu sync.Mutex
	var pushes []*protocol.Message
	pctx, pstop := context.WithCancel(ctx)
	pdone := make(chan struct{})
	go func() {
		defer close(pdone)
		for pctx.Err() == nil {
			c, err := bob.client(pctx)
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			ev, err := c.NextEvent(pctx, protocol.TypeMessage)
			if err != nil {
				continue
			}
			var m protocol.Message
			if ev.Decode(&m) == nil {
				pushMu.Lock()
				pushes = append(pushes, &m)
				pushMu.Unlock()
			}
		}
	}()

	// Alice sends all along the move.
	sctx, sstop := context.WithCancel(ctx)
	serr := make(chan error, 1)
	var live int
	var liveMu sync.Mutex
	go func() {
		for i := 0; sctx.Err() == nil; i++ {
			conv := convs[i%len(convs)]
			id := fmt.Sprintf("live-%d", i)
			ack, err := alice.sendSurely(ctx, conv, id)
			if err == nil {
				err = record(conv, id, ack)
			}
			if err != nil {
				serr <- err
				return
			}
			liveMu.Lock()
			live++
			liveMu.Unlock()
		}
		serr <- nil
	}()
	liveSent := func() int {
		liveMu.Lock()
		defer liveMu.Unlock()
		return live
	}
	waitFor(t, time.Minute, func() bool { return liveSent() >= len(convs) })

	var steps []string
	killed := make(chan struct{})
	if !killDuringFence {
		close(killed)
	}
	res, err := schema.Repartition(ctx, js, to, schema.RepartitionOptions{Progress: func(s string) {
		steps = append(steps, s)
		t.Logf("repartition: %s (live sends so far %d)", s, liveSent())
		if killDuringFence && strings.HasPrefix(s, "fence:") {
			go func() {
				defer close(killed)
				gw1.kill()
				t.Logf("alice's gateway killed and restarted during the fence (live sends so far %d)", liveSent())
			}()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	<-killed
	if killDuringFence && gw1.killed() != 1 {
		t.Fatal("alice's gateway was not killed during the fence")
	}
	t.Logf("moved %v → %v, first seq %d, fence %v, skipped %v", res.Old, res.New, res.FirstSeq, res.Fence, res.Skipped)
	atMove := liveSent()
	// Sends go on in the new streams: every conversation gets some.
	waitFor(t, 3*time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, conv := range convs {
			a := acks[conv]
			if len(a) < 2 || a[len(a)-2].seq < res.FirstSeq {
				return false
			}
		}
		return true
	})
	sstop()
	if err := <-serr; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d live sends, %d before the move was done", liveSent(), atMove)

	// The processes that read the old layout stopped and were restarted
	// with the new one.
	for name, s := range map[string]*supervised{"gateway 1": gw1, "gateway 2": gw2, "history": hist} {
		if !waitUntil(time.Minute, func() bool { return s.restarted() > 0 }) {
			t.Fatalf("%s never restarted after the move", name)
		}
	}
	l, err := schema.ReadLayout(ctx, js)
	if err != nil || l.Streams != to {
		t.Fatalf("layout after the move %+v, %v", l, err)
	}
	// CHAT is retired: kept for the de-dup window, out of the layout.
	retired, err := schema.RetiredStreams(ctx, js)
	if err != nil || len(retired) != 1 || retired[0].Name != schema.StreamChat {
		t.Fatalf("retired after the move %+v, %v", retired, err)
	}
	// A send stored before the move whose ack was lost, sent again (not
	// even marked a resend) after it, is answered with its original seq
	// and stored nothing new: the gateway looks it up in the retired
	// stream, which the new streams' Nats-Msg-Id windows know nothing of.
	mu.Lock()
	for _, conv := range convs {
		orig := acks[conv][0]
		c, err := alice.client(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := c.Send(ctx, conv, orig.clientID, text(orig.clientID))
		if err != nil {
			t.Fatal(err)
		}
		if ack.Seq != orig.seq || !ack.Duplicate {
			t.Fatalf("%s: %s sent again after the move acked seq %d (duplicate %v), stored before it as %d", conv, orig.clientID, ack.Seq, ack.Duplicate, orig.seq)
		}
	}
	mu.Unlock()
	for _, name := range l.ChatStreams() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if fs := st.CachedInfo().Config.FirstSeq; fs != res.FirstSeq {
			t.Fatalf("%s starts at %d, not %d", name, fs, res.FirstSeq)
		}
	}
	// An operator step with the old layout is refused.
	err = app.MigrateNATS(ctx, app.MigrateConfig{URL: c.URL(), Logger: testLogger(), Schema: schema.Config{Streams: 1, Replicas: 3}})
	if !errors.Is(err, schema.ErrRepartition) {
		t.Fatalf("migrate with the old layout: %v", err)
	}

	// Every acknowledged send is read back once, in ack order, with the
	// prev chain, by bob's history and by a sync from a seq before the
	// move; a history page before the first seq after the move is the
	// messages before it.
	bc, err := bob.client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, conv := range convs {
		want := acks[conv]
		var wantSeqs []uint64
		var before, after int // indexes: the last below the first seq, the first at or above it
		for i, a := range want {
			wantSeqs = append(wantSeqs, a.seq)
			if a.seq < res.FirstSeq {
				before = i
			} else if after == 0 {
				after = i
			}
		}
		check := func(what string, page []*protocol.Message, from int, prev uint64) {
			t.Helper()
			var seqs []uint64
			for i, m := range page {
				seqs = append(seqs, m.Seq)
				if m.Prev != prev && (i > 0 || from > 0) {
					t.Fatalf("%s %s: message %d has prev %d, want %d", conv, what, m.Seq, m.Prev, prev)
				}
				if k := from + i; k < len(want) && m.ClientID != want[k].clientID {
					t.Fatalf("%s %s: seq %d has client_id %s, acked as %s", conv, what, m.Seq, m.ClientID, want[k].clientID)
				}
				prev = m.Seq
			}
			if !slices.Equal(seqs, wantSeqs[from:]) {
				t.Fatalf("%s %s: read seqs %v, acked %v", conv, what, seqs, wantSeqs[from:])
			}
		}
		var hist *protocol.MessagesFrame
		waitFor(t, time.Minute, func() bool {
			hist, err = bc.History(ctx, conv, 0, 1000)
			return err == nil && len(hist.Messages) >= len(want)
		})
		check("history", hist.Messages, 0, 0)
		page, err := bc.Sync(ctx, conv, want[before].seq, 1000)
		if err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("sync after %d", want[before].seq), page.Messages, before+1, want[before].seq)
		older, err := bc.History(ctx, conv, want[after].seq, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(older.Messages); n != after || older.Messages[n-1].Seq != want[before].seq {
			t.Fatalf("%s: history before %d has %d messages, want %d up to %d", conv, want[after].seq, n, after, want[before].seq)
		}
	}
	// Live pushes carry the prev of their conversation's acks, the first
	// one after the move included.
	pstop()
	<-pdone
	pushMu.Lock()
	defer pushMu.Unlock()
	bySeq := map[string]map[uint64]uint64{}
	for conv, a := range acks {
		bySeq[conv] = map[uint64]uint64{}
		for i, s := range a {
			if i > 0 {
				bySeq[conv][s.seq] = a[i-1].seq
			}
		}
	}
	across := 0
	for _, m := range pushes {
		prev, ok := bySeq[m.Conv][m.Seq]
		if !ok {
			continue // a conversation's first message
		}
		if m.Prev != prev {
			t.Fatalf("%s: push of %d has prev %d, want %d", m.Conv, m.Seq, m.Prev, prev)
		}
		if m.Seq >= res.FirstSeq && prev < res.FirstSeq {
			across++
		}
	}
	t.Logf("%d live pushes checked, %d of them the first after the move", len(pushes), across)
}
