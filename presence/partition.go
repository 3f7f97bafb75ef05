package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// worker does the presence work of one partition while its service holds
// the partition's lease: it watches the partition's keys and every
// gateway lease, and announces its users' transitions. Its calls are
// serial, so one user's transitions are announced in order; the
// partitions' workers run side by side.
type worker struct {
	s    *Service
	part int

	users  map[string]map[string]string  // uid -> connection key -> gateway
	gws    map[string]map[string]connRef // gateway -> connection key -> user, revision
	leases map[string]bool
	states map[string]State // what was last announced
	legacy map[string]State // u.<uid> states from before partitions

	purging sync.WaitGroup // dropGateway's purges in the background
}

// connRef is what the service knows of a connection key.
type connRef struct {
	uid string
	rev uint64 // of the put the watcher delivered last
}

func newWorker(s *Service, part int) *worker {
	return &worker{
		s: s, part: part,
		users:  make(map[string]map[string]string),
		gws:    make(map[string]map[string]connRef),
		leases: make(map[string]bool),
		states: make(map[string]State),
		legacy: make(map[string]State),
	}
}

// run watches the partition until ctx ends. On start it reads every key
// of the partition, removes connections of gateways whose lease is gone,
// and announces what changed while no worker had the partition. The
// change in hand is finished after ctx ends, so that a worker that stops
// never leaves a state recorded but unannounced.
func (w *worker) run(ctx context.Context) error {
	// The recorded states first: once the worker runs, only it writes
	// them, so they need no watching (their echoes would be only cost).
	if err := w.readStates(ctx); err != nil {
		return err
	}
	wa, err := w.s.kv.WatchFiltered(ctx, connFilters(w.part))
	if err != nil {
		return fmt.Errorf("watch %s partition %d: %w", schema.BucketPresence, w.part, err)
	}
	defer stopWatch(wa)
	defer w.purging.Wait()
	work := context.WithoutCancel(ctx)
	live := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-wa.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errWatchEnded
			}
			if e == nil {
				live = true
				w.reconcile(work)
				continue
			}
			w.apply(work, e, live)
		}
	}
}

// readStates reads the partition's recorded user states.
func (w *worker) readStates(ctx context.Context) error {
	wa, err := w.s.kv.WatchFiltered(ctx, userFilters(w.part), jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("read %s partition %d: %w", schema.BucketPresence, w.part, err)
	}
	defer stopWatch(wa)
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-wa.Updates():
			if !ok {
				return errWatchEnded
			}
			if e == nil {
				return nil
			}
			uid, legacy, ok := parseUserKey(e.Key())
			var st State
			if !ok || !w.mine(uid) || json.Unmarshal(e.Value(), &st) != nil {
				continue
			}
			if legacy {
				w.legacy[uid] = st
			} else {
				w.states[uid] = st
			}
		}
	}
}

// mine tells whether uid is of this partition: keys of the layout before
// partitions reach every partition's watcher.
func (w *worker) mine(uid string) bool { return Partition(uid) == w.part }

// apply folds one key change into the state; once live, it announces.
func (w *worker) apply(ctx context.Context, e jetstream.KeyValueEntry, live bool) {
	key := e.Key()
	deleted := e.Operation() != jetstream.KeyValuePut
	switch {
	case len(key) > len(leasePrefix) && key[:len(leasePrefix)] == leasePrefix:
		gw := key[len(leasePrefix):]
		if !deleted {
			w.leases[gw] = true
			return
		}
		delete(w.leases, gw)
		if live {
			w.dropGateway(ctx, gw)
		}
	default:
		uid, gw, ok := parseConnKey(key)
		if !ok || !w.mine(uid) {
			return
		}
		if deleted {
			delete(w.users[uid], key)
			if len(w.users[uid]) == 0 {
				delete(w.users, uid)
			}
			delete(w.gws[gw], key)
			if len(w.gws[gw]) == 0 {
				delete(w.gws, gw)
			}
		} else {
			if w.users[uid] == nil {
				w.users[uid] = make(map[string]string)
			}
			w.users[uid][key] = gw
			if w.gws[gw] == nil {
				w.gws[gw] = make(map[string]connRef)
			}
			w.gws[gw][key] = connRef{uid: uid, rev: e.Revision()}
		}
		if live {
			w.settle(ctx, uid)
		}
	}
}

// reconcile runs once the watcher has delivered every existing key.
func (w *worker) reconcile(ctx context.Context) {
	// A user recorded only under the layout before partitions starts
	// from that state; its next change is recorded under the new key.
	for uid, st := range w.legacy {
		if _, ok := w.states[uid]; !ok {
			w.states[uid] = st
		}
	}
	w.legacy = nil
	for gw := range w.gws {
		if !w.leases[gw] && !w.leaseStored(ctx, gw) {
			w.dropGateway(ctx, gw)
		}
	}
	seen := make(map[string]bool)
	for uid := range w.users {
		seen[uid] = true
		w.settle(ctx, uid)
	}
	for uid := range w.states {
		if !seen[uid] {
			w.settle(ctx, uid)
		}
	}
}

