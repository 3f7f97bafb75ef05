package gateway

import (
	"context"
	"time"

	"github.com/natter-chat/natter/nats/schema"
)

// De-duplication across a re-partition (schema.Repartition). The new
// message streams' Nats-Msg-Id windows know nothing of what the old
// streams stored, so a send stored in an old stream whose ack was lost (a
// publish attempt timed out while it was stored, a node died between
// store and ack) and sent again after the move would be stored twice.
// The old streams are kept, retired, for the de-dup window: while one is,
// every send of a conversation it holds (marked a resend or not) is first
// looked up in it, and one found there is answered with its original seq.
// The gateway reads the retired streams once, with the layout: a gateway
// that saw the move restarted (app/relayout.go).

// retiredStreams are the retired message streams, read once.
func (s *Server) retiredStreams(ctx context.Context) ([]schema.Retired, error) {
	if r := s.retired.Load(); r != nil {
		return *r, nil
	}
	l, err := s.chatLayout(ctx)
	if err != nil {
		return nil, err
	}
	r, err := schema.RetiredBeside(ctx, s.js, l)
	if err != nil {
		return nil, err
	}
	s.retired.Store(&r)
	return r, nil
}

// retiredWithin reports whether a retired stream's de-dup window is still
// open at now: only then is a send looked up there. After the first read
// it is an atomic load and a loop over (usually no) streams.
func (s *Server) retiredWithin(ctx context.Context, now time.Time) (bool, error) {
	rs, err := s.retiredStreams(ctx)
	for _, r := range rs {
		if now.Before(r.Until) {
			return true, nil
		}
	}
	return false, err
}

// findRetired looks for conv's message msgID in the retired stream that
// holds conv, within the de-dup window.
func (s *Server) findRetired(ctx context.Context, conv, msgID string) (seq uint64, ts string, found bool, err error) {
	rs, err := s.retiredStreams(ctx)
	if err != nil {
		return 0, "", false, err
	}
	now := s.cfg.Now()
	for _, r := range rs {
		if !now.Before(r.Until) || !r.Holds(conv) {
			continue
		}
		since := now.Add(-r.Until.Sub(r.At) - resendSkew)
		inc(s.metrics.ResendLookups)
		for _, subj := range r.Layout.StoredMsgs(conv) {
			if seq, ts, found, err = s.findSentIn(ctx, r.Name, conv, subj, msgID, since); err != nil || found {
				return seq, ts, found, err
			}
		}
	}
	return 0, "", false, nil
}
