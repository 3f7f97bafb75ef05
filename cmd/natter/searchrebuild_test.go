package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/search"
	"github.com/natter-chat/natter/search/bleveindex"
)

// natter search rebuild fills a new embedded index from the embedded
// history store of a stopped natter serve: the messages the stream no
// longer holds are found; a second run changes nothing.
func TestSearchRebuild(t *testing.T) {
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := natsrv.Start(ctx, natsrv.Config{Listen: "127.0.0.1:-1", DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, schema.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := kv.Put(ctx, fmt.Sprintf("c.c%d", i), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	var last uint64
	for i := range 12 {
		body := fmt.Sprintf(`{"sender":"u1","client_id":"k%d","body":{"text":"word%d common"}}`, i, i)
		ack, err := js.Publish(ctx, schema.Msg(fmt.Sprintf("c%d", i%3)), []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Sequence
	}
	nc.Close()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run([]string{"history", "rebuild", "--data", data}, &out, &errOut); err != nil {
		t.Fatalf("history rebuild: %v\n%s", err, errOut.String())
	}
	// The hot window passes: the stream keeps only the last message.
	if srv, err = natsrv.Start(ctx, natsrv.Config{Listen: "127.0.0.1:-1", DataDir: data}); err != nil {
		t.Fatal(err)
	}
	if nc, err = srv.Connect("test"); err != nil {
		t.Fatal(err)
	}
	js, _ = jetstream.New(nc)
	chat, err := js.Stream(ctx, schema.StreamChat)
	if err == nil {
		err = chat.Purge(ctx, jetstream.WithPurgeSequence(last))
	}
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	for i := range 2 {
		out.Reset()
		if err := run([]string{"search", "rebuild", "--data", data}, &out, &errOut); err != nil {
			t.Fatalf("search rebuild %d: %v\n%s", i, err, errOut.String())
		}
		want := "3 conversations, 12 rows read, 12 messages indexed, 0 removed (deleted, erased or disappearing), 1 passes, in "
		if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), fmt.Sprintf("goes on from CHAT after seq %d", last-1)) {
			t.Fatalf("run %d printed %q", i, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(data, "search-rebuild.json")); !os.IsNotExist(err) {
		t.Fatalf("progress file left: %v", err)
	}
	idx, err := bleveindex.New(bleveindex.Config{Dir: filepath.Join(data, "search")})
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	p, err := idx.Search(ctx, search.Query{Text: "common", Convs: []string{"c0", "c1", "c2"}, Limit: 100})
	if err != nil || len(p.Hits) != 12 || p.Hits[0].Seq != last || p.Hits[11].Seq != 1 {
		t.Fatalf("search after the rebuild: %+v, %v", p, err)
	}
}
