package app

import (
	"context"
	"time"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// meteredStore times every operation of the history store this process
// holds and counts its failures (natter_history_store_seconds and
// natter_history_store_errors_total). The registry exists only once the
// process observes itself, so the store looks its metrics up per call
// and records nothing before that.
func (a *App) meteredStore(s history.Store) history.Store {
	if s == nil {
		return nil
	}
	return &storeMeter{Store: s, app: a}
}

type storeMeter struct {
	history.Store
	app *App
}

func (m *storeMeter) done(ctx context.Context, op string, start time.Time, err error) {
	if st := m.app.storeStats.Load(); st != nil {
		st.Done(op, start, err, ctx.Err() != nil)
	}
}

func (m *storeMeter) Append(ctx context.Context, msgs []*protocol.Message) error {
	start := time.Now()
	err := m.Store.Append(ctx, msgs)
	m.done(ctx, "append", start, err)
	return err
}

func (m *storeMeter) After(ctx context.Context, conv string, after uint64, limit int) ([]*protocol.Message, bool, error) {
	start := time.Now()
	msgs, more, err := m.Store.After(ctx, conv, after, limit)
	m.done(ctx, "after", start, err)
	return msgs, more, err
}

func (m *storeMeter) Before(ctx context.Context, conv string, before uint64, limit int) ([]*protocol.Message, bool, error) {
	start := time.Now()
	msgs, more, err := m.Store.Before(ctx, conv, before, limit)
	m.done(ctx, "before", start, err)
	return msgs, more, err
}

func (m *storeMeter) Last(ctx context.Context, conv string) (uint64, error) {
	start := time.Now()
	seq, err := m.Store.Last(ctx, conv)
	m.done(ctx, "last", start, err)
	return seq, err
}

func (m *storeMeter) Count(ctx context.Context, conv string, after uint64) (uint64, error) {
	start := time.Now()
	n, err := m.Store.Count(ctx, conv, after)
	m.done(ctx, "count", start, err)
	return n, err
}

// Expire passes the history writer's expiry sweep on to a store that
// expires rows only when asked (history.Expirer: the embedded store);
// for one that expires rows itself it does nothing.
func (m *storeMeter) Expire(ctx context.Context, now time.Time) (int, error) {
	ex, ok := m.Store.(history.Expirer)
	if !ok {
		return 0, nil
	}
	start := time.Now()
	n, err := ex.Expire(ctx, now)
	m.done(ctx, "expire", start, err)
	return n, err
}

// Rows reads rows by seq from the store under it (history.RowsGetter,
// which both stores are); a store without it knows none, and quotes then
// read as they were sent.
func (m *storeMeter) Rows(ctx context.Context, conv string, seqs []uint64) ([]*protocol.Message, error) {
	g, ok := m.Store.(history.RowsGetter)
	if !ok {
		return nil, nil
	}
	return g.Rows(ctx, conv, seqs)
}
