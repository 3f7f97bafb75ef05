package presence

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
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
	// ID names this service process in its partition leases; unique per
	// process. Default: a random id.
	ID string
	// LeaseTTL is how long a partition lease lives without a renewal:
	// when a presence process dies, its partitions are taken over at most
	// this long (plus a third of it) later. Default 10 s, minimum 1 s.
	LeaseTTL time.Duration
	// Logger; slog.Default by default.
	Logger *slog.Logger
	// Now is the clock.
	Now func() time.Time
}

// Service turns connection keys into user-level presence transitions.
// Run as many as you like, one per process: they share the Partitions
// partitions, each held by one of them at a time, and every transition is
// announced once.
type Service struct {
	cfg   ServiceConfig
	nc    *nats.Conn
	js    jetstream.JetStream
	kv    jetstream.KeyValue
	convs *conversation.Store

	// markerTTL is the life of a purge marker (the bucket's LimitMarkerTTL).
	markerTTL time.Duration

	mu      sync.Mutex
	held    map[int]*heldPartition
	holders sync.WaitGroup // the holders of partitions, held or being let go
	purges  chan struct{}  // a slot per purge in flight (purgesInFlight)
}

// NewService returns a presence service; Run starts it.
func NewService(ctx context.Context, cfg ServiceConfig, nc *nats.Conn, js jetstream.JetStream, convs *conversation.Store) (*Service, error) {
	if cfg.SmallGroup <= 0 {
		cfg.SmallGroup = 100
	}
	if cfg.ID == "" {
		cfg.ID = rand.Text()
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	cfg.LeaseTTL = max(cfg.LeaseTTL, time.Second)
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
	return &Service{cfg: cfg, nc: nc, js: js, kv: kv, convs: convs, markerTTL: ttl, purges: make(chan struct{}, purgesInFlight)}, nil
}

// Run takes a fair share of the partitions and works them until ctx
// ends; then it stops its workers and releases their leases, so that the
// other services take them over at once.
func (s *Service) Run(ctx context.Context) error {
	s.mu.Lock()
	s.held = make(map[int]*heldPartition)
	s.mu.Unlock()
	defer s.releaseAll()
	tick := time.NewTicker(s.cfg.LeaseTTL / 3)
	defer tick.Stop()
	for {
		s.balance(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Held returns the partitions this service works now, in order.
func (s *Service) Held() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int, 0, len(s.held))
	for p := range s.held {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
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
