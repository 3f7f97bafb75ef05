package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// Config bounds conversations. The zero value is filled with defaults.
type Config struct {
	// MaxMembers per group.
	MaxMembers int
	// MaxConversations a user may belong to.
	MaxConversations int
	// MaxAddBatch is how many users one add_member may name.
	MaxAddBatch int
	// MaxTitleBytes bounds a group title.
	MaxTitleBytes int
	// TestTTL, when positive, is one more ttl value clients may set
	// besides protocol.TTLs, in seconds (e.g. 2): for tests and
	// operators' trials, so that disappearing messages disappear in
	// seconds (ttl.go). Off by default.
	TestTTL int64
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// Logger; slog.Default by default.
	Logger *slog.Logger
	// LeaderChecks: a read that finds no document or member key asks
	// the bucket's leader again before answering so (getKey). A direct
	// get is answered by any replica of an R3 bucket, and one may not
	// have a write acknowledged a moment ago: a conversation just
	// created, a member just added. Needs STREAM.MSG.GET on the bucket's
	// stream, which the roles that write the bucket have (the gateway).
	LeaderChecks bool
}

func (c Config) withDefaults() Config {
	if c.MaxMembers <= 0 {
		c.MaxMembers = 10_000
	}
	if c.MaxConversations <= 0 {
		c.MaxConversations = 10_000
	}
	if c.MaxAddBatch <= 0 {
		c.MaxAddBatch = 1000
	}
	if c.MaxTitleBytes <= 0 {
		c.MaxTitleBytes = 256
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Store reads and changes conversations.
type Store struct {
	cfg   Config
	js    jetstream.JetStream
	kv    jetstream.KeyValue
	marks markerCache
	// docs are decoded documents by revision, for GetShared.
	docs *MemberCache[*Doc]
	// lists are decoded user indexes by revision, for UserList.
	lists indexCache

	mu         sync.Mutex
	streams    map[string]jetstream.Stream // message streams, opened on first use (chat)
	layout     schema.Layout               // the message streams' layout
	layoutRead bool                        // layout is read
}

// New returns a Store over the CONVERSATIONS bucket, which schema.Ensure
// must have created.
func New(ctx context.Context, cfg Config, js jetstream.JetStream) (*Store, error) {
	kv, err := js.KeyValue(ctx, schema.BucketConversations)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", schema.BucketConversations, err)
	}
	s := &Store{cfg: cfg.withDefaults(), js: js, kv: kv, marks: markerCache{max: 100_000}, lists: indexCache{max: 1_000_000}}
	s.docs = NewDocCache(CacheConfig{Size: 1_000_000, Members: 1_000_000}, s)
	return s, nil
}

// Get returns the document of conv, or ErrNotFound.
func (s *Store) Get(ctx context.Context, conv string) (*Doc, error) {
	d, _, err := s.get(ctx, conv)
	return d, err
}

func (s *Store) get(ctx context.Context, conv string) (*Doc, uint64, error) {
	val, rev, err := s.getKey(ctx, docKey(conv))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get conversation %s: %w", conv, err)
	}
	var d Doc
	if err := json.Unmarshal(val, &d); err != nil {
		return nil, 0, fmt.Errorf("decode conversation %s: %w", conv, err)
	}
	return &d, rev, nil
}

// getKey reads key of the bucket with a direct get; with
// Config.LeaderChecks a key not found is looked up again on the bucket's
// leader, which has every acknowledged write.
func (s *Store) getKey(ctx context.Context, key string) ([]byte, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if err == nil {
		return e.Value(), e.Revision(), nil
	}
	if !errors.Is(err, jetstream.ErrKeyNotFound) || !s.cfg.LeaderChecks {
		return nil, 0, err
	}
	rev, val, lerr := s.leaderGet(ctx, schema.KVStream(schema.BucketConversations), schema.KVKey(schema.BucketConversations, key))
	switch {
	case lerr != nil:
		return nil, 0, lerr
	case rev == 0 || len(val) == 0: // none, or a delete's tombstone
		return nil, 0, jetstream.ErrKeyNotFound
	}
	return val, rev, nil
}

