package gateway

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
)

// chatLayout is the message streams' layout (schema.Layout): which stream
// holds a conversation, under which stored subjects. It is read once and
// kept: N never changes in place (schema.ErrRepartition), and an upgrade
// of CHAT to fan-out partitions is covered by Layout.StoredMsgs.
func (s *Server) chatLayout(ctx context.Context) (schema.Layout, error) {
	if l := s.layout.Load(); l != nil {
		return *l, nil
	}
	l, err := schema.ReadLayout(ctx, s.js)
	if err != nil {
		return schema.Layout{}, err
	}
	s.layout.Store(&l)
	return l, nil
}

// chatStream returns the handle of the stream holding conv, looked up once
// and kept (with its configuration as it was then).
func (s *Server) chatStream(ctx context.Context, conv string) (jetstream.Stream, error) {
	l, err := s.chatLayout(ctx)
	if err != nil {
		return nil, err
	}
	name := l.StreamOf(conv)
	s.chatMu.Lock()
	st := s.chat[name]
	s.chatMu.Unlock()
	if st == nil {
		if st, err = s.js.Stream(ctx, name); err != nil {
			return nil, err
		}
		s.chatMu.Lock()
		if s.chat == nil {
			s.chat = map[string]jetstream.Stream{}
		}
		s.chat[name] = st
		s.chatMu.Unlock()
	}
	return st, nil
}
