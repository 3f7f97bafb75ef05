// Package inbox keeps what users' conversation lists show (issue 15): per
// conversation a compact summary of its newest item (the preview, the
// activity that orders the list, the seqs unread counts are taken from)
// and per member the seqs of the messages that mention them. The fan-out
// writes them as it delivers each item (Store.Note), so the gateway
// answers a page of the list with a few batched reads (Store.Summaries,
// Store.Mentions) instead of history queries per conversation.
//
// Keys live in the CONVERSATIONS bucket under i.: i.p.<conv> for a
// summary, i.n.<conv>.<uid> for a member's mentions, i.h.<uid> for the
// user's most recently active conversations (head.go); values are binary
// (summary.go), never JSON.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

func summaryKey(conv string) string      { return "i.p." + conv }
func mentionKey(conv, uid string) string { return "i.n." + conv + "." + uid }

// Store reads and writes the summaries in a KV bucket.
type Store struct {
	kv     jetstream.KeyValue
	nc     *nats.Conn
	prefix string // subject prefix of the bucket's keys
	direct string // the bucket stream's direct get subject

	mu    sync.Mutex
	cache map[string]cached     // conv → the summary last written, with its revision
	heads map[string]cachedHead // uid → the head last written, with its revision
	max   int
}

type cached struct {
	s   *Summary
	rev uint64
}

// New returns a Store over kv (the CONVERSATIONS bucket) on nc, which
// must allow direct gets of its stream.
func New(kv jetstream.KeyValue, nc *nats.Conn) *Store {
	b := kv.Bucket()
	return &Store{
		kv: kv, nc: nc,
		prefix: schema.KVKey(b, ""),
		direct: schema.DirectGetAPI(schema.KVStream(b)),
		cache:  make(map[string]cached), heads: make(map[string]cachedHead), max: 50_000,
	}
}

// mentionWidth bounds the mention lists written at once for one message.
const mentionWidth = 16

