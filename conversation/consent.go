package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/natter-chat/natter/protocol"
)

// Consent. Nobody is drawn into a conversation without agreeing to it:
//
//   - A new direct conversation is a message request to the other user
//     (Doc.Pending) until they accept it, by sending in it or with Accept.
//     Their member key says so (pendingValue), so the send path sees it
//     without reading the document. Decline removes them (Doc.Declined):
//     the conversation disappears for them and later messages do not
//     bring it back; the requester is not told.
//   - A user's add_policy (settings, s.<uid>) says who may add them to
//     groups: everyone, contacts (users with an accepted direct
//     conversation with them) or nobody (an add is an invitation,
//     Doc.Invited, and the user is not a member until accepting it).
//   - The owner withdraws an invitation with RemoveMember (Doc.withdraw);
//     an invitee's Leave is a Decline of it (the gateway's leave).
//   - Hide takes a conversation off the user's list until a message after
//     the hidden seq arrives (userIndex.Hidden).
//
// Every change of a document is a compare-and-set recording its change,
// finished by complete like membership changes (repair.go).

// ActionWithdrawn: the owner withdrew the invitation of Users (remove_member
// of an invited user); they are told as of a removal, the members get the
// group's new invited list.
const ActionWithdrawn = "withdrawn"

// withdraw takes the invitation of uid, who is invited, out of d: the
// change of the owner by.
func (d *Doc) withdraw(uid string, by Actor) {
	d.Invited = slices.DeleteFunc(d.Invited, func(x string) bool { return x == uid })
	d.Change = &Event{Action: ActionWithdrawn, Users: []string{uid}, By: by.User, Origin: by.Session}
}

// IsPending reports whether uid is a member who has not accepted the
// conversation (a message request to uid).
func (d *Doc) IsPending(uid string) bool { return slices.Contains(d.Pending, uid) }

// IsInvited reports whether uid is invited to the group and not a member.
func (d *Doc) IsInvited(uid string) bool { return slices.Contains(d.Invited, uid) }

// StateFor returns the consent state of d for uid, as
// protocol.Conversation.State has it.
func (d *Doc) StateFor(uid string) string {
	switch {
	case d.IsInvited(uid):
		return protocol.ConvStateInvited
	case d.IsPending(uid):
		return protocol.ConvStateRequest
	case d.Kind == protocol.ConversationDirect && (len(d.Pending) > 0 || len(d.Declined) > 0):
		return protocol.ConvStatePending
	}
	return ""
}

// HasStates reports whether d renders differently for some users (a
// request or invitations open): pushes of it are then rendered per user.
func (d *Doc) HasStates() bool {
	return len(d.Pending) > 0 || len(d.Invited) > 0 || len(d.Declined) > 0
}

// ProtocolFor renders d as uid sees it, state included.
func (d *Doc) ProtocolFor(uid string, membersInline int) *protocol.Conversation {
	c := d.Protocol(membersInline)
	c.State = d.StateFor(uid)
	c.Role = d.Role(uid)
	return c
}

// memberValue is the member key value of uid, a member of d.
func (d *Doc) memberValue(uid string) []byte {
	if d.IsPending(uid) {
		return pendingValue
	}
	return memberValue
}

// Membership reports whether uid is a member of conv and whether uid has
// yet to accept it, with the one read IsMember makes.
func (s *Store) Membership(ctx context.Context, conv, uid string) (member, pending bool, err error) {
	val, _, err := s.getKey(ctx, memberKey(conv, uid))
	switch {
	case err == nil:
		return true, string(val) == string(pendingValue), nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, false, nil
	default:
		return false, false, fmt.Errorf("membership %s/%s: %w", conv, uid, err)
	}
}

// Settings are one user's settings.
type Settings struct {
	// AddPolicy is one of protocol.AddPolicy*; empty reads as everyone.
	AddPolicy string `json:"add_policy,omitempty"`
}

func settingsKey(uid string) string { return "s." + uid }

