package localstore

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/natter-chat/natter/protocol"
)

// TestRowFormats checks that format 2 keeps every field and that a row of
// format 1, written before replies and threads, still reads.
func TestRowFormats(t *testing.T) {
	m := &protocol.Message{Conv: "c", Seq: 9, Sender: "u1", ClientID: "k", TS: "t", Kind: "", Ref: 0,
		EditSeq: 12, Deleted: true, DeletedBy: "mod", ReplyTo: 3,
		Quote:  &protocol.Quote{Seq: 3, Sender: "u2", Kind: "", Snippet: "hi \"there\"", Deleted: true},
		Thread: 2, Mentions: []string{"u2", protocol.MentionAll}, ThreadCount: 4, ThreadLastSeq: 8,
		Body: []byte(`{}`)}
	got, err := decodeRow("c", 9, encodeRow(m))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("format 2 round trip:\n got %+v %+v\nwant %+v %+v", got, got.Quote, m, m.Quote)
	}

	v1 := []byte{rowFormat1, flagDeleted}
	v1 = binary.AppendUvarint(v1, 5) // edit seq
	v1 = binary.AppendUvarint(v1, 0) // ref
	for _, s := range []string{"u1", "k", "t", ""} {
		v1 = appendString(v1, s)
	}
	v1 = append(v1, `{"a":1}`...)
	got, err = decodeRow("c", 4, v1)
	if err != nil {
		t.Fatal(err)
	}
	want := &protocol.Message{Conv: "c", Seq: 4, Sender: "u1", ClientID: "k", TS: "t", EditSeq: 5, Deleted: true, Body: []byte(`{"a":1}`)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("format 1: got %+v, want %+v", got, want)
	}
	for _, bad := range [][]byte{{3, 0}, {rowFormat, flagQuote, 0, 0, 0, 0, 0, 0, 1}, {rowFormat, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x03}} {
		if _, err := decodeRow("c", 1, bad); err == nil {
			t.Errorf("decodeRow(%v) succeeded", bad)
		}
	}
}
