package presence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
)

// heldPartition is a partition whose lease this service holds: a holder
// goroutine renews the lease and runs the partition's worker.
type heldPartition struct {
	release chan struct{} // closed: stop and release the lease
	done    chan struct{} // closed by the holder when it has let go
}

// balance is one round of the service's partition keeping: it announces
// this service in s.<id> (with the lease TTL), forgets partitions whose
// holder let go (lease lost), lets go of partitions beyond its fair share
// (Partitions divided by the services announced) and takes free ones up
// to that share. Every service runs it every third of the TTL, so the
// partitions spread evenly and a dead service's are taken over once its
// leases expire.
func (s *Service) balance(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	if _, err := s.js.Publish(ctx, schema.KVKey(schema.BucketPresence, memberKey(s.cfg.ID)), nil, jetstream.WithMsgTTL(s.cfg.LeaseTTL)); err != nil {
		s.cfg.Logger.Warn("presence service not announced", "id", s.cfg.ID, "err", err)
	}
	services, err := s.services(ctx)
	if err != nil {
		s.cfg.Logger.Warn("presence services not counted", "err", err)
		services = 1
	}
	share := (Partitions + services - 1) / services

	s.mu.Lock()
	defer s.mu.Unlock()
	for p, h := range s.held {
		select {
		case <-h.done:
			delete(s.held, p)
		default:
		}
	}
	for len(s.held) > share {
		p := s.surplus()
		close(s.held[p].release)
		delete(s.held, p)
	}
	first := Partition(s.cfg.ID)
	for i := 0; i < Partitions && len(s.held) < share; i++ {
		p := (first + i) % Partitions
		if s.held[p] != nil {
			continue
		}
		// A partition this service is still letting go of is not free:
		// its lease is deleted only once its worker has stopped.
		rev, err := s.kv.Create(ctx, ownerKey(p), []byte(s.cfg.ID), jetstream.KeyTTL(s.cfg.LeaseTTL))
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
				s.cfg.Logger.Warn("presence partition not taken", "partition", p, "err", err)
			}
			continue
		}
		h := &heldPartition{release: make(chan struct{}), done: make(chan struct{})}
		s.held[p] = h
		s.holders.Go(func() { s.hold(p, rev, h) })
	}
}

// surplus picks the partition to let go of: the last one in this
// service's own order, so that what it keeps is stable. s.mu is held.
func (s *Service) surplus() int {
	first := Partition(s.cfg.ID)
	for i := Partitions - 1; i >= 0; i-- {
		if p := (first + i) % Partitions; s.held[p] != nil {
			return p
		}
	}
	panic("presence: surplus of no partition")
}

// services counts the presence services announced in the bucket.
func (s *Service) services(ctx context.Context) (int, error) {
	w, err := s.kv.WatchFiltered(ctx, []string{memberPrefix + "*"}, jetstream.IgnoreDeletes(), jetstream.MetaOnly())
	if err != nil {
		return 0, err
	}
	defer stopWatch(w)
	n := 0
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return 0, errWatchEnded
			}
			if e == nil {
				return max(n, 1), nil
			}
			n++
		}
	}
}

// stopWatch stops a watcher and drains what it still had on its way: its
// subscription's handler waits on the channel until then.
func stopWatch(w jetstream.KeyWatcher) {
	_ = w.Stop()
	for range w.Updates() {
	}
}

// hold works partition p under its lease (revision rev) until the
// service lets go of it, or the lease is lost: renewing it fails with a
// revision mismatch (it expired, and another service may have it), or
// does not succeed for half the TTL (it may expire soon). Either way the
// worker stops before hold returns; on release the lease is deleted
// after that, so that the next holder starts after this one stopped.
func (s *Service) hold(p int, rev uint64, h *heldPartition) {
	defer close(h.done)
	ctx, cancel := context.WithCancel(context.Background())
	worked := make(chan error, 1)
	run := func() { worked <- newWorker(s, p).run(ctx) }
	go run()
	stop := func() {
		cancel()
		<-worked
	}
	s.cfg.Logger.Debug("presence partition taken", "partition", p, "service", s.cfg.ID)
	every := s.cfg.LeaseTTL / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	renewed := time.Now()
	for {
		select {
		case <-h.release:
			stop()
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			if err := purgeKey(ctx, s.kv, ownerKey(p), s.markerTTL, jetstream.LastRevision(rev)); err != nil {
				s.cfg.Logger.Warn("presence partition lease not released; it expires by itself", "partition", p, "err", err)
			}
			s.cfg.Logger.Debug("presence partition released", "partition", p, "service", s.cfg.ID)
			return
		case err := <-worked:
			s.cfg.Logger.Warn("presence partition worker ended; restarting it", "partition", p, "err", err)
			time.Sleep(every / 4)
			go run()
		case <-tick.C:
			rctx, rcancel := context.WithTimeout(context.Background(), every)
			next, err := s.renew(rctx, p, rev)
			rcancel()
			if err == nil {
				rev, renewed = next, time.Now()
				continue
			}
			if errors.Is(err, errLeaseLost) || time.Since(renewed) >= s.cfg.LeaseTTL/2 {
				stop()
				s.cfg.Logger.Warn("presence partition lost; its worker stopped", "partition", p, "service", s.cfg.ID, "err", err)
				return
			}
			s.cfg.Logger.Warn("presence partition lease not renewed; retrying", "partition", p, "err", err)
		}
	}
}

// renew writes partition p's lease again with its TTL, if this service
// still holds it, and returns its new revision. A KV Update cannot carry
// a TTL, so it is published to the bucket's subject with the revision
// check Update would do.
func (s *Service) renew(ctx context.Context, p int, rev uint64) (uint64, error) {
	ack, err := s.js.Publish(ctx, schema.KVKey(schema.BucketPresence, ownerKey(p)), []byte(s.cfg.ID),
		jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgTTL(s.cfg.LeaseTTL))
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, fmt.Errorf("%w: it expired or another service took it", errLeaseLost)
		}
		return 0, fmt.Errorf("renew presence partition %d: %w", p, err)
	}
	return ack.Sequence, nil
}

// releaseAll lets go of every partition, waits for the holders and
// withdraws this service's announcement.
func (s *Service) releaseAll() {
	s.mu.Lock()
	for p, h := range s.held {
		close(h.release)
		delete(s.held, p)
	}
	s.mu.Unlock()
	s.holders.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_ = purgeKey(ctx, s.kv, memberKey(s.cfg.ID), s.markerTTL)
}