// Settings returns uid's settings, the defaults when none were written.
func (s *Store) Settings(ctx context.Context, uid string) (Settings, error) {
	var st Settings
	e, err := s.kv.Get(ctx, settingsKey(uid))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return st, fmt.Errorf("settings of %s: %w", uid, err)
	default:
		if err := json.Unmarshal(e.Value(), &st); err != nil {
			return st, fmt.Errorf("decode settings of %s: %w", uid, err)
		}
	}
	if !protocol.ValidAddPolicy(st.AddPolicy) {
		st.AddPolicy = protocol.AddPolicyEveryone
	}
	return st, nil
}

// SetAddPolicy sets who may add uid to groups.
func (s *Store) SetAddPolicy(ctx context.Context, uid, policy string) (Settings, error) {
	if !protocol.ValidAddPolicy(policy) {
		return Settings{}, fmt.Errorf("%w: add_policy must be %q, %q or %q", ErrBadRequest,
			protocol.AddPolicyEveryone, protocol.AddPolicyContacts, protocol.AddPolicyNobody)
	}
	st := Settings{AddPolicy: policy}
	val, _ := json.Marshal(st)
	if _, err := s.kv.Put(ctx, settingsKey(uid), val); err != nil {
		return Settings{}, fmt.Errorf("write settings of %s: %w", uid, err)
	}
	return st, nil
}

// IsContact reports whether a and b have an accepted direct conversation:
// both are members and neither has a request open in it.
func (s *Store) IsContact(ctx context.Context, a, b string) (bool, error) {
	d, _, err := s.get(ctx, directID(a, b))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return d.IsMember(a) && d.IsMember(b) && len(d.Pending) == 0, nil
}

