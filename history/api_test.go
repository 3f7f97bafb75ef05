package history_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// TestAPIServesTheReader checks the history API, whose replies are
// encoded by hand, against the Reader it serves: through Remote the same
// pages (edits, tombstones, reactions, prev), messages, last seqs and
// counts, and each reply decodes to what json.Marshal made of it before.
func TestAPIServesTheReader(t *testing.T) {
	e := newEnv(t)
	seqs := e.say("c", "a", "b <&> \u2028", "c", "d")
	e.publish("c", envelope("u1", protocol.KindEdit, seqs[0], "A"))
	e.publish("c", envelope("u1", protocol.KindDelete, seqs[2], ""))
	e.publish("c", envelope("u3", protocol.KindReaction, seqs[3], "+1"))
	w := run(t, history.NewWriter(history.WriterConfig{Batch: 3}, e.js, e.store))
	e.waitFloor(7)
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	e.say("c", "e", "f")
	e.publish("c", envelope("u1", protocol.KindEdit, seqs[1], "B"))

	r := e.reader()
	nc := e.js.Conn()
	svc, err := history.StartAPI(nc, r, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	remote := history.NewRemote(nc, 5*time.Second)
	ctx := ctxT(t)

	for _, limit := range []int{1, 3, 50} {
		for after := uint64(0); after <= 10; after++ {
			want, wantMore, err := r.After(ctx, "c", after, limit)
			if err != nil {
				t.Fatal(err)
			}
			got, more, err := remote.After(ctx, "c", after, limit)
			if err != nil || more != wantMore || !reflect.DeepEqual(got, want) {
				t.Fatalf("After(%d, %d) through the API: %v more=%v %v, want %v more=%v", after, limit, texts(got), more, err, texts(want), wantMore)
			}
			want, wantMore, err = r.Before(ctx, "c", after, limit)
			if err != nil {
				t.Fatal(err)
			}
			got, more, err = remote.Before(ctx, "c", after, limit)
			if err != nil || more != wantMore || !reflect.DeepEqual(got, want) {
				t.Fatalf("Before(%d, %d) through the API: %v more=%v %v, want %v more=%v", after, limit, texts(got), more, err, texts(want), wantMore)
			}
		}
	}
	for seq := uint64(1); seq <= 10; seq++ {
		want, wantErr := r.Get(ctx, "c", seq)
		got, err := remote.Get(ctx, "c", seq)
		if (err == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("Get(%d) through the API: %+v %v, want %+v %v", seq, got, err, want, wantErr)
		}
	}
	if got, err := remote.Last(ctx, "c"); err != nil || got != 10 {
		t.Fatalf("Last through the API: %d %v", got, err)
	}
	for after := uint64(0); after <= 10; after += 3 {
		want, err := r.CountAfter(ctx, "c", after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := remote.CountAfter(ctx, "c", after, 100); err != nil || got != want {
			t.Fatalf("CountAfter(%d) through the API: %d %v, want %d", after, got, err, want)
		}
	}

	// The reply itself, against what json.Marshal makes of the page.
	rows, more, err := r.After(ctx, "c", 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := nc.Request(schema.HistoryAPI("after"), []byte(`{"conv":"c","limit":5}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := json.Marshal(&history.APIResponse{Messages: rows, More: more})
	var got, want history.APIResponse
	if err := json.Unmarshal(msg.Data, &got); err != nil {
		t.Fatalf("reply %s: %v", msg.Data, err)
	}
	if err := json.Unmarshal(old, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("reply %s decodes differently from %s", msg.Data, old)
	}
}
