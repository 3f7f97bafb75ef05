// Package kvbatch reads the current values of many keys of a KV bucket in
// a few requests: JetStream's batched direct get (multi_last), one
// request for up to MaxKeys keys instead of one Get per key. The inbox
// reads a page's summaries, markers, mutes and documents with it (issue
// 15: a page must not cost one store query per conversation).
package kvbatch

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// MaxKeys is the most subjects one multi_last direct get may answer
// (nats-server's maxAllowedResponses).
const MaxKeys = 1000

// inFlight bounds the requests of one GetMany under way at once.
const inFlight = 4

// GetMany reads the current values of keys of bucket with multi_last
// direct gets on nc (whose user needs the bucket stream's bare
// DIRECT.GET), up to MaxKeys keys each, at most 4 at once. fn gets each
// key that has a value (not deleted or purged) with its revision, maybe
// concurrently; keys without one are not passed. Like a KV Get, any
// replica of the bucket may answer.
func GetMany(ctx context.Context, nc *nats.Conn, bucket string, keys []string, fn func(key string, rev uint64, val []byte)) error {
	prefix := schema.KVKey(bucket, "")
	direct := schema.DirectGetAPI(schema.KVStream(bucket))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(inFlight)
	for start := 0; start < len(keys); start += MaxKeys {
		chunk := keys[start:min(start+MaxKeys, len(keys))]
		g.Go(func() error { return multiLast(gctx, nc, direct, prefix, chunk, fn) })
	}
	return g.Wait()
}

func multiLast(ctx context.Context, nc *nats.Conn, direct, prefix string, keys []string, fn func(key string, rev uint64, val []byte)) error {
	req := make([]byte, 0, 32+len(keys)*(len(prefix)+40))
	req = append(req, `{"multi_last":[`...)
	for i, k := range keys {
		if i > 0 {
			req = append(req, ',')
		}
		req = protocol.AppendString(req, prefix+k)
	}
	req = append(req, "]}"...)
	ch := make(chan *nats.Msg, len(keys)+2)
	inbox := nc.NewRespInbox()
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return fmt.Errorf("kv batch read: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(direct, inbox, req); err != nil {
		return fmt.Errorf("kv batch read: %w", err)
	}
	for {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-ctx.Done():
			return fmt.Errorf("kv batch read: %w", ctx.Err())
		}
		if status := m.Header.Get("Status"); status != "" && len(m.Data) == 0 {
			switch status {
			case "204", "404": // end of batch, none found
				return nil
			case "503":
				return fmt.Errorf("kv batch read: %w", nats.ErrNoResponders)
			}
			return fmt.Errorf("kv batch read: status %s %s", status, m.Header.Get("Description"))
		}
		if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
			continue
		}
		key, ok := strings.CutPrefix(m.Header.Get(jetstream.SubjectHeader), prefix)
		if !ok {
			continue
		}
		rev, _ := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		fn(key, rev, m.Data)
	}
}