// admit checks whether actor may add each of users by their add_policy,
// a few at a time. It returns the users to invite instead (policy
// nobody), or ErrRefused naming the first user whose policy is contacts
// and who is not actor's contact.
func (s *Store) admit(ctx context.Context, actor string, users []string) ([]string, error) {
	users = slices.Compact(slices.Sorted(slices.Values(users)))
	policies := make([]string, len(users))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelWrites)
	for i, u := range users {
		g.Go(func() error {
			st, err := s.Settings(gctx, u)
			if err != nil {
				return err
			}
			policies[i] = st.AddPolicy
			if st.AddPolicy != protocol.AddPolicyContacts {
				return nil
			}
			ok, err := s.IsContact(gctx, actor, u)
			if err != nil {
				return err
			}
			if !ok {
				policies[i] = "refused"
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var invite []string
	for i, u := range users {
		switch policies[i] {
		case "refused":
			return nil, fmt.Errorf("%w: %s accepts adds only from contacts (users with an accepted direct conversation with them); send them a message request first", ErrRefused, u)
		case protocol.AddPolicyNobody:
			invite = append(invite, u)
		}
	}
	return invite, nil
}

// update applies fn to conv's document with compare-and-set, retrying
// when another change got in first; change is update for members only.
// fn decides; a missing conversation is ErrForbidden.
func (s *Store) update(ctx context.Context, conv string, fn func(*Doc) error) (*Doc, uint64, error) {
	for attempt := 0; attempt < 20; attempt++ {
		d, rev, err := s.get(ctx, conv)
		if errors.Is(err, ErrNotFound) {
			return nil, 0, ErrForbidden
		}
		if err != nil {
			return nil, 0, err
		}
		// These answer with the document as it is: nothing to write.
		if err := fn(d); errors.Is(err, errNoChange) || errors.Is(err, errNotListed) || errors.Is(err, ErrForbidden) {
			return d, rev, err
		} else if err != nil {
			return nil, 0, err
		}
		val, _ := json.Marshal(d)
		rev, err = s.kv.Update(ctx, docKey(conv), val, rev)
		if isWrongRevision(err) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("update conversation %s: %w", conv, err)
		}
		return d, rev, nil
	}
	return nil, 0, fmt.Errorf("%w: conversation %s changed too often", ErrConflict, conv)
}

// Accept accepts, for by.User, the message request of conv or the
// invitation into it. Accepting a request is announced as "accepted" (the
// requester gets the conversation again, now without state); accepting an
// invitation makes by.User a member, announced as "added". Accepting what
// is accepted already changes nothing; anything else is ErrForbidden.
func (s *Store) Accept(ctx context.Context, by Actor, conv string) (*Doc, error) {
	u := by.User
	d, rev, err := s.update(ctx, conv, func(d *Doc) error {
		switch {
		case d.IsPending(u):
			d.Pending = slices.DeleteFunc(d.Pending, func(x string) bool { return x == u })
			d.Change = &Event{Action: ActionAccepted, Users: []string{u}, By: u, Origin: by.Session}
		case d.IsInvited(u):
			if len(d.Members) >= s.cfg.MaxMembers {
				return fmt.Errorf("%w: a group has at most %d members", ErrTooLarge, s.cfg.MaxMembers)
			}
			// The index names the conversation already, unless it was
			// lost: adding is idempotent and checks the user's limit.
			if err := s.indexAdd(ctx, conv, []string{u}); err != nil {
				return err
			}
			d.Invited = slices.DeleteFunc(d.Invited, func(x string) bool { return x == u })
			d.Members = append(d.Members, u)
			d.Change = &Event{Action: ActionAdded, Users: []string{u}, By: u, Origin: by.Session}
		case d.IsMember(u):
			return errNoChange
		default:
			return ErrForbidden
		}
		return nil
	})
	if errors.Is(err, errNoChange) {
		// Accepted already; a key still saying "request" (an accept that
		// stopped half-way) is corrected.
		return d, s.acceptKey(ctx, conv, u)
	}
	if err != nil {
		return nil, err
	}
	if err := s.complete(ctx, d, rev); err != nil {
		return nil, err
	}
	// After complete, which creates the key if the request's creation
	// had not yet: then this corrects it whoever created it. An accept
	// that stops before is corrected by the next send (Membership still
	// says pending, Accept finds nothing to change and lands here).
	if d.Change.Action == ActionAccepted {
		if err := s.acceptKey(ctx, conv, u); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// acceptKey makes uid's member key of conv say "accepted" if it says
// "request".
func (s *Store) acceptKey(ctx context.Context, conv, uid string) error {
	e, err := s.kv.Get(ctx, memberKey(conv, uid))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("membership %s/%s: %w", conv, uid, err)
	}
	if string(e.Value()) != string(pendingValue) {
		return nil
	}
	if _, err := s.kv.Update(ctx, memberKey(conv, uid), memberValue, e.Revision()); err != nil && !isWrongRevision(err) {
		return fmt.Errorf("accept member key %s/%s: %w", conv, uid, err)
	}
	return nil
}

// Decline declines, for by.User, the message request of conv (by.User is
// no longer a member; the requester still sees the request as pending)
// or the invitation into it. Declining twice changes nothing.
func (s *Store) Decline(ctx context.Context, by Actor, conv string) error {
	u := by.User
	d, rev, err := s.update(ctx, conv, func(d *Doc) error {
		switch {
		case d.IsPending(u):
			d.Pending = slices.DeleteFunc(d.Pending, func(x string) bool { return x == u })
			d.Members = slices.DeleteFunc(d.Members, func(x string) bool { return x == u })
			d.Declined = append(d.Declined, u)
		case d.IsInvited(u):
			d.Invited = slices.DeleteFunc(d.Invited, func(x string) bool { return x == u })
		case slices.Contains(d.Declined, u):
			return errNoChange
		case d.IsMember(u):
			return fmt.Errorf("%w: only a message request or an invitation can be declined; leave or hide the conversation", ErrBadRequest)
		default:
			return ErrForbidden
		}
		d.Change = &Event{Action: ActionDeclined, Users: []string{u}, By: u, Origin: by.Session}
		return nil
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.complete(ctx, d, rev)
}

// rejoinDirect makes by.User, who declined the other's request in conv, a
// member again: they start the conversation themselves now.
func (s *Store) rejoinDirect(ctx context.Context, by Actor, conv string) (*Doc, error) {
	u := by.User
	d, rev, err := s.update(ctx, conv, func(d *Doc) error {
		if !slices.Contains(d.Declined, u) {
			return errNoChange
		}
		if err := s.indexAdd(ctx, conv, []string{u}); err != nil {
			return err
		}
		d.Declined = slices.DeleteFunc(d.Declined, func(x string) bool { return x == u })
		d.Members = append(d.Members, u)
		d.Change = &Event{Action: ActionAdded, Users: []string{u}, By: u, Origin: by.Session}
		return nil
	})
	if errors.Is(err, errNoChange) {
		return d, s.finishDirect(ctx, d, rev)
	}
	if err != nil {
		return nil, err
	}
	return d, s.complete(ctx, d, rev)
}

// GetForViewer returns conv's document if uid is a member or invited to
// it, and ErrForbidden otherwise: what uid's list shows.
func (s *Store) GetForViewer(ctx context.Context, conv, uid string) (*Doc, error) {
	d, err := s.GetForMember(ctx, conv, uid)
	if !errors.Is(err, ErrForbidden) {
		return d, err
	}
	d, _, err = s.getShared(ctx, conv)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrForbidden
	}
	if err != nil {
		return nil, err
	}
	if !d.IsInvited(uid) {
		return nil, ErrForbidden
	}
	return d, nil
}

// Hide takes conv off uid's list until a message after seq arrives in it.
// uid must be a member.
func (s *Store) Hide(ctx context.Context, conv, uid string, seq uint64) error {
	ok, err := s.IsMember(ctx, conv, uid)
	if err != nil {
		return err
	}
	if !ok {
		return ErrForbidden
	}
	return s.updateIndex(ctx, uid, func(idx *userIndex) (bool, error) {
		if !slices.Contains(idx.Convs, conv) {
			return false, nil
		}
		if idx.Hidden == nil {
			idx.Hidden = make(map[string]uint64)
		}
		if old, ok := idx.Hidden[conv]; ok && old >= seq {
			return false, nil
		}
		idx.Hidden[conv] = seq
		return true, nil
	})
}

// UserList returns what UserConversations does and, for the conversations
// uid hid, the seq they were hidden at, from the same read.
//
// The index of a user in thousands of conversations is a large JSON value:
// it is decoded once per revision and kept (indexCache), so listing the
// conversations of a user whose index did not change decodes nothing. The
// caller must not modify what it returns.
func (s *Store) UserList(ctx context.Context, uid string) ([]string, map[string]uint64, error) {
	e, err := s.kv.Get(ctx, userKey(uid))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("get index of %s: %w", uid, err)
	}
	if idx, ok := s.lists.get(uid, e.Revision()); ok {
		return idx.Convs, idx.Hidden, nil
	}
	var idx userIndex
	if err := json.Unmarshal(e.Value(), &idx); err != nil {
		return nil, nil, fmt.Errorf("decode index of %s: %w", uid, err)
	}
	s.lists.put(uid, e.Revision(), idx)
	return idx.Convs, idx.Hidden, nil
}

// indexCache keeps decoded user indexes with their KV revision; a
// revision names one value, so a hit is exact. Past max conversation ids
// in all (about 50 bytes each) it starts again empty.
type indexCache struct {
	mu  sync.Mutex
	m   map[string]cachedIndex
	n   int // ids held
	max int
}

type cachedIndex struct {
	rev uint64
	idx userIndex
}

func (c *indexCache) get(uid string, rev uint64) (userIndex, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[uid]
	return e.idx, ok && e.rev == rev
}

func (c *indexCache) put(uid string, rev uint64, idx userIndex) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || c.n+len(idx.Convs) > c.max {
		c.m, c.n = make(map[string]cachedIndex), 0
	}
	c.n += len(idx.Convs) - len(c.m[uid].idx.Convs)
	c.m[uid] = cachedIndex{rev: rev, idx: idx}
}
