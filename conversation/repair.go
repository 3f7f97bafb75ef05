package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/natter-chat/natter/nats/schema"
)

// A membership change is one compare-and-set of the document, which
// records the change (Doc.Change), followed by writes that follow from it:
// the member keys and user indexes of the users it names, then its event.
// A request can stop anywhere in between (a crash, a failed write). Nothing
// here needs the first attempt to finish:
//
//   - complete makes the keys and indexes of the named users agree with the
//     document and announces the change; every step is idempotent, and the
//     event is published with a Nats-Msg-Id of the revision, so the stream
//     stores it once however often it is announced.
//   - finish does that for a document whose change may be unfinished: a
//     retried request that finds nothing left to change in the document,
//     and a reader that finds a member without a member key.
//
// Two changes racing on one user (an add and a remove) both end in
// syncMembers, which writes a key and then reads the document again until
// the document did not move under it; so whichever write comes last was
// checked against the newest document, and once both have returned the key
// exists exactly when the document lists the user.

// syncRounds bounds how often syncMembers follows a document that keeps
// changing under it.
const syncRounds = 20

// syncMembers makes the member key and index entry of each of users agree
// with d, the document of conv at revision rev (nil: there is none), and
// repeats for those the document changed for meanwhile. It returns the
// users whose member key it created: they were listed without one.
func (s *Store) syncMembers(ctx context.Context, conv string, users []string, d *Doc, rev uint64) ([]string, error) {
	var created []string
	for range syncRounds {
		listed := memberSet(d)
		made, err := s.writeMembers(ctx, conv, users, listed, d)
		if err != nil {
			return created, err
		}
		created = append(created, made...)
		now, nowRev, err := s.docSince(ctx, conv, rev)
		if errors.Is(err, ErrNotFound) {
			now, nowRev, err = nil, 0, nil
		}
		if err != nil {
			return created, err
		}
		if nowRev == rev {
			return created, nil
		}
		again := memberSet(now)
		users = slices.DeleteFunc(slices.Clone(users), func(u string) bool { return listed[u] == again[u] })
		if len(users) == 0 {
			return created, nil
		}
		d, rev = now, nowRev
	}
	return created, fmt.Errorf("%w: members of %s changed too often", ErrConflict, conv)
}

// docSince reads conv's document again for syncMembers: with a direct get,
// and from the bucket's leader when the replica that answered is behind
// rev, the revision syncMembers wrote by (it does not have the document
// yet, or an older one). Taken from a replica behind, a just-created
// group looked deleted and its members' keys and index entries were
// removed (found with NATTER_E2E_TOPOLOGY=cluster3x4: a group missing
// from its creator's conversation list). The writers that call it may
// ask the leader (STREAM.MSG.GET, as GetAtLeast).
func (s *Store) docSince(ctx context.Context, conv string, rev uint64) (*Doc, uint64, error) {
	d, got, err := s.getShared(ctx, conv)
	if (err == nil && got >= rev) || (err != nil && !errors.Is(err, ErrNotFound)) || (err != nil && rev == 0) {
		return d, got, err
	}
	got, val, err := s.leaderGet(ctx, schema.KVStream(schema.BucketConversations), schema.KVKey(schema.BucketConversations, docKey(conv)))
	if err != nil {
		return nil, 0, fmt.Errorf("get conversation %s: %w", conv, err)
	}
	if got == 0 || len(val) == 0 { // none, or deleted (a KV tombstone)
		return nil, 0, ErrNotFound
	}
	d = new(Doc)
	if err := json.Unmarshal(val, d); err != nil {
		return nil, 0, fmt.Errorf("decode conversation %s: %w", conv, err)
	}
	return d, got, nil
}

func memberSet(d *Doc) map[string]bool {
	if d == nil {
		return nil
	}
	m := make(map[string]bool, len(d.Members))
	for _, u := range d.Members {
		m[u] = true
	}
	return m
}

