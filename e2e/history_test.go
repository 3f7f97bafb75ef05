package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/app"
	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/history/localstore"
	"github.com/natter-chat/natter/internal/testbin"
	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

func hotWindow(d time.Duration) func(*app.Config) {
	return func(c *app.Config) {
		c.Schema.HotWindow = d
		c.Schema.Duplicates = min(d, time.Second)
	}
}

// streamCount is how many messages of conv its message stream still holds.
func streamCount(t *testing.T, e *env, conv string) uint64 {
	t.Helper()
	nc, err := e.app.NATS().Connect("test-count")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctxT(t), messageLayout(t, js).StreamOf(conv))
	if err != nil {
		t.Fatal(err)
	}
	stored := schema.LayoutOf(st.CachedInfo().Config).StoredMsg(conv)
	info, err := st.Info(ctxT(t), jetstream.WithSubjectFilter(stored))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[stored]
}

// historyCaughtUp waits until the history writer has acked everything.
func historyCaughtUp(t *testing.T, e *env) {
	t.Helper()
	nc, err := e.app.NATS().Connect("test-lag")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	streams := messageLayout(t, js).ChatStreams()
	waitFor(t, 60*time.Second, func() bool {
		for _, st := range streams {
			c, err := js.Consumer(ctxT(t), st, schema.ConsumerHistory)
			if err != nil {
				return false
			}
			info, err := c.Info(ctxT(t))
			if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
				return false
			}
		}
		return true
	})
}

// snapshot is everything a client can see of one conversation.
type snapshot struct {
	Conversations []*protocol.Conversation
	Sync          [][]*protocol.Message
	History       [][]*protocol.Message
}

func takeSnapshot(t *testing.T, c *client.Client, conv string) snapshot {
	t.Helper()
	ctx := ctxT(t)
	var s snapshot
	var err error
	if s.Conversations, err = c.Conversations(ctx); err != nil {
		t.Fatal(err)
	}
	for after := uint64(0); ; {
		page, err := c.Sync(ctx, conv, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		s.Sync = append(s.Sync, page.Messages)
		if !page.More {
			break
		}
		after = page.Messages[len(page.Messages)-1].Seq
	}
	for before := uint64(0); ; {
		page, err := c.History(ctx, conv, before, 7)
		if err != nil {
			t.Fatal(err)
		}
		s.History = append(s.History, page.Messages)
		if !page.More {
			break
		}
		before = page.Messages[0].Seq
	}
	return s
}

// Every answer a client gets is the same whether the messages are in the
// stream only, in both, or only in the history store after aging out.
func TestAnswersSurviveAgeOut(t *testing.T) { eachStore(t, answersSurviveAgeOut) }

func answersSurviveAgeOut(t *testing.T, store func(*app.Config)) {
	e := start(t, hotWindow(4*time.Second), store)
	ctx := ctxT(t)
	alice, bob := e.dial(t, "alice"), e.dial(t, "bob")
	g, err := alice.CreateGroup(ctx, "aging", "bob")
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for i := range 25 {
		ack, err := alice.Send(ctx, g.Conv, "", text(fmt.Sprintf("message %d ✓ 漢字", i)))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Seq)
	}
	kinds := []struct {
		c    *client.Client
		kind string
		ref  uint64
		body any
	}{
		{alice, protocol.KindEdit, seqs[3], text("message 3, edited")},
		{alice, protocol.KindEdit, seqs[3], text("message 3, edited twice")},
		{alice, protocol.KindDelete, seqs[5], map[string]any{}},
		{alice, protocol.KindReaction, seqs[7], map[string]any{"emoji": "🎉"}},
		{alice, protocol.KindEdit, seqs[24], text("last one, edited")},
	}
	for _, k := range kinds {
		if _, err := k.c.SendKind(ctx, g.Conv, "", k.kind, k.ref, k.body); err != nil {
			t.Fatal(err)
		}
	}
	markRead(t, bob, g.Conv, seqs[9])
	// The inbox preview is recorded by the fan-out, after the acks: wait
	// until it shows the last edit, so that every snapshot has it.
	waitFor(t, 30*time.Second, func() bool {
		f, err := bob.ConversationsPage(ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		l := f.Conversations[0].Last
		return l != nil && l.Seq == seqs[24] && l.Snippet == "last one, edited"
	})

	fresh := takeSnapshot(t, bob, g.Conv)
	if n := len(fresh.Sync); n != 5 { // 30 rows in pages of 7
		t.Fatalf("sync took %d pages", n)
	}
	var edited *protocol.Message
	for _, m := range fresh.Sync[0] {
		if m.Seq == seqs[3] {
			edited = m
		}
	}
	if edited == nil || string(edited.Body) != `{"text":"message 3, edited twice"}` || edited.EditSeq == 0 {
		t.Fatalf("edited message in sync = %+v", edited)
	}
	if c := fresh.Conversations[0]; c.Unread != 15 || c.ReadSeq != seqs[9] {
		t.Fatalf("conversation = %+v", c)
	}

	historyCaughtUp(t, e)
	both := takeSnapshot(t, bob, g.Conv)
	compareSnapshots(t, "in stream and store", fresh, both)

	waitFor(t, 30*time.Second, func() bool { return streamCount(t, e, g.Conv) == 0 })
	aged := takeSnapshot(t, bob, g.Conv)
	compareSnapshots(t, "aged out of the stream", fresh, aged)

	// Editing a message that is only in the store still works.
	if _, err := alice.SendKind(ctx, g.Conv, "", protocol.KindEdit, seqs[0], text("edited after aging")); err != nil {
		t.Fatalf("edit of an aged-out message: %v", err)
	}
	_, err = bob.SendKind(ctx, g.Conv, "", protocol.KindEdit, seqs[0], text("not mine"))
	wantCode(t, err, protocol.CodeForbidden)
	page, err := bob.Sync(ctx, g.Conv, 0, 1)
	if err != nil || string(page.Messages[0].Body) != `{"text":"edited after aging"}` {
		t.Fatalf("first message after the edit = %+v, %v", page.Messages[0], err)
	}
}

func compareSnapshots(t *testing.T, when string, want, got snapshot) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		w, _ := json.Marshal(want)
		g, _ := json.Marshal(got)
		t.Fatalf("%s, the client sees something else:\nwant %s\ngot  %s", when, w, g)
	}
}

