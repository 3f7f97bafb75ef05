package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"

	"golang.org/x/sync/errgroup"

	"github.com/natter-chat/natter/protocol"
)

// conversationsWidth bounds the conversations one conversations request
// reads at once: each costs a few KV and history reads.
const conversationsWidth = 16

// maxUnread is where unread counts saturate: counting scans the unread
// messages, and no client shows more than "9999+".
const maxUnread = 10_000

func (sess *session) create(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if !validIDs(req.Members) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "members must match [A-Za-z0-9_-]{1,64}")
	}
	if perr := sess.checkAdds(ctx, req.Kind, "", req.Members); perr != nil {
		return nil, perr
	}
	others := slices.DeleteFunc(slices.Clone(req.Members), func(u string) bool { return u == sess.user })
	var d Conversation
	var err error
	switch req.Kind {
	case protocol.ConversationDirect:
		slices.Sort(others)
		others = slices.Compact(others)
		if len(others) != 1 {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "a direct conversation names exactly one other user")
		}
		d, err = sess.srv.convs.CreateDirect(ctx, sess.actor(), others[0])
	case protocol.ConversationGroup:
		d, err = sess.srv.convs.CreateGroup(ctx, sess.actor(), req.Title, others)
	default:
		return nil, protocol.Errorf(protocol.CodeBadRequest, `kind must be "direct" or "group"`)
	}
	if err != nil {
		return nil, sess.fail(err)
	}
	return sess.conversationFrame(ctx, req.ID, d)
}

func (sess *session) addMember(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	users := req.Users
	if req.User != "" {
		users = append(slices.Clone(users), req.User)
	}
	if len(users) == 0 || !validIDs(users) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "user or users must name valid user ids")
	}
	if !protocol.ValidID(req.Conv) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "conv must match [A-Za-z0-9_-]{1,64}")
	}
	if perr := sess.checkAdds(ctx, protocol.ConversationGroup, req.Conv, users); perr != nil {
		return nil, perr
	}
	invited, err := sess.srv.consent.AddOrInvite(ctx, sess.actor(), req.Conv, users)
	if err != nil {
		return nil, sess.fail(err)
	}
	return &protocol.AddedOK{Type: protocol.TypeOK, ID: req.ID, Invited: invited}, nil
}

func (sess *session) removeMember(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if !protocol.ValidID(req.Conv) || !protocol.ValidID(req.User) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "conv and user must be valid ids")
	}
	if req.Ban {
		return sess.ok(req, sess.srv.groups.Ban(ctx, sess.actor(), req.Conv, req.User))
	}
	if err := sess.srv.convs.RemoveMember(ctx, sess.actor(), req.Conv, req.User); err != nil {
		return nil, sess.fail(err)
	}
	return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
}

func (sess *session) leave(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if !protocol.ValidID(req.Conv) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "conv must match [A-Za-z0-9_-]{1,64}")
	}
	// A direct conversation is left by hiding it, an invitation by
	// declining it (consent.go).
	if direct, perr := sess.leaveDirect(ctx, req.Conv); direct || perr != nil {
		if perr != nil && perr.Code == protocol.CodeForbidden {
			perr = sess.leaveInvitation(ctx, req.Conv, perr)
		}
		if perr != nil {
			return nil, perr
		}
		return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
	}
	if err := sess.srv.convs.Leave(ctx, sess.actor(), req.Conv); err != nil {
		return nil, sess.fail(err)
	}
	return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
}

// members pages through a conversation's members in id order.
func (sess *session) members(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if !protocol.ValidID(req.Conv) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "conv must match [A-Za-z0-9_-]{1,64}")
	}
	var after string
	if len(req.After) > 0 && string(req.After) != "null" {
		if err := json.Unmarshal(req.After, &after); err != nil {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "after must be a user id string")
		}
	}
	d, err := sess.srv.convs.Get(ctx, req.Conv, sess.user)
	if err != nil {
		return nil, sess.fail(err)
	}
	limit := pageLimit(req.Limit, 1000)
	all := d.SortedMembers()
	start := sort.SearchStrings(all, after)
	if start < len(all) && after != "" && all[start] == after {
		start++
	}
	end := min(start+limit, len(all))
	return &protocol.MembersFrame{Type: protocol.TypeMembers, ID: req.ID, Conv: req.Conv, Members: all[start:end], More: end < len(all)}, nil
}

