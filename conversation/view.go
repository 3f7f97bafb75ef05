package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
)

// Membership views: what a gateway keeps in memory so that a send reads
// nothing (gateway/memberview.go). A view is a user's membership of a
// conversation together with the seq of the conversation's last
// membership event (on Layout.StoredMember) when it was read; a send
// publishes with Nats-Expected-Last-Subject-Sequence of that seq, so
// JetStream stores it only if no membership event was stored since.
//
// Why that is sound. Every change of a document is a compare-and-set
// that records the change (Doc.Change), and the request that makes it is
// acknowledged only after complete has stored the change's event, after
// the write (repair.go); a change that stops before its event is finished,
// event included, before any retry of it is acknowledged. MemberView reads
// the last event's seq S first, then the document, both from the leaders
// of their streams (a replica may be behind). So the document read is at
// least as new as every change whose event is at or below S. A change
// acknowledged later (a remove_member) has its event above S: a publish
// expecting S is refused, and the refreshed view reads the new seq and
// then a document that has the change. The other order, document then
// seq, could pair a document from before a remove with the seq of the
// remove's event, and the removed member's publish would pass; view_test
// makes that interleaving and checks it cannot.
//
// A view whose seq is older than its document (a change written but not
// yet announced) only costs a refusal and a refresh. Messages of a stream
// that ages out events only lower the last seq, which also refuses.

// MemberView is uid's membership of a conversation as of the membership
// event at Seq (0: none stored).
type MemberView struct {
	// Subject is the stored membership subject Seq is the last seq of: the
	// one a publish names in Nats-Expected-Last-Subject-Sequence-Subject.
	Subject string
	Seq     uint64
	Member  bool
	Pending bool // a member who has yet to accept the request
	// Muted: a member who may not send, the group being read-only
	// (group.go). Changing that stores an event like membership does.
	Muted bool
	// TTL is the ttl in seconds messages sent now get: the shorter of
	// the conversation's ttl and retention (ttl.go); changing either
	// stores an event too.
	TTL int64
}

// viewBetweenReads, when set (tests), runs between the two reads of
// MemberView.
var viewBetweenReads func()

// MemberView reads uid's view of conv: the seq of conv's last membership
// event, then the document, in that order (see above). A conversation
// that does not exist is a view with Member false.
func (s *Store) MemberView(ctx context.Context, conv, uid string) (MemberView, error) {
	st, err := s.chat(ctx, conv)
	if err != nil {
		return MemberView{}, err
	}
	s.mu.Lock()
	// The subject new membership events are stored on: on a stream
	// upgraded to partitions an older event may sit under the old form,
	// but the next change lands here and moves this subject's last seq.
	subj := s.layout.StoredMember(conv)
	s.mu.Unlock()
	seq, _, err := s.leaderGet(ctx, st.CachedInfo().Config.Name, subj)
	if err != nil {
		return MemberView{}, fmt.Errorf("last membership event of %s: %w", conv, err)
	}
	if viewBetweenReads != nil {
		viewBetweenReads()
	}
	v := MemberView{Subject: subj, Seq: seq}
	rev, val, err := s.leaderGet(ctx, schema.KVStream(schema.BucketConversations), schema.KVKey(schema.BucketConversations, docKey(conv)))
	if err != nil {
		return MemberView{}, fmt.Errorf("get conversation %s: %w", conv, err)
	}
	if rev == 0 || len(val) == 0 {
		return v, nil
	}
	d, ok := s.docs.atRevision(conv, rev)
	if !ok {
		d = new(Doc)
		if err := json.Unmarshal(val, d); err != nil {
			return MemberView{}, fmt.Errorf("decode conversation %s: %w", conv, err)
		}
		s.docs.put(conv, rev, d)
	}
	v.Member, v.Pending = d.IsMember(uid), d.IsPending(uid)
	v.Muted = v.Member && !d.MayPost(uid)
	v.TTL = d.MessageTTL()
	return v, nil
}

// leaderGet reads the last message stored on subject in stream from the
// stream's leader (not a direct get, which any replica answers, however
// far behind): its seq and data, or seq 0 when there is none.
func (s *Store) leaderGet(ctx context.Context, stream, subject string) (uint64, []byte, error) {
	req, _ := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{subject})
	msg, err := s.js.Conn().RequestWithContext(ctx, schema.MsgGetAPI(stream), req)
	if err != nil {
		return 0, nil, err
	}
	var resp struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Seq  uint64 `json:"seq"`
			Data []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return 0, nil, err
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == int(jetstream.JSErrCodeMessageNotFound):
		return 0, nil, nil
	case resp.Error != nil:
		return 0, nil, fmt.Errorf("%s (%d)", resp.Error.Description, resp.Error.ErrCode)
	case resp.Message == nil:
		return 0, nil, errors.New("empty answer")
	}
	return resp.Message.Seq, resp.Message.Data, nil
}

// LeaderValue returns key's value in the bucket and its revision as the
// bucket's leader has them, nil and 0 when it has none (or a deletion):
// for a record its reader must see as last written, such as an erasure's
// progress (services/erase), which a replica behind it would make a run
// do and count again. The caller needs STREAM.MSG.GET on the bucket's
// stream, which the roles that write it have.
func (s *Store) LeaderValue(ctx context.Context, key string) ([]byte, uint64, error) {
	rev, val, err := s.leaderGet(ctx, schema.KVStream(schema.BucketConversations), schema.KVKey(schema.BucketConversations, key))
	if err != nil || rev == 0 || len(val) == 0 {
		return nil, 0, err
	}
	return val, rev, nil
}

// Latest returns conv's document as the leader of its bucket's stream has
// it, or ErrNotFound. Get reads with a direct get, which any replica
// answers however far behind it is: a reader that has just met a
// membership event of conv (the fan-out) must see at least the change
// the event announces, which is acknowledged on the leader before its
// event is stored (repair.go), but a follower may not have applied yet.
func (s *Store) Latest(ctx context.Context, conv string) (*Doc, error) {
	rev, val, err := s.leaderGet(ctx, schema.KVStream(schema.BucketConversations), schema.KVKey(schema.BucketConversations, docKey(conv)))
	if err != nil {
		return nil, fmt.Errorf("get conversation %s: %w", conv, err)
	}
	if rev == 0 || len(val) == 0 { // none, or deleted (a KV tombstone)
		return nil, ErrNotFound
	}
	var d Doc
	if err := json.Unmarshal(val, &d); err != nil {
		return nil, fmt.Errorf("decode conversation %s: %w", conv, err)
	}
	return &d, nil
}

// GetAtLeast returns conv's document at revision rev or later: a reader
// that has just met a membership event of conv (whose Event.Rev is rev;
// 0 for a repair, which names none) must see at least the change the
// event announces. It reads as Get does, with a direct get any replica
// answers, and only when that replica is behind rev (or rev is 0, or it
// does not know conv yet) asks the leader (Latest). Its user needs
// STREAM.MSG.GET on the bucket's stream (schema: the roles that write
// it).
func (s *Store) GetAtLeast(ctx context.Context, conv string, rev uint64) (*Doc, error) {
	d, got, err := s.get(ctx, conv)
	switch {
	case err == nil && rev != 0 && got >= rev:
		return d, nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return nil, err
	}
	return s.Latest(ctx, conv)
}