// A client offline while 10,000 messages were sent, some of them already
// aged out of the stream, gets every one, in order, exactly once, through
// conversations + sync; scroll-back pages to the first message.
func TestOfflineCatchUp10000(t *testing.T) { eachStore(t, offlineCatchUp10000) }

func offlineCatchUp10000(t *testing.T, store func(*app.Config)) {
	e := start(t, hotWindow(5*time.Second), store, func(c *app.Config) {
		c.Gateway.RateBurst = 20_000
		c.Gateway.RateSustained = 20_000
	})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	alice := e.dial(t, "alice")
	conv, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	send := func(from, n int) {
		for i := from; i < from+n; i++ {
			frame := fmt.Sprintf(`{"type":"send","conv":%q,"client_id":"m%05d","body":{"i":%d}}`, conv.Conv, i, i)
			if err := alice.WriteRaw(ctx, []byte(frame)); err != nil {
				t.Fatal(err)
			}
		}
		for range n {
			ev, err := alice.NextEvent(ctx, protocol.TypeAck, protocol.TypeError)
			if err != nil || ev.Type != protocol.TypeAck {
				t.Fatalf("send: %s %v", ev.Raw, err)
			}
		}
	}
	send(0, 5000)
	historyCaughtUp(t, e)
	waitFor(t, 30*time.Second, func() bool { return streamCount(t, e, conv.Conv) == 0 })
	send(5000, 5000)
	if n := streamCount(t, e, conv.Conv); n == 0 || n > 5000 {
		t.Fatalf("the stream holds %d messages; the test wants some aged out and some not", n)
	}

	bob := e.dial(t, "bob")
	list, err := bob.Conversations(ctx)
	if err != nil || len(list) != 1 || list[0].Unread != 10_000 {
		t.Fatalf("conversations = %+v, %v", list, err)
	}
	var got []int
	last := uint64(0)
	for after := list[0].ReadSeq; ; {
		page, err := bob.Sync(ctx, conv.Conv, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			if m.Seq <= last {
				t.Fatalf("seq %d after %d", m.Seq, last)
			}
			last = m.Seq
			var b struct{ I int }
			_ = json.Unmarshal(m.Body, &b)
			got = append(got, b.I)
		}
		if !page.More {
			break
		}
		after = page.Messages[len(page.Messages)-1].Seq
	}
	if last != list[0].LastSeq {
		t.Fatalf("sync ended at %d, last_seq %d", last, list[0].LastSeq)
	}
	if len(got) != 10_000 {
		t.Fatalf("sync returned %d messages", len(got))
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("message %d is %d", i, v)
		}
	}
	// Scroll back from the newest to the very first.
	n := 0
	for before := uint64(0); ; {
		page, err := bob.History(ctx, conv.Conv, before, 500)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Messages)
		if !page.More {
			var b struct{ I int }
			_ = json.Unmarshal(page.Messages[0].Body, &b)
			if b.I != 0 {
				t.Fatalf("scroll-back ended at message %d", b.I)
			}
			break
		}
		before = page.Messages[0].Seq
	}
	if n != 10_000 {
		t.Fatalf("scroll-back saw %d messages", n)
	}
}

