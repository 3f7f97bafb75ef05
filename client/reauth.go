package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// Reauth hands the connection a fresh token for the same user before the
// one it authenticated with expires; the gateway closes a connection whose
// token expired with 4003 (protocol.CloseTokenExpired). A token that does
// not verify is answered unauthorized, one for another user forbidden;
// the connection then keeps its current token.
func (c *Client) Reauth(ctx context.Context, token string) error {
	return c.call(ctx, protocol.Request{Type: protocol.TypeReauth, Token: token}, protocol.TypeOK, nil)
}

// TokenExpiry reads the exp claim of a JWT without verifying it (the
// server does that): a client uses it to know when to refresh. ok is false
// when the token has no readable exp.
func TokenExpiry(token string) (exp time.Time, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	sec := int64(*claims.Exp)
	return time.Unix(sec, int64((*claims.Exp-float64(sec))*1e9)), true
}

// refreshAt is when a session refreshes a token that expires at exp,
// obtained at now: a quarter of its remaining life before exp, but never
// more than a minute before.
func refreshAt(now, exp time.Time) time.Time {
	lead := min(exp.Sub(now)/4, time.Minute)
	return exp.Add(-max(lead, 0))
}

// dialOptions are the Options of the next dial: with a TokenSource, a
// fresh token.
func (s *Session) dialOptions(ctx context.Context) (Options, error) {
	opts := s.opts.Options
	if s.opts.TokenSource == nil {
		return opts, nil
	}
	tok, err := s.opts.TokenSource(ctx)
	if err != nil {
		return opts, fmt.Errorf("client: token source: %w", err)
	}
	opts.Token = tok
	s.tokenExp, _ = TokenExpiry(tok)
	return opts, nil
}

// refreshTimer fires when the current token should be refreshed; it never
// fires without a TokenSource or a token without exp.
func (s *Session) refreshTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	if s.opts.TokenSource != nil && !s.tokenExp.IsZero() {
		t.Reset(time.Until(refreshAt(time.Now(), s.tokenExp)))
	}
	return t
}

// refresh gets a fresh token and sends it in reauth on c, returning how
// long to wait before the next refresh: until the new token's refresh
// time, or a second after a failure.
func (s *Session) refresh(c *Client) time.Duration {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	tok, err := s.opts.TokenSource(ctx)
	if err == nil {
		err = c.Reauth(ctx, tok)
	}
	exp, ok := TokenExpiry(tok)
	if err != nil || !ok {
		return time.Second
	}
	s.tokenExp = exp
	return time.Until(refreshAt(time.Now(), exp))
}