// GetForMember returns conv's document if uid is a member, and ErrForbidden
// otherwise, whether the conversation exists or not.
//
// Having read the document anyway, it checks uid's member key against it
// and repairs what a change that stopped half-way left: a member without a
// key gets it (and the change that listed it is finished), a key the
// document does not back is deleted.
func (s *Store) GetForMember(ctx context.Context, conv, uid string) (*Doc, error) {
	d, rev, err := s.get(ctx, conv)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrForbidden
	}
	if err != nil {
		return nil, err
	}
	if err := s.repairMember(ctx, d, rev, uid); err != nil {
		s.cfg.Logger.Warn("membership repair failed", "conv", conv, "user", uid, "err", err)
	}
	if !d.IsMember(uid) {
		return nil, ErrForbidden
	}
	return d, nil
}

// repairMember makes uid's member key agree with d, read at rev.
func (s *Store) repairMember(ctx context.Context, d *Doc, rev uint64, uid string) error {
	has, err := s.IsMember(ctx, d.Conv, uid)
	if err != nil || has == d.IsMember(uid) {
		return err
	}
	if !has && d.covers(ActionAdded, uid) {
		if err := s.finish(ctx, d, rev); err != nil {
			return err
		}
	}
	_, err = s.syncMembers(ctx, d.Conv, []string{uid}, d, rev)
	return err
}

// UserConversations returns the ids of the conversations uid belongs to
// according to the index, in join order. The index may name a conversation
// uid was just removed from; callers that show documents filter by them.
func (s *Store) UserConversations(ctx context.Context, uid string) ([]string, error) {
	idx, _, err := s.getIndex(ctx, uid)
	return idx.Convs, err
}

func (s *Store) getIndex(ctx context.Context, uid string) (userIndex, uint64, error) {
	var idx userIndex
	val, rev, err := s.getKey(ctx, userKey(uid))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return idx, 0, nil
	}
	if err != nil {
		return idx, 0, fmt.Errorf("get index of %s: %w", uid, err)
	}
	if err := json.Unmarshal(val, &idx); err != nil {
		return idx, 0, fmt.Errorf("decode index of %s: %w", uid, err)
	}
	return idx, rev, nil
}

// CreateDirect returns the direct conversation of a and b, creating it on
// first use; created says whether this call created it.
func (s *Store) CreateDirect(ctx context.Context, by Actor, other string) (*Doc, bool, error) {
	a, b := by.User, other
	if a == b {
		return nil, false, fmt.Errorf("%w: a direct conversation needs another user", ErrBadRequest)
	}
	conv := directID(a, b)
	if d, rev, err := s.get(ctx, conv); err == nil {
		if slices.Contains(d.Declined, a) {
			// a declined b's request once and now starts it: a joins.
			d, err := s.rejoinDirect(ctx, by, conv)
			return d, false, err
		}
		return d, false, s.finishDirect(ctx, d, rev)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}
	if err := s.indexAdd(ctx, conv, []string{a, b}); err != nil {
		return nil, false, err
	}
	// A new direct conversation is a message request to b: they never
	// had one with a (its id is that of the pair), so none was accepted.
	d := &Doc{Conv: conv, Kind: protocol.ConversationDirect, Created: s.cfg.Now().UTC(), Members: []string{a, b},
		Pending: []string{b},
		Change:  &Event{Action: ActionCreated, By: a, Origin: by.Session}}
	val, _ := json.Marshal(d)
	rev, err := s.kv.Create(ctx, docKey(conv), val)
	if errors.Is(err, jetstream.ErrKeyExists) {
		// Both users created it at once: the other call won.
		d, rev, err := s.get(ctx, conv)
		if err != nil {
			return nil, false, err
		}
		return d, false, s.finishDirect(ctx, d, rev)
	}
	if err != nil {
		return nil, false, fmt.Errorf("create conversation %s: %w", conv, err)
	}
	if err := s.complete(ctx, d, rev); err != nil {
		return nil, false, err
	}
	return d, true, nil
}

// finishDirect finishes the creation of an existing direct conversation,
// which a create that stopped half-way may have left without member keys
// or event. Documents written before they recorded their change get their
// member keys.
func (s *Store) finishDirect(ctx context.Context, d *Doc, rev uint64) error {
	if d.Change == nil {
		_, err := s.syncMembers(ctx, d.Conv, d.Members, d, rev)
		return err
	}
	return s.finish(ctx, d, rev)
}

