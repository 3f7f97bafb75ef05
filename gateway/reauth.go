package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// expiry closes a session with 4003 when its token stops being valid. It
// is a time.AfterFunc timer, not a goroutine: an idle connection costs a
// timer entry. reauth re-arms it; a timer superseded while it fires is
// ignored by its generation.
type expiry struct {
	mu    sync.Mutex
	until time.Time // when the session's token stops being valid
	timer *time.Timer
	gen   uint64
	done  bool
}

// verify checks a token and returns its user and the instant it stops
// being valid.
func (s *Server) verify(token string) (string, time.Time, error) {
	return s.verifier.VerifyUntil(token)
}

// armExpiry (re)starts the session's expiry timer for a token valid until
// until. It does nothing once the session stopped it.
func (sess *session) armExpiry(until time.Time) {
	e := &sess.expiry
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done {
		return
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	e.gen++
	e.until = until
	gen := e.gen
	e.timer = time.AfterFunc(max(until.Sub(sess.srv.cfg.Now()), 0), func() {
		e.mu.Lock()
		current := e.gen == gen && !e.done
		e.mu.Unlock()
		if current {
			sess.closeWith(protocol.CloseExpired)
		}
	})
}

// stopExpiry stops the timer for good, when the connection closed.
func (sess *session) stopExpiry() {
	e := &sess.expiry
	e.mu.Lock()
	defer e.mu.Unlock()
	e.done = true
	if e.timer != nil {
		e.timer.Stop()
	}
}

// reauth takes a fresh token for the session's user and moves the
// connection's end to that token's. A token that does not verify is
// unauthorized, one for another user forbidden; either way the
// connection keeps its user and its current token's end.
func (sess *session) reauth(_ context.Context, req *protocol.Request) (any, *protocol.Error) {
	if req.Token == "" {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "reauth needs a token")
	}
	uid, until, err := sess.srv.verify(req.Token)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeUnauthorized, "bad token; the connection keeps its current one")
	}
	if uid != sess.user {
		return nil, protocol.Errorf(protocol.CodeForbidden, "the token is for another user; a connection keeps its user")
	}
	sess.armExpiry(until)
	return &protocol.OK{Type: protocol.TypeOK, ID: req.ID}, nil
}