// conversations answers one page of the user's conversations, by id,
// after the cursor the request names. A page ends at the limit or before
// the next conversation would take the frame past its bound; then more is
// true and next is the cursor of the following page.
func (sess *session) conversations(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	after, perr := decodeConvCursor(req.After)
	if perr != nil {
		return nil, perr
	}
	limit := protocol.DefaultConversationsLimit
	if req.Limit > 0 {
		limit = min(req.Limit, protocol.MaxConversationsLimit)
	}
	ids, hidden, err := sess.srv.consent.UserList(ctx, sess.user)
	if err != nil {
		return nil, sess.fail(err)
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	// next is the index of the first id not yet on a page.
	next, found := slices.BinarySearch(ids, after)
	if found {
		next++
	}
	head := appendHead(make([]byte, 0, 64+len(req.ID)), protocol.TypeConversations, req.ID)
	head = append(head, `,"conversations":[`...)
	tailMax := len(`],"more":false,"next":""}`) + maxConvCursor
	p := newPage(sess.srv.pageBytes(), len(head), tailMax)
	// Read in batches of what the page still lacks: conversations the user
	// just left render as nil and are skipped, so one batch may not fill it.
	for full := false; !full && p.len() < limit && next < len(ids); {
		batch := ids[next:min(next+limit-p.len(), len(ids))]
		convs, err := sess.renderConversations(ctx, batch, hidden)
		if err != nil {
			return nil, sess.fail(err)
		}
		for _, c := range convs {
			if c != nil {
				ok, err := p.add(c)
				if err != nil {
					return nil, sess.fail(err)
				}
				if !ok {
					full = true
					break
				}
			}
			next++
		}
	}
	tail := []byte(`],"more":false}`)
	if next < len(ids) {
		tail = protocol.AppendString([]byte(`],"more":true,"next":`), encodeConvCursor(ids[next-1]))
		tail = append(tail, '}')
	}
	return encodedFrame(p.frame(head, false, tail)), nil
}

// renderConversations renders the conversations ids of the user, several
// at once, nil for those the user is no longer a member of.
func (sess *session) renderConversations(ctx context.Context, ids []string, hidden map[string]uint64) ([]*protocol.Conversation, error) {
	out := make([]*protocol.Conversation, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conversationsWidth)
	for i, id := range ids {
		if gctx.Err() != nil {
			// One failed or the request timed out: the answer is an
			// error, so start no more.
			break
		}
		g.Go(func() error {
			c, err := sess.conversation(gctx, id)
			if c != nil && (isHidden(c, hidden) || sess.hiddenWithBlocked(c, hidden)) {
				c = nil
			}
			out[i] = c
			return err
		})
	}
	err := g.Wait()
	if err == nil {
		// Nothing failed, but some may not have started.
		err = ctx.Err()
	}
	return out, err
}

// conversation renders one conversation of the user's list, or nil when
// the user is no longer a member: the index may still name it.
func (sess *session) conversation(ctx context.Context, conv string) (*protocol.Conversation, error) {
	d, err := sess.srv.consent.View(ctx, conv, sess.user)
	if errors.Is(err, ErrForbidden) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c := d.Protocol(sess.srv.cfg.MembersInline)
	c.State = d.StateFor(sess.user)
	c.Role = d.Role(sess.user)
	if c.State == protocol.ConvStateInvited {
		// Not a member: what was said in it is not the user's to see.
		return c, nil
	}
	if c.Mute, err = sess.muteOf(ctx, c.Conv); err != nil {
		return nil, err
	}
	if c.LastSeq, err = sess.srv.msgs.Last(ctx, c.Conv); err != nil {
		return nil, err
	}
	// The marker includes what the user sent.
	if err := sess.srv.own.settle(ctx, sess.user, c.Conv); err != nil {
		return nil, err
	}
	if c.ReadSeq, err = sess.srv.markers.ReadSeq(ctx, c.Conv, sess.user); err != nil {
		return nil, err
	}
	if c.LastSeq > c.ReadSeq {
		if c.Unread, err = sess.srv.msgs.CountAfter(ctx, c.Conv, c.ReadSeq, maxUnread); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// isHidden reports whether the user hid c and no message came since.
func isHidden(c *protocol.Conversation, hidden map[string]uint64) bool {
	at, ok := hidden[c.Conv]
	return ok && c.LastSeq <= at
}