// CreateGroup creates a group owned by owner with the given other members.
func (s *Store) CreateGroup(ctx context.Context, by Actor, title string, others []string) (*Doc, error) {
	owner := by.User
	if len(title) > s.cfg.MaxTitleBytes || !utf8.ValidString(title) {
		return nil, fmt.Errorf("%w: title must be valid UTF-8 of at most %d bytes", ErrBadRequest, s.cfg.MaxTitleBytes)
	}
	members := []string{owner}
	for _, u := range others {
		if !slices.Contains(members, u) {
			members = append(members, u)
		}
	}
	if len(members) > s.cfg.MaxMembers {
		return nil, fmt.Errorf("%w: a group has at most %d members", ErrTooLarge, s.cfg.MaxMembers)
	}
	if len(others) > s.cfg.MaxAddBatch {
		return nil, fmt.Errorf("%w: name at most %d users; add more with add_member", ErrBadRequest, s.cfg.MaxAddBatch)
	}
	// Those who accept adds from nobody are invited instead.
	invited, err := s.admit(ctx, owner, members[1:])
	if err != nil {
		return nil, err
	}
	members = slices.DeleteFunc(members, func(u string) bool { return slices.Contains(invited, u) })
	conv := groupID()
	if err := s.indexAdd(ctx, conv, append(slices.Clone(members), invited...)); err != nil {
		return nil, err
	}
	d := &Doc{Conv: conv, Kind: protocol.ConversationGroup, Title: title, Owner: owner, Created: s.cfg.Now().UTC(), Members: members,
		Invited: invited,
		Change:  &Event{Action: ActionCreated, By: owner, Origin: by.Session, Invited: invited}}
	val, _ := json.Marshal(d)
	rev, err := s.kv.Create(ctx, docKey(conv), val)
	if err != nil {
		return nil, fmt.Errorf("create conversation %s: %w", conv, err)
	}
	// A create that stops here leaves a group no retry can name (its id
	// is new each time); GetForMember finishes it when a member lists it.
	if err := s.complete(ctx, d, rev); err != nil {
		return nil, err
	}
	return d, nil
}

// AddMembers adds users to the group conv; any member may add, or only
// the owner and admins when the group says so (OnlyAdminsAdd). It returns
// the document after the change and the users that were not members before.
//
// A retry of an add that stopped half-way finds its users listed already:
// it finishes that change (keys, indexes, event) instead of stopping at
// "already members".
func (s *Store) AddMembers(ctx context.Context, by Actor, conv string, users []string) (*Doc, []string, error) {
	d, added, _, err := s.AddOrInvite(ctx, by, conv, users)
	return d, added, err
}

// AddOrInvite is AddMembers that also returns the users it invited rather
// than added, because their add_policy is nobody (consent.go); a user
// whose add_policy is contacts and who has no accepted direct
// conversation with the actor refuses the whole request (ErrRefused).
func (s *Store) AddOrInvite(ctx context.Context, by Actor, conv string, users []string) (*Doc, []string, []string, error) {
	actor := by.User
	if len(users) == 0 || len(users) > s.cfg.MaxAddBatch {
		return nil, nil, nil, fmt.Errorf("%w: name 1 to %d users", ErrBadRequest, s.cfg.MaxAddBatch)
	}
	// Who may be added is read once, before the compare-and-set loop:
	// refusals end the request, those who accept adds from nobody are
	// invited instead (consent.go).
	toInvite, err := s.admit(ctx, actor, slices.DeleteFunc(slices.Clone(users), func(u string) bool { return u == actor }))
	if err != nil {
		return nil, nil, nil, err
	}
	return s.addOrInvite(ctx, by, conv, users, toInvite, false)
}

// AddAsOperator adds users to the group conv on an operator's behalf
// (natter admin conv add): no member needs to ask and the users'
// add_policy is not consulted, the operator decides. Otherwise it is an
// add like AddMembers, event and repair included; the event has no By.
func (s *Store) AddAsOperator(ctx context.Context, conv string, users []string) (*Doc, []string, error) {
	if len(users) == 0 || len(users) > s.cfg.MaxAddBatch {
		return nil, nil, fmt.Errorf("%w: name 1 to %d users", ErrBadRequest, s.cfg.MaxAddBatch)
	}
	d, added, _, err := s.addOrInvite(ctx, Actor{}, conv, users, nil, true)
	return d, added, err
}

