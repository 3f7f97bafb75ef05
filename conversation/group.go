package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// Group settings, roles and moderation (docs/protocol.md). A group has one
// owner (Doc.Owner), admins (Doc.Admins) and plain members:
//
//   - the owner and admins update the settings (title, topic, avatar,
//     read-only), remove plain members (and ban them), unban and list the
//     banned, and delete any message (the gateway's send);
//   - only the owner makes and unmakes admins, removes admins and hands the
//     group over (the old owner becomes an admin);
//   - any member adds members, as before roles existed, unless the group
//     lets only the owner and admins (OnlyAdminsAdd); nobody adds a
//     banned user;
//   - in a read-only group only the owner and admins send (MayPost).
//
// Each change is a compare-and-set of the document recorded as its change,
// with the ActionUpdated event (or removed, for a ban of a member), so a
// gateway's kept send views (view.go) are refused after it, and with Items:
// what it says in the conversation, stored as KindEvent items before the
// event by complete. An item's Nats-Msg-Id is that of the revision and its
// index, so finishing a change again stores it once within the stream's
// de-duplication window.

// ActionUpdated: the group's settings or roles changed; Items say how.
const ActionUpdated = "updated"

// Role returns uid's role in d: protocol.RoleOwner, RoleAdmin, RoleMember,
// or "" for one who is not a member.
func (d *Doc) Role(uid string) string {
	switch {
	case !d.IsMember(uid):
		return ""
	case d.Owner == uid:
		return protocol.RoleOwner
	case slices.Contains(d.Admins, uid):
		return protocol.RoleAdmin
	}
	return protocol.RoleMember
}

// IsAdmin reports whether uid is the owner or an admin of d.
func (d *Doc) IsAdmin(uid string) bool {
	r := d.Role(uid)
	return r == protocol.RoleOwner || r == protocol.RoleAdmin
}

// MayPost reports whether uid, a member, may send in d: anyone but in a
// read-only group, where only the owner and admins do.
func (d *Doc) MayPost(uid string) bool { return !d.ReadOnly || d.IsAdmin(uid) }

// IsBanned reports whether uid is banned from d.
func (d *Doc) IsBanned(uid string) bool { return slices.Contains(d.Banned, uid) }

// mayRemove reports whether actor may remove (or ban) user, another user:
// the owner anyone, an admin those who are neither owner nor admin.
func (d *Doc) mayRemove(actor, user string) bool {
	switch d.Role(actor) {
	case protocol.RoleOwner:
		return true
	case protocol.RoleAdmin:
		return d.Owner != user && !slices.Contains(d.Admins, user)
	}
	return false
}

func without(list []string, u string) []string {
	return slices.DeleteFunc(list, func(x string) bool { return x == u })
}

// GroupSettings is an update of a group's settings: nil fields stay as they are.
type GroupSettings struct {
	Title    *string
	Topic    *string
	Avatar   *string
	ReadOnly *bool
	// OnlyAdminsAdd lets only the owner and admins add members.
	OnlyAdminsAdd *bool
	// TTL is the disappearing-messages setting in seconds (ttl.go).
	TTL *int64
	// RetentionDays keeps messages that many days, 0 for ever (ttl.go).
	RetentionDays *int64
}

// changeGroup applies fn to the group conv, whose member by.User must be,
// with the role fn checks, and completes the change fn records; fn
// returning errNoChange leaves the document as it is.
func (s *Store) changeGroup(ctx context.Context, by Actor, conv string, fn func(d *Doc) error) (*Doc, error) {
	return s.changeSettings(ctx, by, conv, func(d *Doc) error {
		if d.Kind != protocol.ConversationGroup {
			return fmt.Errorf("%w: only groups have settings and roles", ErrBadRequest)
		}
		return fn(d)
	})
}

// changeSettings is changeGroup for any kind of conversation: fn checks
// the kind.
func (s *Store) changeSettings(ctx context.Context, by Actor, conv string, fn func(d *Doc) error) (*Doc, error) {
	d, rev, err := s.change(ctx, conv, by.User, fn)
	if errors.Is(err, errNoChange) {
		// Nothing changed, unless the change that wrote d is unfinished.
		return d, s.finish(ctx, d, rev)
	}
	if err != nil {
		return nil, err
	}
	return d, s.complete(ctx, d, rev)
}

