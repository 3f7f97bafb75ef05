package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Block lists, b.<uid>, hold the users uid blocked, sorted; add rings,
// ar.<uid>, hold when others last added uid to a conversation. Both
// change only by compare-and-set on their revision and stay bounded:
// MaxBlocked users, and as many times as the add limit allows.

// MaxBlocked bounds one user's block list.
const MaxBlocked = 1000

const (
	blockPrefix   = "b."
	addRingPrefix = "ar."
	// casAttempts bounds the compare-and-set retries of one change.
	casAttempts = 50
)

func blockKey(uid string) string   { return blockPrefix + uid }
func addRingKey(uid string) string { return addRingPrefix + uid }

// blockList is the value of b.<uid>.
type blockList struct {
	Users []string `json:"users"`
}

// addRing is the value of ar.<uid>: unix seconds of the latest adds by
// others, oldest first.
type addRing struct {
	At []int64 `json:"at"`
}

// Blocked returns the users uid blocked, sorted, and the revision of the
// list (0 when uid never blocked anyone).
func (s *Store) Blocked(ctx context.Context, uid string) ([]string, uint64, error) {
	val, rev, err := s.getKey(ctx, blockKey(uid))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get block list of %s: %w", uid, err)
	}
	var l blockList
	if err := json.Unmarshal(val, &l); err != nil {
		return nil, 0, fmt.Errorf("decode block list of %s: %w", uid, err)
	}
	return l.Users, rev, nil
}

// HasBlocked reports whether uid blocked other.
func (s *Store) HasBlocked(ctx context.Context, uid, other string) (bool, error) {
	users, _, err := s.Blocked(ctx, uid)
	if err != nil {
		return false, err
	}
	_, found := slices.BinarySearch(users, other)
	return found, nil
}

// Block adds other to uid's block list; blocking a user already blocked
// changes nothing. Past MaxBlocked it returns ErrTooLarge.
func (s *Store) Block(ctx context.Context, uid, other string) error {
	if uid == other {
		return fmt.Errorf("%w: you cannot block yourself", ErrBadRequest)
	}
	return s.updateBlocks(ctx, uid, func(l *blockList) (bool, error) {
		i, found := slices.BinarySearch(l.Users, other)
		if found {
			return false, nil
		}
		if len(l.Users) >= MaxBlocked {
			return false, fmt.Errorf("%w: you can block at most %d users; unblock someone first", ErrTooLarge, MaxBlocked)
		}
		l.Users = slices.Insert(l.Users, i, other)
		return true, nil
	})
}

// Unblock removes other from uid's block list, if there.
func (s *Store) Unblock(ctx context.Context, uid, other string) error {
	return s.updateBlocks(ctx, uid, func(l *blockList) (bool, error) {
		i, found := slices.BinarySearch(l.Users, other)
		if !found {
			return false, nil
		}
		l.Users = slices.Delete(l.Users, i, i+1)
		return true, nil
	})
}

func (s *Store) updateBlocks(ctx context.Context, uid string, fn func(*blockList) (bool, error)) error {
	for attempt := range casAttempts {
		if attempt > 0 {
			// Lost a race with another writer of the same list: a short
			// random pause, so that several writers (a user's devices)
			// do not keep colliding until one runs out of attempts.
			time.Sleep(time.Duration(rand.Int64N(int64(min(attempt, 10)) * int64(time.Millisecond))))
		}
		users, rev, err := s.Blocked(ctx, uid)
		if err != nil {
			return err
		}
		l := blockList{Users: users}
		changed, err := fn(&l)
		if err != nil || !changed {
			return err
		}
		if l.Users == nil {
			l.Users = []string{}
		}
		val, _ := json.Marshal(l)
		if rev == 0 {
			_, err = s.kv.Create(ctx, blockKey(uid), val)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
		} else {
			_, err = s.kv.Update(ctx, blockKey(uid), val, rev)
			if isWrongRevision(err) {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("update block list of %s: %w", uid, err)
		}
		return nil
	}
	return fmt.Errorf("%w: block list of %s changed too often", ErrConflict, uid)
}

// BlockChange is a block list as a watch saw it change.
type BlockChange struct {
	User  string
	Users []string // sorted; empty when the list is gone
	Rev   uint64
}

// WatchBlocks watches every block list for changes made from now on and
// calls fn with each, in order, from one goroutine, until ctx ends. It
// returns once the watch is in place: a list read after that cannot miss
// a later change.
func (s *Store) WatchBlocks(ctx context.Context, fn func(BlockChange)) error {
	w, err := s.kv.Watch(ctx, blockPrefix+"*", jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("watch block lists: %w", err)
	}
	go func() {
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue
				}
				c := BlockChange{User: strings.TrimPrefix(e.Key(), blockPrefix), Rev: e.Revision()}
				if e.Operation() == jetstream.KeyValuePut {
					var l blockList
					if json.Unmarshal(e.Value(), &l) != nil {
						continue
					}
					c.Users = l.Users
				}
				fn(c)
			}
		}
	}()
	return nil
}

// NoteAdded records that someone else is adding uid to a conversation
// now, unless uid was added limit times within window already: then it
// returns ErrRateLimited. The ring keeps at most limit times.
func (s *Store) NoteAdded(ctx context.Context, uid string, limit int, window time.Duration) error {
	now := s.cfg.Now()
	for range casAttempts {
		var ring addRing
		var rev uint64
		e, err := s.kv.Get(ctx, addRingKey(uid))
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("get add ring of %s: %w", uid, err)
		default:
			rev = e.Revision()
			_ = json.Unmarshal(e.Value(), &ring) // a bad value starts afresh
		}
		since := now.Add(-window).Unix()
		ring.At = slices.DeleteFunc(ring.At, func(t int64) bool { return t <= since })
		if len(ring.At) >= limit {
			return fmt.Errorf("%w: user %s was added to too many conversations in the last %s; try again later", ErrRateLimited, uid, spell(window))
		}
		ring.At = append(ring.At, now.Unix())
		val, _ := json.Marshal(ring)
		if rev == 0 {
			_, err = s.kv.Create(ctx, addRingKey(uid), val)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
		} else {
			_, err = s.kv.Update(ctx, addRingKey(uid), val, rev)
			if isWrongRevision(err) {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("update add ring of %s: %w", uid, err)
		}
		return nil
	}
	return fmt.Errorf("%w: add ring of %s changed too often", ErrConflict, uid)
}

// spell says d as a person would: "hour", "2 hours", "30m0s".
func spell(d time.Duration) string {
	switch {
	case d == time.Hour:
		return "hour"
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	}
	return d.String()
}