// Note takes m, conv's next item in stream order, into conv's summary,
// the heads of its members (a message or event) and the mention lists
// of the members it mentions (all of members for @all), and reports
// whether the summary changed. A redelivered item changes nothing more.
func (s *Store) Note(ctx context.Context, m *protocol.Message, members []string) (bool, error) {
	changed, err := s.noteSummary(ctx, m)
	if err != nil || (m.Kind != protocol.KindMessage && m.Kind != protocol.KindEvent) {
		return changed, err
	}
	// Also when redelivered: the process may have stopped between the
	// summary and the rest, which a second time changes nothing.
	if err := s.Touch(ctx, m.Conv, members); err != nil {
		return changed, err
	}
	if m.Kind != protocol.KindMessage || len(m.Mentions) == 0 {
		return changed, nil
	}
	var targets []string
	if slices.Contains(m.Mentions, protocol.MentionAll) {
		targets = members
	} else {
		for _, u := range m.Mentions {
			if slices.Contains(members, u) {
				targets = append(targets, u)
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(mentionWidth)
	for _, u := range targets {
		if u == m.Sender {
			continue
		}
		g.Go(func() error { return s.addMention(gctx, m.Conv, u, m.Seq) })
	}
	return changed, g.Wait()
}

// Summary returns conv's summary's Top and preview, from what this store
// last wrote when it wrote it (the fan-out worker of conv's partition is
// its only writer), else read.
func (s *Store) Summary(ctx context.Context, conv string) (uint64, *protocol.Last, bool, error) {
	s.mu.Lock()
	c, ok := s.cache[conv]
	s.mu.Unlock()
	if !ok {
		var err error
		if c, err = s.read(ctx, summaryKey(conv)); err != nil {
			return 0, nil, false, err
		}
	}
	if c.rev == 0 {
		return 0, nil, false, nil
	}
	return c.s.Top, c.s.Last(), true, nil
}

// noteSummary applies m to the summary with a compare-and-set on the
// revision last seen, reading it again when another writer moved it.
func (s *Store) noteSummary(ctx context.Context, m *protocol.Message) (bool, error) {
	key := summaryKey(m.Conv)
	s.mu.Lock()
	c, ok := s.cache[m.Conv]
	s.mu.Unlock()
	for attempt := 0; attempt < 10; attempt++ {
		if !ok {
			var err error
			if c, err = s.read(ctx, key); err != nil {
				return false, err
			}
		}
		next := *c.s
		next.Recent = slices.Clone(c.s.Recent)
		if !next.apply(m) {
			return false, nil
		}
		val := next.encode(nil)
		var rev uint64
		var err error
		if c.rev == 0 {
			rev, err = s.kv.Create(ctx, key, val)
		} else {
			rev, err = s.kv.Update(ctx, key, val, c.rev)
		}
		if err == nil {
			s.remember(m.Conv, cached{s: &next, rev: rev})
			return true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongRevision(err) {
			return false, fmt.Errorf("inbox summary of %s: %w", m.Conv, err)
		}
		ok = false
	}
	return false, fmt.Errorf("inbox summary of %s: changed too often", m.Conv)
}

func (s *Store) read(ctx context.Context, key string) (cached, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return cached{s: &Summary{}}, nil
	}
	if err != nil {
		return cached{}, fmt.Errorf("inbox %s: %w", key, err)
	}
	sum, err := decodeSummary(e.Value())
	if err != nil {
		// Written by a newer version or damaged: start again from here.
		sum = &Summary{}
	}
	return cached{s: sum, rev: e.Revision()}, nil
}

// remember keeps what was written; past max entries the cache starts
// again empty: a miss costs one read.
func (s *Store) remember(conv string, c cached) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) >= s.max {
		s.cache = make(map[string]cached)
	}
	s.cache[conv] = c
}

func isWrongRevision(err error) bool { return schema.IsWrongLastSeq(err) }

// addMention adds seq to uid's mentions in conv, keeping the newest
// protocol.MaxMentionCount.
func (s *Store) addMention(ctx context.Context, conv, uid string, seq uint64) error {
	key := mentionKey(conv, uid)
	for attempt := 0; attempt < 10; attempt++ {
		var seqs []uint64
		var rev uint64
		e, err := s.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("inbox mentions %s/%s: %w", conv, uid, err)
		default:
			rev = e.Revision()
			seqs, _ = decodeSeqs(e.Value())
		}
		if len(seqs) > 0 && seqs[len(seqs)-1] >= seq {
			return nil // a redelivery
		}
		seqs = append(seqs, seq)
		if len(seqs) > protocol.MaxMentionCount {
			seqs = seqs[len(seqs)-protocol.MaxMentionCount:]
		}
		val := encodeSeqs(nil, seqs)
		if rev == 0 {
			_, err = s.kv.Create(ctx, key, val)
		} else {
			_, err = s.kv.Update(ctx, key, val, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongRevision(err) {
			return fmt.Errorf("inbox mentions %s/%s: %w", conv, uid, err)
		}
	}
	return fmt.Errorf("inbox mentions %s/%s: changed too often", conv, uid)
}

// Summaries returns the summaries of convs that have one, read in
// batches of direct gets.
func (s *Store) Summaries(ctx context.Context, convs []string) (map[string]*Summary, error) {
	out := make(map[string]*Summary, len(convs))
	var mu sync.Mutex
	keys := make([]string, len(convs))
	for i, c := range convs {
		keys[i] = summaryKey(c)
	}
	err := s.getMany(ctx, keys, func(key string, val []byte) {
		sum, err := decodeSummary(val)
		if err != nil {
			return
		}
		mu.Lock()
		out[strings.TrimPrefix(key, "i.p.")] = sum
		mu.Unlock()
	})
	return out, err
}

// Mentions returns uid's mention seqs in each of convs that has any.
func (s *Store) Mentions(ctx context.Context, uid string, convs []string) (map[string][]uint64, error) {
	out := make(map[string][]uint64)
	var mu sync.Mutex
	keys := make([]string, len(convs))
	for i, c := range convs {
		keys[i] = mentionKey(c, uid)
	}
	suffix := "." + uid
	err := s.getMany(ctx, keys, func(key string, val []byte) {
		seqs, err := decodeSeqs(val)
		if err != nil || len(seqs) == 0 {
			return
		}
		conv := strings.TrimSuffix(strings.TrimPrefix(key, "i.n."), suffix)
		mu.Lock()
		out[conv] = seqs
		mu.Unlock()
	})
	return out, err
}

// multiLastMax is the most subjects one multi_last direct get may
// answer (nats-server's maxAllowedResponses).
const multiLastMax = 1000

// getMany reads the current values of keys with multi_last direct gets,
// up to multiLastMax keys each, at most 4 at once; fn gets each key that
// has a value (not deleted), maybe concurrently.
func (s *Store) getMany(ctx context.Context, keys []string, fn func(key string, val []byte)) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for start := 0; start < len(keys); start += multiLastMax {
		chunk := keys[start:min(start+multiLastMax, len(keys))]
		g.Go(func() error { return s.multiLast(gctx, chunk, fn) })
	}
	return g.Wait()
}

func (s *Store) multiLast(ctx context.Context, keys []string, fn func(key string, val []byte)) error {
	req := make([]byte, 0, 32+len(keys)*(len(s.prefix)+40))
	req = append(req, `{"multi_last":[`...)
	for i, k := range keys {
		if i > 0 {
			req = append(req, ',')
		}
		req = protocol.AppendString(req, s.prefix+k)
	}
	req = append(req, "]}"...)
	ch := make(chan *nats.Msg, len(keys)+2)
	inbox := s.nc.NewRespInbox()
	sub, err := s.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return fmt.Errorf("inbox read: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := s.nc.PublishRequest(s.direct, inbox, req); err != nil {
		return fmt.Errorf("inbox read: %w", err)
	}
	for {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-ctx.Done():
			return fmt.Errorf("inbox read: %w", ctx.Err())
		}
		if status := m.Header.Get("Status"); status != "" && len(m.Data) == 0 {
			switch status {
			case "204", "404": // end of batch, none found
				return nil
			case "503":
				return fmt.Errorf("inbox read: %w", nats.ErrNoResponders)
			}
			return fmt.Errorf("inbox read: status %s %s", status, m.Header.Get("Description"))
		}
		if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
			continue
		}
		key, ok := strings.CutPrefix(m.Header.Get(jetstream.SubjectHeader), s.prefix)
		if !ok {
			continue
		}
		fn(key, m.Data)
	}
}