// writeMembers writes, a few users at a time, a member key and an index
// entry for each of users that listed names, and deletes them for the
// others. It returns the users whose key it created.
func (s *Store) writeMembers(ctx context.Context, conv string, users []string, listed map[string]bool, d *Doc) ([]string, error) {
	made := make([]bool, len(users))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelWrites)
	for i, u := range users {
		g.Go(func() error {
			if !listed[u] {
				// Read first: a request about a non-member writes
				// nothing unless a key was left behind.
				has, err := s.IsMember(ctx, conv, u)
				if err != nil {
					return err
				}
				if has {
					if err := s.memberRemove(ctx, conv, u); err != nil {
						return err
					}
				}
				if d != nil && d.IsInvited(u) {
					return nil // an invitation is listed, not a membership
				}
				return s.indexRemove(ctx, conv, u)
			}
			var err error
			if made[i], err = s.memberCreate(ctx, conv, u, d.memberValue(u)); err != nil {
				return err
			}
			// No limit here: the document lists u already, and the
			// index must name what the document lists.
			return s.updateIndex(ctx, u, func(idx *userIndex) (bool, error) {
				if slices.Contains(idx.Convs, conv) {
					return false, nil
				}
				idx.Convs = append(idx.Convs, conv)
				return true, nil
			})
		})
	}
	err := g.Wait()
	var out []string
	for i, u := range users {
		if made[i] {
			out = append(out, u)
		}
	}
	return out, err
}

// event returns the change that wrote d at rev as its event.
func (d *Doc) event(rev uint64) Event {
	ev := *d.Change
	ev.Conv, ev.Rev = d.Conv, rev
	if ev.Action == ActionCreated {
		ev.Users = d.Members
	}
	return ev
}

// complete writes what the change that wrote d at rev implies: the keys
// and indexes of the users it names, then its event.
func (s *Store) complete(ctx context.Context, d *Doc, rev uint64) error {
	ev := d.event(rev)
	if _, err := s.syncMembers(ctx, d.Conv, ev.Users, d, rev); err != nil {
		return err
	}
	if err := s.publishItems(ctx, ev); err != nil {
		return err
	}
	return s.announce(ctx, ev)
}

// finish completes the change that wrote d at rev unless its event is in
// the stream already (its keys and indexes were written before it).
func (s *Store) finish(ctx context.Context, d *Doc, rev uint64) error {
	if d.Change == nil {
		return nil
	}
	done, err := s.announced(ctx, d.Conv, rev)
	if err != nil || done {
		return err
	}
	return s.complete(ctx, d, rev)
}

// announced reports whether the newest membership event of conv describes
// revision rev or a later one. Events of concurrent changes may be stored
// out of order; then the change is announced again, which the stream
// drops as a duplicate within its de-duplication window.
func (s *Store) announced(ctx context.Context, conv string, rev uint64) (bool, error) {
	st, err := s.chat(ctx, conv)
	if err != nil {
		return false, err
	}
	// The current stored subject holds newer events than an older one.
	var m *jetstream.RawStreamMsg
	for _, subj := range s.layout.StoredMembers(conv) {
		if m, err = st.GetLastMsgForSubject(ctx, subj); err == nil || !errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("last event of %s: %w", conv, err)
	}
	var ev Event
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return false, nil
	}
	return ev.Rev >= rev, nil
}

// chat returns the message stream holding conv (schema.Layout.StreamOf),
// the layout read and the stream opened on first use.
func (s *Store) chat(ctx context.Context, conv string) (jetstream.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.layoutRead {
		l, err := schema.ReadLayout(ctx, s.js)
		if err != nil {
			return nil, err
		}
		s.layout, s.layoutRead = l, true
	}
	name := s.layout.StreamOf(conv)
	if st := s.streams[name]; st != nil {
		return st, nil
	}
	st, err := s.js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", name, err)
	}
	if s.streams == nil {
		s.streams = map[string]jetstream.Stream{}
	}
	s.streams[name] = st
	return st, nil
}

// covers reports whether the change recorded in d added or created users
// of which u is one, or removed u.
func (d *Doc) covers(action, u string) bool {
	c := d.Change
	if c == nil {
		return false
	}
	switch {
	case action == ActionAdded && c.Action == ActionCreated:
		return d.IsMember(u)
	case c.Action != action:
		return false
	}
	return slices.Contains(c.Users, u)
}

// eventMsgID is the Nats-Msg-Id of the event of conv's revision rev; user
// ids have no dots, so it cannot be that of a message.
func eventMsgID(conv string, rev uint64) string {
	return "member." + conv + "." + strconv.FormatUint(rev, 10)
}

// announce stores a membership event in the CHAT stream, after the change
// it describes, so that the fan-out sees it in order with the messages.
func (s *Store) announce(ctx context.Context, ev Event) error {
	data, _ := json.Marshal(ev)
	msg := nats.NewMsg(schema.Member(ev.Conv))
	msg.Data = data
	if ev.Rev != 0 {
		msg.Header.Set(schema.HeaderMsgID, eventMsgID(ev.Conv, ev.Rev))
	}
	if err := s.publishRetry(ctx, msg); err != nil {
		return fmt.Errorf("announce %s of %s: %w", ev.Action, ev.Conv, err)
	}
	return nil
}
