package search

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// mapIndex is enough of an Index for changes: Get.
type mapIndex map[Key]Doc

func (m mapIndex) Write(context.Context, []Doc, []Key) error { return nil }
func (m mapIndex) Get(_ context.Context, k Key) (*Doc, error) {
	if d, ok := m[k]; ok {
		return &d, nil
	}
	return nil, ErrNotFound
}
func (m mapIndex) Search(context.Context, Query) (Page, error)    { return Page{}, nil }
func (m mapIndex) Close() error                                   { return nil }
func (m mapIndex) Expire(context.Context, time.Time) (int, error) { return 0, nil }

func msg(seq uint64, sender, kind string, ref uint64, text string) *protocol.Message {
	body, _ := json.Marshal(map[string]string{"text": text})
	return &protocol.Message{Conv: "c1", Seq: seq, Sender: sender, TS: "t", Kind: kind, Ref: ref, Body: body}
}

// A batch becomes the final state of each message it touches: edits and
// deletes by the sender apply (to the batch's version or the indexed
// one), others' are ignored, reactions change nothing. A disappearing
// message is indexed with its expires_at, however far off, and keeps it
// through an edit; one that expired already is not.
func TestChanges(t *testing.T) {
	now := time.Now()
	later, gone := protocol.FormatTime(now.Add(90*24*time.Hour)), protocol.FormatTime(now.Add(-time.Second))
	expiring := func(m *protocol.Message, at string) *protocol.Message {
		m.ExpiresAt = at
		return m
	}
	idx := mapIndex{{"c1", 1}: {Conv: "c1", Seq: 1, Sender: "alice", TS: "t", Text: "old"}, {"c1", 2}: {Conv: "c1", Seq: 2, Sender: "bob", TS: "t", Text: "bob's"}}
	put, del, err := changes(context.Background(), idx, []*protocol.Message{
		msg(10, "alice", protocol.KindEdit, 1, "new"),     // indexed target
		msg(11, "mallory", protocol.KindEdit, 1, "evil"),  // not the sender
		msg(12, "carol", protocol.KindMessage, 0, "hi"),   // new
		msg(13, "carol", protocol.KindEdit, 12, "hello"),  // target in the batch
		msg(14, "bob", protocol.KindDelete, 2, ""),        // indexed target deleted
		msg(15, "bob", protocol.KindEdit, 2, "too late"),  // deleted before
		msg(16, "carol", protocol.KindReaction, 12, "👍"),  // nothing
		msg(17, "alice", protocol.KindEdit, 99, "nobody"), // no target
		msg(18, "alice", protocol.KindEdit, 1, "newer"),
		expiring(msg(19, "carol", protocol.KindMessage, 0, "fleeting"), later),
		expiring(msg(20, "carol", protocol.KindEdit, 19, "fleeting, edited"), later),
		expiring(msg(21, "carol", protocol.KindMessage, 0, "gone"), gone),
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []Doc{{Conv: "c1", Seq: 1, Sender: "alice", TS: "t", Text: "newer", EditSeq: 18}, {Conv: "c1", Seq: 12, Sender: "carol", TS: "t", Text: "hello", EditSeq: 13},
		{Conv: "c1", Seq: 19, Sender: "carol", TS: "t", Text: "fleeting, edited", EditSeq: 20, ExpiresAt: later}}
	if !slices.Equal(put, want) {
		t.Fatalf("put %+v, want %+v", put, want)
	}
	if !slices.Equal(del, []Key{{"c1", 2}, {"c1", 21}}) {
		t.Fatalf("del %+v", del)
	}
}