// Update changes the settings of the group conv: the owner or an admin
// may. Changing nothing (the values it has) succeeds without an event.
// A direct conversation has one setting, ttl, which either member
// changes (ttl.go).
func (s *Store) Update(ctx context.Context, by Actor, conv string, set GroupSettings) (*Doc, error) {
	groupOnly := set.Title != nil || set.Topic != nil || set.Avatar != nil || set.ReadOnly != nil || set.OnlyAdminsAdd != nil
	if !groupOnly && set.TTL == nil && set.RetentionDays == nil {
		return nil, fmt.Errorf("%w: name at least one of title, topic, avatar, read_only, only_admins_add, ttl and retention_days", ErrBadRequest)
	}
	if err := s.checkTTL(set.TTL); err != nil {
		return nil, err
	}
	if r := set.RetentionDays; r != nil && !protocol.ValidRetention(*r) {
		return nil, fmt.Errorf("%w: retention_days must be 0 (for ever) to %d", ErrBadRequest, protocol.MaxRetentionDays)
	}
	if t := set.Title; t != nil && (*t == "" || len(*t) > s.cfg.MaxTitleBytes || !utf8.ValidString(*t)) {
		return nil, fmt.Errorf("%w: title must be valid UTF-8 of 1 to %d bytes", ErrBadRequest, s.cfg.MaxTitleBytes)
	}
	if set.Topic != nil {
		if err := protocol.CheckTopic(*set.Topic); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
	}
	if set.Avatar != nil {
		if err := protocol.CheckAvatar(*set.Avatar); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
	}
	u := by.User
	return s.changeSettings(ctx, by, conv, func(d *Doc) error {
		switch {
		case d.Kind == protocol.ConversationGroup && !d.IsAdmin(u):
			return fmt.Errorf("%w: only the owner and admins change the group's settings", ErrRefused)
		case d.Kind != protocol.ConversationGroup && groupOnly:
			return fmt.Errorf("%w: only groups have settings besides ttl and retention_days", ErrBadRequest)
		}
		var items []protocol.GroupEvent
		if t := set.Title; t != nil && *t != d.Title {
			d.Title = *t
			items = append(items, protocol.GroupEvent{Event: protocol.EventRenamed, By: u, Title: t})
		}
		if t := set.Topic; t != nil && *t != d.Topic {
			d.Topic = *t
			items = append(items, protocol.GroupEvent{Event: protocol.EventTopic, By: u, Topic: t})
		}
		if a := set.Avatar; a != nil && *a != d.Avatar {
			d.Avatar = *a
			items = append(items, protocol.GroupEvent{Event: protocol.EventAvatar, By: u, Avatar: a})
		}
		if r := set.ReadOnly; r != nil && *r != d.ReadOnly {
			d.ReadOnly = *r
			items = append(items, protocol.GroupEvent{Event: protocol.EventReadOnly, By: u, ReadOnly: r})
		}
		if a := set.OnlyAdminsAdd; a != nil && *a != d.OnlyAdminsAdd {
			d.OnlyAdminsAdd = *a
			items = append(items, protocol.GroupEvent{Event: protocol.EventOnlyAdminsAdd, By: u, OnlyAdminsAdd: a})
		}
		if t := set.TTL; t != nil && *t != d.TTL {
			d.TTL = *t
			items = append(items, protocol.GroupEvent{Event: protocol.EventTTL, By: u, TTL: t})
		}
		if r := set.RetentionDays; r != nil && *r != d.RetentionDays {
			d.RetentionDays = *r
			items = append(items, protocol.GroupEvent{Event: protocol.EventRetention, By: u, RetentionDays: r})
		}
		if len(items) == 0 {
			return errNoChange
		}
		d.Change = &Event{Action: ActionUpdated, By: u, Origin: by.Session, Items: items}
		return nil
	})
}

// SetRole makes user, a member of the group conv, an admin or a plain
// member (protocol.RoleAdmin, RoleMember): only the owner may.
func (s *Store) SetRole(ctx context.Context, by Actor, conv, user, role string) (*Doc, error) {
	if !protocol.ValidRole(role) {
		return nil, fmt.Errorf("%w: role must be %q or %q", ErrBadRequest, protocol.RoleAdmin, protocol.RoleMember)
	}
	u := by.User
	return s.changeGroup(ctx, by, conv, func(d *Doc) error {
		if d.Owner != u {
			return fmt.Errorf("%w: only the owner makes and unmakes admins", ErrRefused)
		}
		switch {
		case user == u:
			return fmt.Errorf("%w: the owner's role changes only by transfer", ErrBadRequest)
		case !d.IsMember(user):
			return fmt.Errorf("%w: %s is not a member", ErrNotFound, user)
		case d.Role(user) == role:
			return errNoChange
		case role == protocol.RoleAdmin && len(d.Admins) >= protocol.MaxAdmins:
			return fmt.Errorf("%w: a group has at most %d admins", ErrTooLarge, protocol.MaxAdmins)
		case role == protocol.RoleAdmin:
			d.Admins = append(d.Admins, user)
		default:
			d.Admins = without(d.Admins, user)
		}
		d.Change = &Event{Action: ActionUpdated, By: u, Origin: by.Session,
			Items: []protocol.GroupEvent{{Event: protocol.EventRoleChanged, By: u, User: user, Role: role}}}
		return nil
	})
}

