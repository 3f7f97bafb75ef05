package search

import (
	"context"
	"encoding/json"
	"testing"

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
func (m mapIndex) Search(context.Context, Query) (Page, error) { return Page{}, nil }
func (m mapIndex) Close() error                                { return nil }

func msg(seq uint64, sender, kind string, ref uint64, text string) *protocol.Message {
	body, _ := json.Marshal(map[string]string{"text": text})
	return &protocol.Message{Conv: "c1", Seq: seq, Sender: sender, TS: "t", Kind: kind, Ref: ref, Body: body}
}

// A batch becomes the final state of each message it touches: edits and
// deletes by the sender apply (to the batch's version or the indexed
// one), others' are ignored, reactions change nothing.
func TestChanges(t *testing.T) {
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
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Doc{{Conv: "c1", Seq: 1, Sender: "alice", TS: "t", Text: "newer", EditSeq: 18}, {Conv: "c1", Seq: 12, Sender: "carol", TS: "t", Text: "hello", EditSeq: 13}}
	if len(put) != len(want) || put[0] != want[0] || put[1] != want[1] {
		t.Fatalf("put %+v, want %+v", put, want)
	}
	if len(del) != 1 || del[0] != (Key{"c1", 2}) {
		t.Fatalf("del %+v", del)
	}
}