// kill -9 of the history service while messages flow loses nothing: after
// a restart the store holds every acknowledged message, exactly once.
func TestHistoryServiceKilled(t *testing.T) {
	e := start(t, func(c *app.Config) {
		c.Roles = app.Roles{Gateway: true, Presence: true}
		c.History = app.HistoryConfig{}
		c.Gateway.RateBurst = 10_000
		c.Gateway.RateSustained = 10_000
	})
	dir := t.TempDir()
	startHistory := func() *exec.Cmd {
		addr := testbin.FreeAddr(t)
		cmd := exec.Command(testbin.Natter(t), "history", "--nats-url", e.app.NATS().RoleURL(natsrv.RoleHistory), "--data", dir, "--http", addr)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		waitFor(t, 30*time.Second, func() bool {
			resp, err := http.Get("http://" + addr + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
		return cmd
	}
	h := startHistory()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := e.dial(t, "alice")
	conv, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	acked := make(chan uint64, n)
	go func() {
		for i := range n {
			frame := fmt.Sprintf(`{"type":"send","conv":%q,"client_id":"k%05d","body":{"i":%d}}`, conv.Conv, i, i)
			if err := alice.WriteRaw(ctx, []byte(frame)); err != nil {
				return
			}
		}
	}()
	go func() {
		for range n {
			ev, err := alice.NextEvent(ctx, protocol.TypeAck)
			if err != nil {
				close(acked)
				return
			}
			var a protocol.Ack
			_ = ev.Decode(&a)
			acked <- a.Seq
		}
		close(acked)
	}()
	// Kill the history service once a third has been acknowledged.
	var seqs []uint64
	for s := range acked {
		seqs = append(seqs, s)
		if len(seqs) == n/3 {
			if err := h.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = h.Wait()
			h = startHistory()
		}
	}
	if len(seqs) != n {
		t.Fatalf("%d of %d sends acknowledged", len(seqs), n)
	}
	historyCaughtUp(t, e)
	_ = h.Process.Signal(syscall.SIGTERM)
	_ = h.Wait()

	store, err := localstore.New(localstore.Config{Dir: filepath.Join(dir, "history"), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var stored []uint64
	for after := uint64(0); ; {
		rows, more, err := store.After(ctx, conv.Conv, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range rows {
			stored = append(stored, m.Seq)
		}
		if !more {
			break
		}
		after = rows[len(rows)-1].Seq
	}
	if !reflect.DeepEqual(stored, seqs) {
		t.Fatalf("store holds %d messages, %d were acknowledged (first difference matters)", len(stored), len(seqs))
	}
}
