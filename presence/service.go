package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/conversation"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// ServiceConfig configures the presence service.
type ServiceConfig struct {
	// SmallGroup is the largest group whose members hear each other's
	// presence; larger groups ask with a presence query. Default 100.
	SmallGroup int
	// Logger; slog.Default by default.
	Logger *slog.Logger
	// Now is the clock.
	Now func() time.Time
}

// Service turns connection keys into user-level presence transitions.
// Run one per cluster: two would announce each transition twice.
type Service struct {
	cfg   ServiceConfig
	nc    *nats.Conn
	kv    jetstream.KeyValue
	convs *conversation.Store

	// markerTTL is the life of a purge marker (the bucket's LimitMarkerTTL).
	markerTTL time.Duration

	users  map[string]map[string]string  // uid -> connection key -> gateway
	gws    map[string]map[string]connRef // gateway -> connection key -> user, revision
	leases map[string]bool
	states map[string]State // what was last announced
}

// connRef is what the service knows of a connection key.
type connRef struct {
	uid string
	rev uint64 // of the put the watcher delivered last
}

// NewService returns a presence service; Run starts it.
func NewService(ctx context.Context, cfg ServiceConfig, nc *nats.Conn, js jetstream.JetStream, convs *conversation.Store) (*Service, error) {
	if cfg.SmallGroup <= 0 {
		cfg.SmallGroup = 100
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	kv, err := js.KeyValue(ctx, schema.BucketPresence)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", schema.BucketPresence, err)
	}
	ttl, err := markerTTL(ctx, kv)
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, nc: nc, kv: kv, convs: convs, markerTTL: ttl}, nil
}

// Run watches the bucket until ctx ends. On start it reads every key,
// removes connections of gateways whose lease is gone, and announces what
// changed while no service ran.
func (s *Service) Run(ctx context.Context) error {
	s.users = make(map[string]map[string]string)
	s.gws = make(map[string]map[string]connRef)
	s.leases = make(map[string]bool)
	s.states = make(map[string]State)
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", schema.BucketPresence, err)
	}
	defer func() { _ = w.Stop() }()
	live := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errWatchEnded
			}
			if e == nil {
				live = true
				s.reconcile(ctx)
				continue
			}
			s.apply(ctx, e, live)
		}
	}
}

// apply folds one key change into the state; once live, it announces.
func (s *Service) apply(ctx context.Context, e jetstream.KeyValueEntry, live bool) {
	key := e.Key()
	deleted := e.Operation() != jetstream.KeyValuePut
	switch {
	case len(key) > len(leasePrefix) && key[:len(leasePrefix)] == leasePrefix:
		gw := key[len(leasePrefix):]
		if !deleted {
			s.leases[gw] = true
			return
		}
		delete(s.leases, gw)
		if live {
			s.dropGateway(ctx, gw)
		}
	case len(key) > len(userPrefix) && key[:len(userPrefix)] == userPrefix:
		// Only the start reads recorded states; once live they are this
		// service's own writes coming back, older than what it holds.
		if live {
			return
		}
		uid := key[len(userPrefix):]
		var st State
		if !deleted && json.Unmarshal(e.Value(), &st) == nil {
			s.states[uid] = st
		}
	default:
		uid, gw, ok := parseConnKey(key)
		if !ok {
			return
		}
		if deleted {
			delete(s.users[uid], key)
			if len(s.users[uid]) == 0 {
				delete(s.users, uid)
			}
			delete(s.gws[gw], key)
			if len(s.gws[gw]) == 0 {
				delete(s.gws, gw)
			}
		} else {
			if s.users[uid] == nil {
				s.users[uid] = make(map[string]string)
			}
			s.users[uid][key] = gw
			if s.gws[gw] == nil {
				s.gws[gw] = make(map[string]connRef)
			}
			s.gws[gw][key] = connRef{uid: uid, rev: e.Revision()}
		}
		if live {
			s.settle(ctx, uid)
		}
	}
}

// reconcile runs once the watcher has delivered every existing key.
func (s *Service) reconcile(ctx context.Context) {
	for gw := range s.gws {
		if !s.leases[gw] {
			s.dropGateway(ctx, gw)
		}
	}
	seen := make(map[string]bool)
	for uid := range s.users {
		seen[uid] = true
		s.settle(ctx, uid)
	}
	for uid := range s.states {
		if !seen[uid] {
			s.settle(ctx, uid)
		}
	}
}

// dropGateway purges the connection keys of a gateway that is gone; the
// purges come back through the watcher and take its users offline. Each
// purge is conditional on the revision the service saw: a gateway that
// was only cut off for a while renews its lease and writes its keys
// again, and a rewrite that lands before this purge must win.
func (s *Service) dropGateway(ctx context.Context, gw string) {
	for key, ref := range s.gws[gw] {
		err := purgeKey(ctx, s.kv, key, s.markerTTL, jetstream.LastRevision(ref.rev))
		if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			s.cfg.Logger.Warn("stale presence key not purged", "key", key, "err", err)
		}
	}
	s.cfg.Logger.Info("gateway lease gone; its connections are offline", "gateway", gw, "connections", len(s.gws[gw]))
}

// settle compares uid's live connections with what was last announced and
// records and announces the difference.
func (s *Service) settle(ctx context.Context, uid string) {
	n := len(s.users[uid])
	old := s.states[uid]
	now := s.cfg.Now().UTC()
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
	if _, err := s.kv.Put(ctx, userKey(uid), data); err != nil {
		s.cfg.Logger.Warn("presence state not recorded", "user", uid, "err", err)
	}
	s.states[uid] = st
	if st.Online != old.Online {
		s.announce(ctx, uid, st)
	}
}

// announce tells the online users who share a direct conversation or a
// small group with uid. Large groups are left out on purpose: presence
// fan-out must not grow with the square of a group's size.
func (s *Service) announce(ctx context.Context, uid string, st State) {
	ev := Event{Type: protocol.TypePresence, Push: true, User: uid, Online: st.Online}
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
		if len(s.users[m]) > 0 {
			_ = s.nc.Publish(schema.User(m, schema.EventPresence), frame)
		}
	}
}

// Audience returns the users who share with uid a direct conversation or a
// group of at most smallGroup members, leaving out message requests uid
// has not accepted.
func Audience(ctx context.Context, convs *conversation.Store, uid string, smallGroup int) ([]string, error) {
	ids, err := convs.UserConversations(ctx, uid)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool)
	var out []string
	for _, id := range ids {
		// Shared: a storm of users coming online reads the same large
		// group's document once each; it is decoded once per revision.
		d, err := convs.GetShared(ctx, id)
		if errors.Is(err, conversation.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// A message request uid has not accepted shares nothing of uid.
		if !d.IsMember(uid) || d.IsPending(uid) || (d.Kind != protocol.ConversationDirect && len(d.Members) > smallGroup) {
			continue
		}
		for _, m := range d.Members {
			if m != uid && !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	return out, nil
}
