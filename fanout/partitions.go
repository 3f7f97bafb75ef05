package fanout

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/natter-chat/natter/nats/pinned"
	"github.com/natter-chat/natter/nats/schema"
)

// Timing of the partition share-out; variables so tests can say so.
var (
	// legacyPoll is how often a worker of an unpartitioned stream, or of
	// its messages stored before partitioning, looks at whether it is done.
	legacyPoll = time.Second
	// heartbeat is how often a process announces its fan-out.
	heartbeat = time.Second
	// expiry forgets a process not heard from for this long (one that
	// stopped cleanly says so at once).
	expiry = 3500 * time.Millisecond
	// settle is how long a starting process listens for the others before
	// it takes partitions.
	settle = 250 * time.Millisecond
)

// runUnpartitioned delivers what the stream stores unpartitioned, through
// ConsumerFanout, until there is nothing left of it: at once on a
// partitioned stream made so, when the backlog stored before the upgrade
// is delivered on an upgraded one, never on a stream of a release before
// partitions (it looks again every legacyPoll, so a live upgrade is
// followed). Partitions start only after it: a conversation's messages
// stored before the upgrade are all delivered before any stored after.
func (f *Fanout) runUnpartitioned(ctx context.Context) (schema.Layout, error) {
	var (
		stop context.CancelFunc
		done chan error
	)
	defer func() {
		if stop != nil {
			stop()
			<-done
		}
	}()
	for {
		l, drained, err := f.unpartitionedDone(ctx)
		if err != nil && ctx.Err() == nil {
			f.cfg.Logger.Warn("fanout could not read the stream's layout", "err", err)
		}
		if drained {
			return l, nil
		}
		if stop == nil && err == nil {
			wctx, cancel := context.WithCancel(ctx)
			stop, done = cancel, make(chan error, 1)
			legacy := *f
			legacy.stopping = wctx.Done()
			go func() {
				done <- pinned.Run(wctx, f.js, f.pinnedConfig(schema.StreamChat, schema.ConsumerFanout), legacy.handle)
			}()
		}
		select {
		case <-ctx.Done():
			return l, nil
		case err := <-done:
			stop = nil
			if ctx.Err() == nil {
				return l, err
			}
		case <-time.After(legacyPoll):
		}
	}
}

// unpartitionedDone reads the layout, then whether ConsumerFanout has
// anything left. In that order: once the stream is partitioned nothing
// more is stored unpartitioned, so a consumer with nothing pending and
// nothing unacknowledged then is done for good.
func (f *Fanout) unpartitionedDone(ctx context.Context) (schema.Layout, bool, error) {
	l, err := schema.ReadLayout(ctx, f.js)
	if err != nil || l.Partitions == 0 {
		return l, false, err
	}
	if l.Split() {
		return l, true, nil // partition streams were never unpartitioned
	}
	c, err := f.js.Consumer(ctx, schema.StreamChat, schema.ConsumerFanout)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return l, true, nil
	}
	if err != nil {
		return l, false, err
	}
	info := c.CachedInfo()
	return l, info.NumPending == 0 && info.NumAckPending == 0, nil
}

// partWorker is the running worker of one partition.
type partWorker struct {
	stop context.CancelFunc
	done chan struct{}
}

// runPartitions runs the workers of this process's share of l's
// partitions until ctx ends.
//
// The processes share them out without a coordinator: each announces
// itself on schema.FanoutWorkers every heartbeat ("+id"; "-id" when it
// stops), and each takes the partitions p with ids[p mod len(ids)] its
// own, ids the sorted ids it heard from within expiry. A process that
// joins or leaves changes the share; a worker that loses its partition
// hands over (pinned: it unpins, rewinding what it had not handled), and
// the pinned consumer keeps two workers from delivering one partition at
// once even while two processes see the share differently.
func (f *Fanout) runPartitions(ctx context.Context, l schema.Layout) error {
	id := nuid.Next()
	events := make(chan string, 256)
	sub, err := f.nc.Subscribe(schema.FanoutWorkers, func(m *nats.Msg) {
		select {
		case events <- string(m.Data):
		default: // the next heartbeat says it again
		}
	})
	if err != nil {
		return errors.Join(ErrSubscribe, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	announce := func(sign string) { _ = f.nc.Publish(schema.FanoutWorkers, []byte(sign+id)) }
	announce("+")

	seen := map[string]time.Time{}
	running := map[int]*partWorker{}
	var share []int
	rebalance := func() {
		ids := []string{id}
		for other := range seen {
			ids = append(ids, other)
		}
		slices.Sort(ids)
		var mine []int
		for p := range l.Partitions {
			if ids[p%len(ids)] == id {
				mine = append(mine, p)
			}
		}
		if slices.Equal(mine, share) {
			return
		}
		share = mine
		f.cfg.Logger.Info("fanout partitions of this process", "partitions", mine, "of", l.Partitions, "processes", len(ids))
		for p, w := range running {
			if !slices.Contains(mine, p) {
				w.stop()
				<-w.done
				delete(running, p)
			}
		}
		for _, p := range mine {
			if running[p] == nil {
				running[p] = f.startPartition(ctx, l.StreamOfPartition(p), p)
			}
		}
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	start := time.After(settle)
	started := false
	for {
		select {
		case <-ctx.Done():
			// Leave first: the others pull our partitions while ours
			// hand over, and get the pins as soon as they are released.
			announce("-")
			for _, w := range running {
				w.stop()
			}
			for _, w := range running {
				<-w.done
			}
			return nil
		case <-start:
			started = true
			rebalance()
		case ev := <-events:
			if len(ev) < 2 || ev[1:] == id {
				continue
			}
			other := ev[1:]
			_, known := seen[other]
			if ev[0] == '-' {
				delete(seen, other)
			} else {
				seen[other] = time.Now()
				if !known {
					announce("+") // a newcomer hears of us at once
				}
			}
			if started {
				rebalance()
			}
		case now := <-tick.C:
			announce("+")
			for other, at := range seen {
				if now.Sub(at) > expiry {
					delete(seen, other)
				}
			}
			if started {
				rebalance()
			}
		}
	}
}

// startPartition runs the worker of partition p, on stream (CHAT, or the
// partition's own stream), with its own consume state (prevs, frame
// buffer) over the shared member cache.
func (f *Fanout) startPartition(ctx context.Context, stream string, p int) *partWorker {
	w := *f
	w.prevs = newPrevs(f.last, f.cfg.CacheSize)
	w.buf = nil
	wctx, stop := context.WithCancel(ctx)
	w.stopping = wctx.Done()
	pw := &partWorker{stop: stop, done: make(chan struct{})}
	consumer := schema.ConsumerFanoutPartition(p)
	go func() {
		defer close(pw.done)
		for wctx.Err() == nil {
			err := pinned.Run(wctx, f.js, f.pinnedConfig(stream, consumer), w.handle)
			if wctx.Err() != nil {
				return
			}
			f.cfg.Logger.Warn("fanout partition worker stopped; starting it again", "stream", stream, "consumer", consumer, "err", err)
			select {
			case <-wctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return pw
}
