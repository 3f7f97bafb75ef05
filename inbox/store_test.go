package inbox

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	srv := natstest.Start(t)
	nc, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, schema.ConversationsBucket(schema.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	return New(kv, nc)
}

func msg(conv string, seq uint64, sender, kind string, ref uint64, body string, mentions ...string) *protocol.Message {
	return &protocol.Message{Conv: conv, Seq: seq, Sender: sender, Kind: kind, Ref: ref, TS: fmt.Sprintf("t%d", seq), Body: json.RawMessage(body), Mentions: mentions}
}

func TestSummaryEncoding(t *testing.T) {
	for _, s := range []*Summary{
		{},
		{Top: 9, Seq: 7, TS: "2026-01-01T00:00:00Z", Sender: "bob", Snippet: "héllo", Recent: []uint64{1, 5, 7}},
		{Top: 1 << 40, Seq: 1 << 40, Kind: protocol.KindEvent, Snippet: "event", Deleted: true, Full: true, Recent: []uint64{3, 1<<40 - 1, 1 << 40}},
	} {
		got, err := decodeSummary(s.encode(nil))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(s) && !(len(s.Recent) == 0 && len(got.Recent) == 0) {
			t.Fatalf("round trip %+v = %+v", s, got)
		}
	}
	enc := (&Summary{Top: 5, Seq: 5, Sender: "a", Recent: []uint64{2, 5}}).encode(nil)
	for i := range enc {
		if _, err := decodeSummary(enc[:i]); err == nil {
			t.Fatalf("decoding %d of %d bytes succeeded", i, len(enc))
		}
	}
}

func TestSummaryUnread(t *testing.T) {
	s := &Summary{}
	for seq := uint64(1); seq <= MaxRecent+10; seq++ {
		s.apply(msg("c", seq*2, "bob", "", 0, `{"text":"x"}`))
	}
	if !s.Full || len(s.Recent) != MaxRecent {
		t.Fatalf("recent %d full %v", len(s.Recent), s.Full)
	}
	last := s.Recent[len(s.Recent)-1]
	for _, tc := range []struct {
		read  uint64
		n     uint64
		exact bool
	}{
		{last, 0, true},
		{last - 1, 1, true},
		{last - 2, 1, true},
		{s.Recent[0], MaxRecent - 1, true},
		{s.Recent[0] - 1, MaxRecent, false},
		{0, MaxRecent, false},
	} {
		if n, exact := s.Unread(tc.read); n != tc.n || exact != tc.exact {
			t.Errorf("Unread(%d) = %d %v, want %d %v", tc.read, n, exact, tc.n, tc.exact)
		}
	}
}

