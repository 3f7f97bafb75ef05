package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// checkAck fails unless appendAck encodes a byte for byte as json.Marshal.
func checkAck(t *testing.T, a *protocol.Ack) {
	t.Helper()
	want, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendAck(nil, a); string(got) != string(want) {
		t.Fatalf("appendAck(%+v) = %s; json.Marshal = %s", a, got, want)
	}
}

func TestAppendAckIsJSONMarshal(t *testing.T) {
	for _, a := range []protocol.Ack{
		{Type: protocol.TypeAck, ID: "42", Conv: "d_x", Seq: 17, TS: "2026-12-03T21:00:00.123456789Z"},
		{Type: protocol.TypeAck, Conv: "d_x", Seq: 0, TS: ""},
		{Type: protocol.TypeAck, ID: "7", Conv: "g_y", Seq: 1<<64 - 1, TS: "t", Duplicate: true, ExpiresAt: "2026-12-04T00:00:00Z"},
		{Type: protocol.TypeAck, ID: `a"b\c<d>&e` + "\u2028\x01é", Conv: "c", Seq: 3, TS: "t"},
		{Type: protocol.TypeAck, ID: "f", Conv: "c", Seq: 3, TS: "t", Files: []protocol.File{{ID: "f1", URL: "https://x/?a=1&b=2", ContentType: "image/png", Size: 10, Expires: "e"}}},
	} {
		checkAck(t, &a)
	}
}

func FuzzAppendAck(f *testing.F) {
	f.Add("42", "d_x", uint64(17), "2026-12-03T21:00:00Z", false, "")
	f.Add(`<"\>`, "c", uint64(0), "", true, "2026-12-04T00:00:00Z")
	f.Fuzz(func(t *testing.T, id, conv string, seq uint64, ts string, dup bool, exp string) {
		for _, s := range []string{id, conv, ts, exp} {
			if !utf8.ValidString(s) {
				return // the gateway's strings are UTF-8 (decodeRequest)
			}
		}
		checkAck(t, &protocol.Ack{Type: protocol.TypeAck, ID: id, Conv: conv, Seq: seq, TS: ts, Duplicate: dup, ExpiresAt: exp})
	})
}

// pubAckOfNATS is what jetstream.PublishMsg makes of JetStream's answer
// to a publish (nats.go's publishMsg, after its request).
func pubAckOfNATS(data []byte) (*jetstream.PubAck, error) {
	var resp struct {
		Type  string              `json:"type"`
		Error *jetstream.APIError `json:"error,omitempty"`
		*jetstream.PubAck
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, jetstream.ErrInvalidJSAck
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("nats: %w", resp.Error)
	}
	if resp.PubAck == nil || resp.PubAck.Stream == "" {
		return nil, jetstream.ErrInvalidJSAck
	}
	return resp.PubAck, nil
}

// checkPubAck fails unless decodePubAck answers data as nats.go does:
// the same PubAck, or an error of the same text that errors.As finds the
// same APIError in.
func checkPubAck(t *testing.T, data []byte) {
	t.Helper()
	want, wantErr := pubAckOfNATS(data)
	got, err := decodePubAck(data, "CHAT")
	if !reflect.DeepEqual(got, want) || (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
		t.Fatalf("decodePubAck(%q) = %+v, %v; nats.go %+v, %v", data, got, err, want, wantErr)
	}
	var a, b *jetstream.APIError
	if errors.As(err, &a) != errors.As(wantErr, &b) || (a != nil && *a != *b) {
		t.Fatalf("decodePubAck(%q): API error %+v; nats.go %+v", data, a, b)
	}
	if errors.Is(wantErr, jetstream.ErrInvalidJSAck) != errors.Is(err, jetstream.ErrInvalidJSAck) {
		t.Fatalf("decodePubAck(%q) = %v; nats.go %v", data, err, wantErr)
	}
}

var pubAckSeeds = []string{
	`{"stream":"CHAT","seq":17}`,
	`{"stream":"CHAT_2","domain":"hub","seq":17}`,
	`{"stream":"CHAT","seq":17,"duplicate": true}`,
	`{"stream":"CHAT","seq":17,"duplicate": true,"batch":"b","count":3}`,
	`{"stream":"CHAT","seq":18446744073709551615}`,
	`{"stream":"CHAT","seq":18446744073709551616}`,
	`{"stream":"CHAT","seq":-1}`,
	`{"stream":"","seq":1}`,
	`{"seq":1}`,
	`{"Stream":"CHAT","seq":1}`,
	`{"stream":"CH\u0041T","seq":1}`,
	`{"stream":"CHAT","seq":1,"val":"x"}`,
	`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 5"},"stream":"CHAT","seq":0}`,
	`{"error":{"code":503,"err_code":10008,"description":"JetStream cluster not available"}}`,
	`{"type":"io.nats.jetstream.api.v1.pub_ack","stream":"CHAT","seq":1}`,
	`{"stream":"CHAT","seq":1}x`,
	`{"stream":"CHAT","seq":1`,
	`{}`,
	`null`,
	``,
	`+OK`,
}

func TestDecodePubAckIsNATS(t *testing.T) {
	for _, s := range pubAckSeeds {
		checkPubAck(t, []byte(s))
		for i := range len(s) {
			checkPubAck(t, []byte(s[:i]))
		}
	}
	if a, err := decodePubAck([]byte(pubAckSeeds[0]), "CHAT"); err != nil || a.Stream != "CHAT" || a.Sequence != 17 {
		t.Fatalf("decodePubAck = %+v, %v", a, err)
	}
}

func FuzzDecodePubAck(f *testing.F) {
	for _, s := range pubAckSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkPubAck(t, data) })
}

// A send's headers share one array of values; setting one again on a
// retry changes it in place, and changes only it.
func TestSendHeader(t *testing.T) {
	h := newSendHeader("id-1", "sess-1", sendView{checked: true, subject: "chat.member.c", seq: 12})
	want := nats.Header{
		schema.HeaderMsgID: {"id-1"}, schema.HeaderOrigin: {"sess-1"}, jetstream.ExpectedStreamHeader: {""},
		schema.HeaderExpectedLastSubjectSeq: {"12"}, schema.HeaderExpectedLastSubjectSeqSubject: {"chat.member.c"},
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("newSendHeader = %v, want %v", h, want)
	}
	setHeader(h, schema.HeaderExpectedLastSubjectSeq, "13")
	setHeader(h, jetstream.ExpectedStreamHeader, "CHAT")
	h.Set(schema.HeaderTTL, "5s")
	want[schema.HeaderExpectedLastSubjectSeq] = []string{"13"}
	want[jetstream.ExpectedStreamHeader] = []string{"CHAT"}
	want[schema.HeaderTTL] = []string{"5s"}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("after sets: %v, want %v", h, want)
	}
	if u := newSendHeader("id-2", "sess-2", sendView{}); len(u) != 3 || u.Get(schema.HeaderExpectedLastSubjectSeq) != "" {
		t.Fatalf("unchecked view: %v, want the id, origin and stream alone", u)
	}
}