// leaseStored tells whether gw's lease is in the bucket: a lease renewed
// while the watcher read the bucket can be missed by its first reading,
// and a live gateway's users must not be taken offline for that.
func (w *worker) leaseStored(ctx context.Context, gw string) bool {
	_, err := w.s.kv.Get(ctx, leaseKey(gw))
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		w.s.cfg.Logger.Warn("presence lease unread", "gateway", gw, "err", err)
	}
	return err == nil
}

// purgesInFlight bounds the purges a service's workers have in flight at
// once, all partitions together: enough to hide the round trips, few
// enough that lease renewals still get through a storm.
const purgesInFlight = 32

// dropGateway purges the partition's connection keys of a gateway that is
// gone; the purges come back through the watcher and take its users
// offline. Each purge is conditional on the revision the worker saw: a
// gateway that was only cut off for a while renews its lease and writes
// its keys again, and a rewrite that lands before this purge must win.
// The purges run in the background, a few at a time, while the worker
// goes on with what comes back: a gateway with thousands of users must
// not wait for one round trip per user before the first goes offline,
// nor for the last purge before the first is announced.
func (w *worker) dropGateway(ctx context.Context, gw string) {
	keys := make(map[string]uint64, len(w.gws[gw]))
	for key, ref := range w.gws[gw] {
		keys[key] = ref.rev
	}
	if len(keys) == 0 {
		return
	}
	w.s.cfg.Logger.Info("gateway lease gone; its connections go offline", "gateway", gw, "partition", w.part, "connections", len(keys))
	w.purging.Go(func() {
		var wg sync.WaitGroup
		for key, rev := range keys {
			w.s.purges <- struct{}{}
			wg.Go(func() {
				defer func() { <-w.s.purges }()
				ctx, cancel := context.WithTimeout(ctx, opTimeout)
				defer cancel()
				err := purgeKey(ctx, w.s.kv, key, w.s.markerTTL, jetstream.LastRevision(rev))
				if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
					w.s.cfg.Logger.Warn("stale presence key not purged", "key", key, "err", err)
				}
			})
		}
		wg.Wait()
	})
}

// settle compares uid's live connections with what was last announced and
// records and announces the difference.
func (w *worker) settle(ctx context.Context, uid string) {
	n := len(w.users[uid])
	old := w.states[uid]
	now := w.s.cfg.Now().UTC()
	var st State
	switch {
	case n > 0 && old.Online && old.Devices == n:
		return
	case n > 0:
		st = State{Online: true, Devices: n, Since: old.Since, LastSeen: old.LastSeen}
		if !old.Online {
			st.Since = now
		}
	case !old.Online:
		return
	default:
		st = State{Online: false, LastSeen: now, Since: old.Since}
	}
	data, _ := json.Marshal(st)
	if _, err := w.s.kv.Put(ctx, userKey(uid), data); err != nil {
		w.s.cfg.Logger.Warn("presence state not recorded", "user", uid, "err", err)
	}
	w.states[uid] = st
	if st.Online != old.Online {
		w.s.announce(ctx, uid, st)
	}
}

// announce tells the users who share a direct conversation or a small
// group with uid. Large groups are left out on purpose: presence fan-out
// must not grow with the square of a group's size. Whether a member is
// online is another partition's knowledge, so every member in the
// audience is published to; the gateways hand it only to connected ones.
func (s *Service) announce(ctx context.Context, uid string, st State) {
	ev := Event{Type: protocol.TypePresence, User: uid, Online: st.Online}
	if st.Online {
		ev.Devices = st.Devices
	} else {
		ev.LastSeen = protocol.FormatTime(st.LastSeen)
	}
	frame, _ := json.Marshal(ev)
	_ = s.nc.Publish(schema.Presence(uid), frame)
	audience, err := Audience(ctx, s.convs, uid, s.cfg.SmallGroup)
	if err != nil {
		s.cfg.Logger.Warn("presence audience unknown", "user", uid, "err", err)
		return
	}
	// The users uid blocked hear nothing of uid.
	blocked, _, err := s.convs.Blocked(ctx, uid)
	if err != nil {
		s.cfg.Logger.Warn("presence audience unknown: block list unread", "user", uid, "err", err)
		return
	}
	for _, m := range audience {
		if _, hidden := slices.BinarySearch(blocked, m); hidden {
			continue
		}
		_ = s.nc.Publish(schema.User(m, schema.EventPresence), frame)
	}
}