// Transfer makes user, a member of the group conv, its owner: only the
// owner may, and becomes an admin.
func (s *Store) Transfer(ctx context.Context, by Actor, conv, user string) (*Doc, error) {
	u := by.User
	return s.changeGroup(ctx, by, conv, func(d *Doc) error {
		if d.Owner != u {
			return fmt.Errorf("%w: only the owner hands the group over", ErrRefused)
		}
		switch {
		case user == u:
			return errNoChange
		case !d.IsMember(user):
			return fmt.Errorf("%w: %s is not a member", ErrNotFound, user)
		}
		// The old owner takes the new one's place among the admins, so
		// their number does not grow.
		if i := slices.Index(d.Admins, user); i >= 0 {
			d.Admins[i] = u
		} else {
			d.Admins = append(d.Admins, u)
		}
		d.Owner = user
		d.Change = &Event{Action: ActionUpdated, By: u, Origin: by.Session,
			Items: []protocol.GroupEvent{{Event: protocol.EventTransferred, By: u, User: user}}}
		return nil
	})
}

// Ban removes user from the group conv, or withdraws their invitation, and
// bans them: nobody may add or invite them until an admin unbans them. The
// owner bans anyone, an admin plain members and non-members.
func (s *Store) Ban(ctx context.Context, by Actor, conv, user string) (*Doc, error) {
	return s.remove(ctx, by, conv, user, false, true)
}

// Unban lifts user's ban from the group conv: the owner or an admin may.
// Unbanning a user who is not banned changes nothing.
func (s *Store) Unban(ctx context.Context, by Actor, conv, user string) (*Doc, error) {
	u := by.User
	return s.changeGroup(ctx, by, conv, func(d *Doc) error {
		if !d.IsAdmin(u) {
			return fmt.Errorf("%w: only the owner and admins unban", ErrRefused)
		}
		if !d.IsBanned(user) {
			return errNoChange
		}
		d.Banned = without(d.Banned, user)
		d.Change = &Event{Action: ActionUpdated, By: u, Origin: by.Session,
			Items: []protocol.GroupEvent{{Event: protocol.EventUnbanned, By: u, User: user}}}
		return nil
	})
}

// Banned returns the users banned from the group conv, sorted: uid must be
// its owner or an admin.
func (s *Store) Banned(ctx context.Context, conv, uid string) ([]string, error) {
	d, err := s.GetForMember(ctx, conv, uid)
	if err != nil {
		return nil, err
	}
	if d.Kind != protocol.ConversationGroup {
		return nil, fmt.Errorf("%w: only groups ban", ErrBadRequest)
	}
	if !d.IsAdmin(uid) {
		return nil, fmt.Errorf("%w: only the owner and admins see who is banned", ErrRefused)
	}
	return slices.Sorted(slices.Values(d.Banned)), nil
}

// itemMsgID is the Nats-Msg-Id of item i of the change of conv's revision
// rev; user ids have no dots, so it cannot be that of a message.
func itemMsgID(conv string, rev uint64, i int) string {
	return "item." + conv + "." + strconv.FormatUint(rev, 10) + "." + strconv.Itoa(i)
}

// publishItems stores the items of ev in conv's messages as KindEvent
// items sent by ev.By, in order; an event that repairs an older change
// (Rev 0) has none.
func (s *Store) publishItems(ctx context.Context, ev Event) error {
	if len(ev.Items) == 0 || ev.Rev == 0 {
		return nil
	}
	ts := protocol.FormatTime(s.cfg.Now())
	for i, it := range ev.Items {
		body, _ := json.Marshal(it)
		id := itemMsgID(ev.Conv, ev.Rev, i)
		env := protocol.Envelope{Sender: it.By, ClientID: id, TS: ts, Kind: protocol.KindEvent, Body: body}
		data, _ := json.Marshal(&env)
		msg := nats.NewMsg(schema.Msg(ev.Conv))
		msg.Data = data
		msg.Header.Set(schema.HeaderMsgID, id)
		if err := s.publishRetry(ctx, msg); err != nil {
			return fmt.Errorf("store %s item of %s: %w", it.Event, ev.Conv, err)
		}
	}
	return nil
}

// publishRetry publishes msg to the CHAT stream, trying a few times.
func (s *Store) publishRetry(ctx context.Context, msg *nats.Msg) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if _, err = s.js.PublishMsg(ctx, msg); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
	}
	return err
}