// TestNote: the preview follows messages, events, an edit and a delete of
// the newest message; reactions and redeliveries change nothing of it;
// mentions reach the mentioned members (everyone but the sender for
// @all), and the batched reads return what was written.
func TestNote(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	members := []string{"alice", "bob", "carol"}
	long := strings.Repeat("ab ", 100)
	steps := []struct {
		m       *protocol.Message
		changed bool
		want    protocol.Last
	}{
		{msg("g", 3, "bob", "", 0, `{"text":"hi"}`), true, protocol.Last{Seq: 3, Sender: "bob", TS: "t3", Snippet: "hi"}},
		{msg("g", 3, "bob", "", 0, `{"text":"hi"}`), false, protocol.Last{Seq: 3, Sender: "bob", TS: "t3", Snippet: "hi"}},
		{msg("g", 5, "carol", "", 0, `{"text":"`+long+`"}`, "alice"), true, protocol.Last{Seq: 5, Sender: "carol", TS: "t5", Snippet: protocol.Snippet(json.RawMessage(`{"text":"`+long+`"}`), "")}},
		{msg("g", 6, "bob", protocol.KindEdit, 5, `{"text":"nope"}`), true, protocol.Last{Seq: 5, Sender: "carol", TS: "t5", Snippet: protocol.Snippet(json.RawMessage(`{"text":"`+long+`"}`), "")}},
		{msg("g", 7, "carol", protocol.KindEdit, 5, `{"text":"short"}`), true, protocol.Last{Seq: 5, Sender: "carol", TS: "t5", Snippet: "short"}},
		{msg("g", 8, "bob", protocol.KindReaction, 5, `{"emoji":"+1"}`), true, protocol.Last{Seq: 5, Sender: "carol", TS: "t5", Snippet: "short"}},
		{msg("g", 9, "bob", "", 0, `{"image":"x"}`, protocol.MentionAll), true, protocol.Last{Seq: 9, Sender: "bob", TS: "t9", Snippet: "message"}},
		{msg("g", 10, "bob", protocol.KindDelete, 9, `{}`), true, protocol.Last{Seq: 9, Sender: "bob", TS: "t9", Deleted: true}},
		{msg("g", 11, "alice", protocol.KindEvent, 0, `{"event":"renamed"}`), true, protocol.Last{Seq: 11, Sender: "alice", TS: "t11", Kind: protocol.KindEvent, Snippet: "event"}},
	}
	for i, st := range steps {
		changed, err := s.Note(ctx, st.m, members)
		if err != nil {
			t.Fatal(err)
		}
		if changed != st.changed {
			t.Fatalf("step %d changed = %v", i, changed)
		}
		// A second store reads what the first wrote.
		fresh := New(s.kv, s.nc)
		sums, err := fresh.Summaries(ctx, []string{"g", "none"})
		if err != nil {
			t.Fatal(err)
		}
		if len(sums) != 1 || *sums["g"].Last() != st.want {
			t.Fatalf("step %d: summaries %v, last %+v, want %+v", i, sums, sums["g"].Last(), st.want)
		}
	}
	sums, _ := s.Summaries(ctx, []string{"g"})
	if g := sums["g"]; g.Top != 11 || !slices.Equal(g.Recent, []uint64{3, 5, 9}) {
		t.Fatalf("summary %+v", g)
	}
	if n, exact := sums["g"].Unread(3); n != 2 || !exact {
		t.Fatalf("unread after 3 = %d %v", n, exact)
	}
	for uid, want := range map[string][]uint64{"alice": {5, 9}, "bob": nil, "carol": {9}} {
		got, err := s.Mentions(ctx, uid, []string{"g", "other"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got["g"], want) || len(got["other"]) != 0 {
			t.Errorf("mentions of %s = %v, want %v", uid, got, want)
		}
	}
}

// TestSummariesBatches: reads of more keys than one multi_last answers
// are split, and all come back.
func TestSummariesBatches(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const n = 2*multiLastMax + 17
	convs := make([]string, n)
	for i := range n {
		convs[i] = fmt.Sprintf("c%04d", i)
		if _, err := s.Note(ctx, msg(convs[i], uint64(i+1), "bob", "", 0, `{"text":"x"}`), nil); err != nil {
			t.Fatal(err)
		}
	}
	sums, err := s.Summaries(ctx, append(convs, "missing"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != n {
		t.Fatalf("%d summaries, want %d", len(sums), n)
	}
	for i, c := range convs {
		if sums[c].Seq != uint64(i+1) {
			t.Fatalf("%s: %+v", c, sums[c])
		}
	}
}

// TestNoteConcurrentWriter: a summary written by another store (another
// fan-out worker took the partition over) is read again, not overwritten.
func TestNoteConcurrentWriter(t *testing.T) {
	a := newStore(t)
	b := New(a.kv, a.nc)
	ctx := context.Background()
	if _, err := a.Note(ctx, msg("g", 1, "bob", "", 0, `{"text":"1"}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Note(ctx, msg("g", 2, "bob", "", 0, `{"text":"2"}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Note(ctx, msg("g", 3, "bob", "", 0, `{"text":"3"}`), nil); err != nil {
		t.Fatal(err)
	}
	sums, _ := a.Summaries(ctx, []string{"g"})
	if g := sums["g"]; !slices.Equal(g.Recent, []uint64{1, 2, 3}) || g.Snippet != "3" {
		t.Fatalf("summary %+v", g)
	}
}

// TestHead: messages move their conversation to the front of the
// members' heads; past HeadSize the least recently moved drops off and
// the floor rises to its activity; MergeHead seeds behind what is there.
func TestHead(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if h, err := s.Head(ctx, "alice"); err != nil || len(h.Convs) != 0 || h.Floor != 0 {
		t.Fatalf("no head: %+v %v", h, err)
	}
	seq := uint64(0)
	say := func(conv string) {
		t.Helper()
		seq++
		m := msg(conv, seq, "bob", "", 0, `{"text":"x"}`)
		m.TS = protocol.FormatTime(time.Unix(int64(seq), 0))
		if _, err := s.Note(ctx, m, []string{"alice", "bob"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range HeadSize + 2 {
		say(fmt.Sprintf("c%03d", i))
	}
	say("c001") // dropped, back in front
	h, err := New(s.kv, s.nc).Head(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Convs) != HeadSize || h.Convs[0] != "c001" || h.Convs[1] != fmt.Sprintf("c%03d", HeadSize+1) || slices.Contains(h.Convs, "c000") || slices.Contains(h.Convs, "c002") {
		t.Fatalf("head %v", h.Convs[:3])
	}
	// c000 (seq 1), c001 (seq 2) and then c002 (seq 3, said at 3 s)
	// dropped: the floor is the time of c002's message.
	if h.Floor != 3e9 {
		t.Fatalf("floor %d, want 3e9", h.Floor)
	}
	// A joined conversation enters without activity.
	if err := s.Touch(ctx, "joined", []string{"alice"}); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.Head(ctx, "alice"); h.Convs[0] != "joined" || h.Floor < 3e9 {
		t.Fatalf("after a join: %v floor %d", h.Convs[:2], h.Floor)
	}

	// Seeding: carol has no head; a merge adds what fits and raises the
	// floor to the newest left out.
	if err := s.Touch(ctx, "x", []string{"carol"}); err != nil {
		t.Fatal(err)
	}
	seed := make([]string, HeadSize+5)
	acts := make([]uint64, len(seed))
	for i := range seed {
		seed[i], acts[i] = fmt.Sprintf("s%03d", i), uint64(1000-i)
	}
	if err := s.MergeHead(ctx, "carol", seed, acts, 7); err != nil {
		t.Fatal(err)
	}
	h, _ = New(s.kv, s.nc).Head(ctx, "carol")
	if len(h.Convs) != HeadSize || h.Convs[0] != "x" || h.Convs[1] != "s000" || h.Floor != acts[HeadSize-1] {
		t.Fatalf("seeded head %v… floor %d, want floor %d", h.Convs[:2], h.Floor, acts[HeadSize-1])
	}
	// An unreadable head vouches for nothing.
	if _, err := s.kv.Put(ctx, headKey("dave"), []byte{99}); err != nil {
		t.Fatal(err)
	}
	if h, err := s.Head(ctx, "dave"); err != nil || h.Floor != math.MaxUint64 {
		t.Fatalf("bad head: %+v %v", h, err)
	}
}

// TestActivity: the activity that orders the list is the time of the
// newest message or event, not its seq (seqs of different partition
// streams do not compare).
func TestActivity(t *testing.T) {
	early := &Summary{Seq: 900, TS: "2026-12-03T10:00:00.5Z"}
	late := &Summary{Seq: 3, TS: "2026-12-03T10:00:00.25Z"}
	later := &Summary{Seq: 2, TS: "2026-12-03T10:00:01Z"}
	if !(early.Activity() > late.Activity()) || !(later.Activity() > early.Activity()) {
		t.Fatalf("activities %d %d %d", early.Activity(), late.Activity(), later.Activity())
	}
	if a := (&Summary{}).Activity(); a != 0 {
		t.Fatalf("no message: %d", a)
	}
	if a := (&Summary{Seq: 1, TS: "t1"}).Activity(); a != 1 {
		t.Fatalf("unparsable ts: %d", a)
	}
}

// TestHeadOfSeqs: a head of version 1 (its floor a seq) vouches for
// nothing, also after a message moved a conversation into it, until
// MergeHead seeds it from the whole list.
func TestHeadOfSeqs(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	v1 := []byte{headVersion1, 42, 2, 'g', '1'} // floor 42, conversation g1
	if _, err := s.kv.Put(ctx, headKey("erin"), v1); err != nil {
		t.Fatal(err)
	}
	if h, err := s.Head(ctx, "erin"); err != nil || h.Floor != math.MaxUint64 || len(h.Convs) != 0 {
		t.Fatalf("version 1 head: %+v %v", h, err)
	}
	if err := s.Touch(ctx, "g2", []string{"erin"}); err != nil {
		t.Fatal(err)
	}
	if h, _ := New(s.kv, s.nc).Head(ctx, "erin"); h.Floor != math.MaxUint64 || !slices.Equal(h.Convs, []string{"g2"}) {
		t.Fatalf("touched version 1 head: %+v", h)
	}
	if err := s.MergeHead(ctx, "erin", []string{"g3", "g2"}, []uint64{5e9, 4e9}, 3e9); err != nil {
		t.Fatal(err)
	}
	if h, _ := New(s.kv, s.nc).Head(ctx, "erin"); h.Floor != 3e9 || h.Stale || !slices.Equal(h.Convs, []string{"g2", "g3"}) {
		t.Fatalf("seeded head: %+v", h)
	}
	enc := encodeHead(nil, Head{Convs: []string{"a", "bc"}, Floor: 7, Stale: true})
	if h, err := decodeHead(enc); err != nil || !h.Stale || h.Floor != 7 || !slices.Equal(h.Convs, []string{"a", "bc"}) {
		t.Fatalf("round trip: %+v %v", h, err)
	}
}