// addOrInvite is the compare-and-set loop of an add: by must be a member
// unless operator.
func (s *Store) addOrInvite(ctx context.Context, by Actor, conv string, users, toInvite []string, operator bool) (*Doc, []string, []string, error) {
	actor := by.User
	var added, invited []string
	d, rev, err := s.changeAs(ctx, conv, actor, operator, func(d *Doc) error {
		if d.Kind != protocol.ConversationGroup {
			return fmt.Errorf("%w: direct conversations have no add or remove", ErrBadRequest)
		}
		if d.OnlyAdminsAdd && !operator && !d.IsAdmin(actor) {
			return fmt.Errorf("%w: only the owner and admins add members to this group", ErrRefused)
		}
		added, invited = added[:0], invited[:0]
		for _, u := range users {
			if d.IsBanned(u) {
				if !operator {
					return fmt.Errorf("%w: %s is banned from this group; an admin must unban them first", ErrRefused, u)
				}
				// The operator decides: adding lifts the ban.
				d.Banned = without(d.Banned, u)
			}
			switch {
			case d.IsMember(u) || slices.Contains(added, u) || slices.Contains(invited, u) || d.IsInvited(u):
			case slices.Contains(toInvite, u):
				invited = append(invited, u)
			default:
				added = append(added, u)
			}
		}
		if len(d.Members)+len(d.Invited)+len(added)+len(invited) > s.cfg.MaxMembers {
			return fmt.Errorf("%w: a group has at most %d members", ErrTooLarge, s.cfg.MaxMembers)
		}
		if len(added) == 0 && len(invited) == 0 {
			return errNoChange
		}
		// Index before the document: the index stays a superset. It is
		// idempotent, so a retry after a lost race costs only reads.
		if err := s.indexAdd(ctx, conv, append(slices.Clone(added), invited...)); err != nil {
			return err
		}
		d.Members = append(d.Members, added...)
		d.Invited = append(d.Invited, invited...)
		d.Change = &Event{Action: ActionAdded, Users: slices.Clone(added), Invited: slices.Clone(invited), By: actor, Origin: by.Session}
		return nil
	})
	if errors.Is(err, errNoChange) {
		return d, nil, nil, s.repairAdd(ctx, by, d, rev, users)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if err := s.complete(ctx, d, rev); err != nil {
		return nil, nil, nil, err
	}
	return d, added, invited, nil
}

// repairAdd is an add whose users d, read at rev, lists already: it
// finishes the change that listed them if that is d's, and gives any of
// them still without a member key one, announcing them as added (their
// add stopped before its event).
func (s *Store) repairAdd(ctx context.Context, by Actor, d *Doc, rev uint64, users []string) error {
	users = slices.Compact(slices.Sorted(slices.Values(users)))
	if slices.ContainsFunc(users, func(u string) bool { return d.covers(ActionAdded, u) }) {
		if err := s.finish(ctx, d, rev); err != nil {
			return err
		}
	}
	made, err := s.syncMembers(ctx, d.Conv, users, d, rev)
	if err != nil || len(made) == 0 {
		return err
	}
	return s.announce(ctx, Event{Action: ActionAdded, Conv: d.Conv, Users: made, By: by.User, Origin: by.Session})
}

// RemoveMember removes user from the group conv. Only the owner may remove
// others; removing yourself is leaving. The owner removing a user invited
// to the group withdraws the invitation (consent.go).
//
// The member key goes before the document changes, so a remove that stops
// half-way leaves a member without a key (refused, never a removed user let
// in). A retry finishes a remove whose event is missing; any allowed remove
// of a user the document does not list still deletes a key or index entry
// left behind.
func (s *Store) RemoveMember(ctx context.Context, by Actor, conv, user string) (*Doc, error) {
	return s.remove(ctx, by, conv, user, false, false)
}

// RemoveAsOperator removes user from the group conv on an operator's
// behalf (natter admin conv remove): the owner's consent is not needed.
// Otherwise it is a remove like RemoveMember; the event has no By.
func (s *Store) RemoveAsOperator(ctx context.Context, conv, user string) (*Doc, error) {
	return s.remove(ctx, Actor{}, conv, user, true, false)
}

// remove removes user from the group conv; with ban, user is banned too
// (group.go), whether a member or not.
func (s *Store) remove(ctx context.Context, by Actor, conv, user string, operator, ban bool) (*Doc, error) {
	actor := by.User
	keyGone := false // the key may be deleted while the document lists user
	d, rev, err := s.changeAs(ctx, conv, actor, operator, func(d *Doc) error {
		if d.Kind != protocol.ConversationGroup {
			return fmt.Errorf("%w: direct conversations have no add or remove", ErrBadRequest)
		}
		if !operator && user != actor && !d.mayRemove(actor, user) {
			return fmt.Errorf("%w: only the owner removes admins; admins remove plain members", ErrRefused)
		}
		var items []protocol.GroupEvent
		if ban {
			if user == actor {
				return fmt.Errorf("%w: you cannot ban yourself", ErrBadRequest)
			}
			if !d.IsBanned(user) {
				if len(d.Banned) >= s.cfg.MaxMembers {
					return fmt.Errorf("%w: a group bans at most %d users", ErrTooLarge, s.cfg.MaxMembers)
				}
				d.Banned = append(d.Banned, user)
				items = []protocol.GroupEvent{{Event: protocol.EventBanned, By: actor, User: user}}
			}
		}
		i := slices.Index(d.Members, user)
		if i < 0 && user != actor && d.IsInvited(user) {
			// The owner withdraws an invitation (consent.go).
			d.withdraw(user, by)
			d.Change.Items = items
			return nil
		}
		if i < 0 && len(items) > 0 {
			// A ban of a user who is not a member.
			d.Change = &Event{Action: ActionUpdated, By: actor, Origin: by.Session, Items: items}
			return nil
		}
		if i < 0 && ban {
			return errNoChange // banned already
		}
		if i < 0 {
			return errNotListed
		}
		keyGone = true
		if err := s.memberRemove(ctx, conv, user); err != nil {
			return err
		}
		d.Members = slices.Delete(d.Members, i, i+1)
		d.Admins = without(d.Admins, user)
		if d.Owner == user {
			// The longest standing admin, or else member, becomes owner.
			d.Owner = ""
			if len(d.Admins) > 0 {
				d.Owner, d.Admins = d.Admins[0], d.Admins[1:]
			} else if len(d.Members) > 0 {
				d.Owner = d.Members[0]
			}
			if d.Owner != "" {
				items = append(items, protocol.GroupEvent{Event: protocol.EventTransferred, By: user, User: d.Owner})
			}
		}
		d.Change = &Event{Action: ActionRemoved, Users: []string{user}, By: actor, Origin: by.Session, Items: items}
		return nil
	})
	switch {
	case errors.Is(err, errNoChange):
		return d, nil
	case err == nil:
		if err := s.complete(ctx, d, rev); err != nil {
			return nil, err
		}
		return d, nil
	case errors.Is(err, errNotListed):
		return s.repairRemove(ctx, d, rev, user, fmt.Errorf("%w: %s is not a member", ErrNotFound, user))
	case errors.Is(err, ErrForbidden) && d != nil && user == actor:
		// Leaving a conversation one is not in: perhaps a retry.
		return s.repairRemove(ctx, d, rev, user, err)
	case keyGone:
		if serr := s.resync(ctx, conv, user); serr != nil {
			s.cfg.Logger.Warn("member key repair failed", "conv", conv, "user", user, "err", serr)
		}
	}
	return nil, err
}

// repairRemove is a remove of user, whom d (read at rev) does not list.
// If d's change removed user and was never announced, this is a retry of
// it: it is finished and the remove succeeds. Otherwise the answer is
// refusal, after user's key and index entry are made to agree.
func (s *Store) repairRemove(ctx context.Context, d *Doc, rev uint64, user string, refusal error) (*Doc, error) {
	if d.covers(ActionRemoved, user) || d.covers(ActionWithdrawn, user) {
		done, err := s.announced(ctx, d.Conv, rev)
		if err != nil {
			return nil, err
		}
		if !done {
			if err := s.complete(ctx, d, rev); err != nil {
				return nil, err
			}
			return d, nil
		}
	}
	if _, err := s.syncMembers(ctx, d.Conv, []string{user}, d, rev); err != nil {
		return nil, err
	}
	return nil, refusal
}

// resync makes the member keys and indexes of users agree with conv's
// document as it is now.
func (s *Store) resync(ctx context.Context, conv string, users ...string) error {
	d, rev, err := s.getShared(ctx, conv)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	_, err = s.syncMembers(ctx, conv, users, d, rev)
	return err
}

// Leave removes actor from the group conv.
func (s *Store) Leave(ctx context.Context, by Actor, conv string) (*Doc, error) {
	return s.RemoveMember(ctx, by, conv, by.User)
}

// Answers of a change function that leave the document as it is; change
// returns them with the document and its revision.
var (
	errNoChange  = errors.New("no change")
	errNotListed = errors.New("not listed")
)

// change applies fn to conv's document with compare-and-set, retrying when
// another change got in first, and returns the document written and its
// revision. The actor must be a member: if not, the answer is ErrForbidden,
// with the document when there is one.
func (s *Store) change(ctx context.Context, conv, actor string, fn func(*Doc) error) (*Doc, uint64, error) {
	return s.update(ctx, conv, func(d *Doc) error {
		if !d.IsMember(actor) {
			return ErrForbidden
		}
		return fn(d)
	})
}

// changeAs is change, or for an operator update: an operator need not
// be a member.
func (s *Store) changeAs(ctx context.Context, conv, actor string, operator bool, fn func(*Doc) error) (*Doc, uint64, error) {
	if operator {
		return s.update(ctx, conv, fn)
	}
	return s.change(ctx, conv, actor, fn)
}

// parallelWrites bounds the KV writes one membership change has in flight:
// adding a thousand users writes a thousand indexes and member keys.
const parallelWrites = 16

// indexAdd adds conv to the index of every user, a few at a time; the
// first failure cancels the writes not yet done.
func (s *Store) indexAdd(ctx context.Context, conv string, users []string) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelWrites)
	for _, u := range users {
		g.Go(func() error {
			return s.updateIndex(ctx, u, func(idx *userIndex) (bool, error) {
				if slices.Contains(idx.Convs, conv) {
					return false, nil
				}
				if len(idx.Convs) >= s.cfg.MaxConversations {
					return false, fmt.Errorf("%w: %s is in %d conversations already", ErrTooLarge, u, len(idx.Convs))
				}
				idx.Convs = append(idx.Convs, conv)
				return true, nil
			})
		})
	}
	return g.Wait()
}

