package conversation

import (
	"context"
	"encoding/json"
	"strings"
	"sync"

	"github.com/natter-chat/natter/nats/kvbatch"
	"github.com/natter-chat/natter/nats/schema"
)

// ViewsFor answers GetForViewer for many conversations of uid at once
// (the inbox's pages, issue 15): their documents and uid's member keys in
// one batched read (kvbatch) instead of two reads each. Where both agree
// (uid is a member with a member key, or invited without one) the
// document is in views. The others are in check, for the caller to ask
// GetForViewer one at a time: a document or key the replica does not
// have (with Config.LeaderChecks the leader is asked there), a key and a
// document that disagree (a change half done, which GetForMember
// repairs), a conversation uid may not see. Nothing is left out of both.
func (s *Store) ViewsFor(ctx context.Context, uid string, convs []string) (views map[string]*Doc, check []string, err error) {
	keys := make([]string, 0, 2*len(convs))
	for _, c := range convs {
		keys = append(keys, docKey(c), memberKey(c, uid))
	}
	var mu sync.Mutex
	docs := make(map[string]*Doc, len(convs))
	member := make(map[string]bool, len(convs))
	docPrefix, memberPrefix, memberSuffix := docKey(""), "m.", "."+uid // docKey, memberKey
	err = kvbatch.GetMany(ctx, s.js.Conn(), schema.BucketConversations, keys, func(key string, rev uint64, val []byte) {
		if conv, ok := strings.CutPrefix(key, docPrefix); ok {
			d, cached := s.docs.atRevision(conv, rev)
			if !cached {
				d = new(Doc)
				if json.Unmarshal(val, d) != nil {
					return // GetForViewer says what is wrong with it
				}
				s.docs.put(conv, rev, d)
			}
			mu.Lock()
			docs[conv] = d
			mu.Unlock()
			return
		}
		if rest, ok := strings.CutPrefix(key, memberPrefix); ok {
			if conv, ok := strings.CutSuffix(rest, memberSuffix); ok {
				mu.Lock()
				member[conv] = true
				mu.Unlock()
			}
		}
	})
	if err != nil {
		return nil, nil, err
	}
	views = make(map[string]*Doc, len(convs))
	for _, c := range convs {
		d, ok := docs[c]
		switch {
		case ok && member[c] && d.IsMember(uid):
			views[c] = d
		case ok && !member[c] && !d.IsMember(uid) && d.IsInvited(uid):
			views[c] = d
		default:
			check = append(check, c)
		}
	}
	return views, check, nil
}
