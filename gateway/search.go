package gateway

import (
	"context"
	"strings"

	"github.com/natter-chat/natter/protocol"
)

// Searcher answers full-text queries over the messages of the named
// conversations (the search API of the indexer role). It checks no
// membership: search does, before and after asking. A bad cursor is an
// error wrapping ErrBadRequest.
type Searcher interface {
	Search(ctx context.Context, query string, convs []string, cursor string, limit int) (hits []protocol.SearchHit, next string, err error)
}

// search answers a search request: the user's conversations at query time
// (or the one named, if the user is a member), asked of the Searcher, and
// each hit's conversation checked again, since a user's conversation list
// may still name one they just left.
func (sess *session) search(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if sess.srv.searcher == nil {
		return nil, protocol.Errorf(protocol.CodeUnavailable, "search is not enabled on this server")
	}
	query := strings.TrimSpace(req.Query)
	if query == "" || len(query) > protocol.MaxQueryBytes {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "query must be 1 to %d bytes", protocol.MaxQueryBytes)
	}
	limit := req.Limit
	if limit <= 0 {
		limit = protocol.DefaultSearchLimit
	}
	limit = min(limit, protocol.MaxSearchLimit)
	var convs []string
	if req.Conv != "" {
		if err := sess.checkConv(ctx, req.Conv); err != nil {
			return nil, err
		}
		convs = []string{req.Conv}
	} else {
		var err error
		if convs, err = sess.srv.convs.UserConversations(ctx, sess.user); err != nil {
			return nil, sess.fail(err)
		}
	}
	res := &protocol.SearchResults{Type: protocol.TypeSearchResults, ID: req.ID, Hits: []protocol.SearchHit{}}
	if len(convs) == 0 {
		return res, nil
	}
	hits, next, err := sess.srv.searcher.Search(ctx, query, convs, req.Cursor, limit)
	if err != nil {
		return nil, sess.fail(err)
	}
	member := make(map[string]bool)
	for _, h := range hits {
		ok, seen := member[h.Conv]
		if !seen {
			if ok, err = sess.srv.convs.IsMember(ctx, h.Conv, sess.user); err != nil {
				return nil, sess.fail(err)
			}
			member[h.Conv] = ok
		}
		if ok {
			res.Hits = append(res.Hits, h)
		}
	}
	res.Cursor = next
	return res, nil
}
