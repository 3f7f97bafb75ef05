package presence

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Retries of a failed purge back off from retryFirst to at most retryMax.
const (
	retryFirst = 100 * time.Millisecond
	retryMax   = 5 * time.Second
)

// repairLoop retries failed purges and runs the periodic reconcile. It is
// apart from the lease loop so that neither delays a lease renewal.
func (t *Tracker) repairLoop() {
	defer t.wg.Done()
	tick := time.NewTicker(t.cfg.ReconcileEvery)
	defer tick.Stop()
	retry := time.NewTimer(retryFirst)
	retry.Stop()
	backoff := retryFirst
	pending := false
	for {
		select {
		case <-t.ctx.Done():
			retry.Stop()
			return
		case <-t.wake:
			if !pending {
				pending = true
				retry.Reset(backoff)
			}
		case <-retry.C:
			ctx, cancel := context.WithTimeout(t.ctx, opTimeout)
			left := t.retryPurges(ctx)
			cancel()
			if left == 0 {
				pending, backoff = false, retryFirst
				continue
			}
			backoff = min(2*backoff, retryMax)
			retry.Reset(backoff)
		case <-tick.C:
			ctx, cancel := context.WithTimeout(t.ctx, t.cfg.ReconcileEvery)
			if err := t.reconcile(ctx); err != nil {
				t.cfg.Logger.Warn("presence reconcile failed", "gateway", t.cfg.Gateway, "err", err)
			}
			cancel()
		}
	}
}

// retryPurges purges again the keys of closed connections whose purge
// failed and returns how many are still left.
func (t *Tracker) retryPurges(ctx context.Context) int {
	t.mu.Lock()
	keys := make([]string, 0, len(t.unpurged))
	for k := range t.unpurged {
		keys = append(keys, k)
	}
	t.mu.Unlock()
	for _, k := range keys {
		if t.live(k) {
			continue
		}
		if err := purgeKey(ctx, t.kv, k, t.markerTTL); err != nil {
			t.cfg.Logger.Debug("presence key purge failed again", "key", k, "err", err)
			continue
		}
		t.mu.Lock()
		delete(t.unpurged, k)
		t.mu.Unlock()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.unpurged)
}

// reconcile compares this gateway's connection keys in the bucket with
// its live connections: it purges keys of connections that are closed
// (a purge lost with no retry left, a rewrite that raced a close) and
// writes keys that are missing (a failed put, a key the presence service
// deleted while the lease looked lost). The bucket is listed before the
// live set is read: a connection is added to the live set before its key
// is written, so a listed key whose connection is not live is closed.
func (t *Tracker) reconcile(ctx context.Context) error {
	stored, err := t.storedKeys(ctx)
	if err != nil {
		return err
	}
	t.mu.Lock()
	var strays []string
	for k := range stored {
		if _, live := t.conns[k]; !live {
			strays = append(strays, k)
		}
	}
	missing := make(map[string]Conn)
	for k, c := range t.conns {
		if _, ok := stored[k]; !ok {
			missing[k] = c
		}
	}
	t.mu.Unlock()
	for _, k := range strays {
		if err := t.remove(ctx, k); err != nil {
			t.cfg.Logger.Warn("stray presence key not purged", "key", k, "err", err)
		}
	}
	for k, c := range missing {
		if err := t.write(ctx, k, c); err != nil {
			t.cfg.Logger.Warn("missing presence key not written", "key", k, "err", err)
		}
	}
	if len(strays) > 0 || len(missing) > 0 {
		t.cfg.Logger.Info("presence reconciled", "gateway", t.cfg.Gateway, "strays", len(strays), "missing", len(missing))
	}
	return nil
}

// storedKeys lists this gateway's connection keys in the bucket.
func (t *Tracker) storedKeys(ctx context.Context) (map[string]struct{}, error) {
	w, err := t.kv.WatchFiltered(ctx, []string{connKey("*", t.cfg.Gateway, "*")}, jetstream.IgnoreDeletes(), jetstream.MetaOnly())
	if err != nil {
		return nil, fmt.Errorf("list presence keys: %w", err)
	}
	defer func() { _ = w.Stop() }()
	keys := make(map[string]struct{})
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list presence keys: %w", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errWatchEnded
			}
			if e == nil {
				return keys, nil
			}
			keys[e.Key()] = struct{}{}
		}
	}
}
