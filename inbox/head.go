package inbox

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// A user's head (i.h.<uid>) lists the conversations in which something
// was said most recently, at most HeadSize, with a floor: every
// conversation of the user that it does not name has an activity (the
// time of its newest message or event, Summary.Activity; not its seq,
// which does not compare across partition streams) at or below the floor. The first
// pages of the user's list are read from the head and the summaries of
// its conversations alone: those above the floor, in the order of their
// activity, begin the whole list. The fan-out moves a conversation to the
// front of every member's head as it delivers a message or event there,
// or adds members; when the head is full the least recently moved one
// drops off and the floor rises to its activity (read from its summary,
// so a drop never hides a newer conversation, however the partitions of
// the fan-out interleave). The gateway seeds a head from the whole list.

// HeadSize bounds a head: a page of up to 100 (the default) or more comes
// from it as long as the user left few of the conversations it names.
const HeadSize = 200

func headKey(uid string) string { return "i.h." + uid }

// headWidth bounds the heads written at once for one message.
const headWidth = 16

// Head is a user's head: the conversations, most recently moved first,
// and the floor.
type Head struct {
	Convs []string
	Floor uint64
	// Stale says the floor vouches for nothing yet: the head was written
	// when activities were seqs (version 1, before partition streams made
	// them times) or could not be read. Head reports its floor as
	// math.MaxUint64 until MergeHead seeds it from the whole list; Floor
	// meanwhile holds the activities it dropped.
	Stale bool
}

// Head returns uid's head; a user without one has an empty head with
// floor 0 (no conversation of theirs has had activity since the inbox
// was kept, or they have none). Activities are times (Summary.Activity).
func (s *Store) Head(ctx context.Context, uid string) (Head, error) {
	e, err := s.kv.Get(ctx, headKey(uid))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Head{}, nil
	}
	if err != nil {
		return Head{}, fmt.Errorf("inbox head of %s: %w", uid, err)
	}
	h, err := decodeHead(e.Value())
	if err != nil {
		// Unreadable (a newer version wrote it?): it vouches for nothing.
		return Head{Floor: math.MaxUint64, Stale: true}, nil
	}
	if h.Stale {
		h.Floor = math.MaxUint64
	}
	return h, nil
}

// Touch moves conv to the front of each of users' heads: conv had
// activity, or they joined it.
func (s *Store) Touch(ctx context.Context, conv string, users []string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(headWidth)
	for _, u := range users {
		g.Go(func() error {
			return s.updateHead(gctx, u, func(h Head) (Head, bool, error) {
				if len(h.Convs) > 0 && h.Convs[0] == conv {
					return h, false, nil
				}
				h.Convs = append([]string{conv}, slices.DeleteFunc(h.Convs, func(c string) bool { return c == conv })...)
				for len(h.Convs) > HeadSize {
					drop := h.Convs[len(h.Convs)-1]
					h.Convs = h.Convs[:len(h.Convs)-1]
					act, err := s.activity(gctx, drop)
					if err != nil {
						return h, false, err
					}
					h.Floor = max(h.Floor, act)
				}
				return h, true, nil
			})
		})
	}
	return g.Wait()
}

// activity returns conv's activity, from the summary this store wrote
// last or read now.
func (s *Store) activity(ctx context.Context, conv string) (uint64, error) {
	s.mu.Lock()
	c, ok := s.cache[conv]
	s.mu.Unlock()
	if !ok {
		var err error
		if c, err = s.read(ctx, summaryKey(conv)); err != nil {
			return 0, err
		}
	}
	return c.s.Activity(), nil
}

// MergeHead adds convs (the newest of uid's whole list, newest first,
// with their activities acts) behind what uid's head holds; floor is the
// activity of the newest conversation of the list after them. The gateway
// seeds heads with it.
func (s *Store) MergeHead(ctx context.Context, uid string, convs []string, acts []uint64, floor uint64) error {
	return s.updateHead(ctx, uid, func(h Head) (Head, bool, error) {
		n, stale := len(h.Convs), h.Stale
		// convs and floor are the whole list: a stale head is known again.
		h.Stale = false
		for i, c := range convs {
			if slices.Contains(h.Convs[:n], c) {
				continue
			}
			if len(h.Convs) >= HeadSize {
				floor = max(floor, acts[i])
				continue
			}
			h.Convs = append(h.Convs, c)
		}
		changed := len(h.Convs) > n || floor > h.Floor || stale
		h.Floor = max(h.Floor, floor)
		return h, changed, nil
	})
}

// updateHead changes uid's head by change with a compare-and-set on the
// revision this store last saw.
func (s *Store) updateHead(ctx context.Context, uid string, change func(Head) (Head, bool, error)) error {
	key := headKey(uid)
	s.mu.Lock()
	c, ok := s.heads[uid]
	s.mu.Unlock()
	for attempt := 0; attempt < 10; attempt++ {
		if !ok {
			e, err := s.kv.Get(ctx, key)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
				c = cachedHead{}
			case err != nil:
				return fmt.Errorf("inbox head of %s: %w", uid, err)
			default:
				h, err := decodeHead(e.Value())
				if err != nil {
					h = Head{Stale: true}
				}
				c = cachedHead{h: h, rev: e.Revision()}
			}
		}
		next, changed, err := change(Head{Convs: slices.Clone(c.h.Convs), Floor: c.h.Floor, Stale: c.h.Stale})
		if err != nil || !changed {
			return err
		}
		val := encodeHead(nil, next)
		var rev uint64
		if c.rev == 0 {
			rev, err = s.kv.Create(ctx, key, val)
		} else {
			rev, err = s.kv.Update(ctx, key, val, c.rev)
		}
		if err == nil {
			s.mu.Lock()
			if len(s.heads) >= s.max {
				s.heads = make(map[string]cachedHead)
			}
			s.heads[uid] = cachedHead{h: next, rev: rev}
			s.mu.Unlock()
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongRevision(err) {
			return fmt.Errorf("inbox head of %s: %w", uid, err)
		}
		ok = false
	}
	return fmt.Errorf("inbox head of %s: changed too often", uid)
}

type cachedHead struct {
	h   Head
	rev uint64
}

// headVersion leads an encoded head. Version 1 held seqs as activities
// (before partition streams); it decodes as a stale head without its
// conversations, which vouched for seqs only.
const (
	headVersion1 = 1
	headVersion  = 2
)

const headFlagStale = 1

// encodeHead: version, flags, floor, then each id with its length.
func encodeHead(dst []byte, h Head) []byte {
	dst = append(dst, headVersion)
	var flags byte
	if h.Stale {
		flags |= headFlagStale
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, h.Floor)
	for _, id := range h.Convs {
		dst = append(dst, byte(len(id)))
		dst = append(dst, id...)
	}
	return dst
}

func decodeHead(b []byte) (Head, error) {
	if len(b) > 0 && b[0] == headVersion1 {
		return Head{Stale: true}, nil
	}
	if len(b) < 2 || b[0] != headVersion {
		return Head{}, errBadSummary
	}
	d := decoder{b: b[2:]}
	h := Head{Stale: b[1]&headFlagStale != 0, Floor: d.uvarint()}
	if d.err {
		return Head{}, errBadSummary
	}
	b = d.b
	for len(b) > 0 {
		n := int(b[0])
		if n == 0 || n+1 > len(b) {
			return Head{}, errBadSummary
		}
		h.Convs = append(h.Convs, string(b[1:n+1]))
		b = b[n+1:]
	}
	return h, nil
}