func (s *Store) indexRemove(ctx context.Context, conv, user string) error {
	return s.updateIndex(ctx, user, func(idx *userIndex) (bool, error) {
		i := slices.Index(idx.Convs, conv)
		if i < 0 {
			return false, nil
		}
		idx.Convs = slices.Delete(idx.Convs, i, i+1)
		delete(idx.Hidden, conv)
		return true, nil
	})
}

func (s *Store) updateIndex(ctx context.Context, uid string, fn func(*userIndex) (bool, error)) error {
	for attempt := 0; attempt < 50; attempt++ {
		idx, rev, err := s.getIndex(ctx, uid)
		if err != nil {
			return err
		}
		changed, err := fn(&idx)
		if err != nil || !changed {
			return err
		}
		val, _ := json.Marshal(idx)
		if rev == 0 {
			_, err = s.kv.Create(ctx, userKey(uid), val)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
		} else {
			_, err = s.kv.Update(ctx, userKey(uid), val, rev)
			if isWrongRevision(err) {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("update index of %s: %w", uid, err)
		}
		return nil
	}
	return fmt.Errorf("%w: index of %s changed too often", ErrConflict, uid)
}

func isWrongRevision(err error) bool { return schema.IsWrongLastSeq(err) }

// Shares reports whether a and b are both members of some conversation
// that b has accepted: whether b's presence is a's to see.
// aConvs is a's index (UserConversations), read once by callers that ask
// about many users.
func (s *Store) Shares(ctx context.Context, a string, aConvs []string, b string) (bool, error) {
	if a == b {
		return true, nil
	}
	bConvs, err := s.UserConversations(ctx, b)
	if err != nil {
		return false, err
	}
	mine := make(map[string]bool, len(aConvs))
	for _, c := range aConvs {
		mine[c] = true
	}
	for _, c := range bConvs {
		if !mine[c] {
			continue
		}
		d, err := s.Get(ctx, c)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		// b's presence does not flow through a request b has not
		// accepted.
		if d.IsMember(a) && d.IsMember(b) && !d.IsPending(b) {
			return true, nil
		}
	}
	return false, nil
}
