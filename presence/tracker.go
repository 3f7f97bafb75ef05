package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
)

// TrackerConfig configures a gateway's Tracker.
type TrackerConfig struct {
	// Gateway is this gateway's id, a subject token unique per process.
	Gateway string
	// LeaseTTL is how long the gateway's lease lives without a refresh; a
	// killed gateway's users go offline at most this long after it died
	// (plus about a second). Minimum 1 s.
	LeaseTTL time.Duration
	// Logger; slog.Default by default.
	Logger *slog.Logger
}

// Tracker is a gateway's side of presence: connection keys and the lease.
type Tracker struct {
	cfg TrackerConfig
	js  jetstream.JetStream
	kv  jetstream.KeyValue

	mu    sync.Mutex
	conns map[string]Conn // key -> value, to write again if the lease was lost

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewTracker opens the PRESENCE bucket and starts refreshing the lease.
func NewTracker(ctx context.Context, cfg TrackerConfig, js jetstream.JetStream) (*Tracker, error) {
	if cfg.Gateway == "" {
		return nil, errors.New("presence: tracker needs a gateway id")
	}
	if cfg.LeaseTTL < time.Second {
		cfg.LeaseTTL = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	kv, err := js.KeyValue(ctx, schema.BucketPresence)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", schema.BucketPresence, err)
	}
	t := &Tracker{cfg: cfg, js: js, kv: kv, conns: make(map[string]Conn), stop: make(chan struct{}), done: make(chan struct{})}
	if err := t.renew(ctx); err != nil {
		return nil, err
	}
	go t.loop()
	return t, nil
}

// renew writes the lease with its TTL. A KV Put cannot carry a TTL, so the
// lease is published to the bucket's subject directly.
func (t *Tracker) renew(ctx context.Context) error {
	data, _ := json.Marshal(map[string]any{"since": time.Now().UTC()})
	_, err := t.js.Publish(ctx, schema.KVKey(schema.BucketPresence, leaseKey(t.cfg.Gateway)), data, jetstream.WithMsgTTL(t.cfg.LeaseTTL))
	if err != nil {
		return fmt.Errorf("renew presence lease: %w", err)
	}
	return nil
}

func (t *Tracker) loop() {
	defer close(t.done)
	every := t.cfg.LeaseTTL / 4
	tick := time.NewTicker(every)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		err := t.renew(ctx)
		cancel()
		if err != nil {
			t.cfg.Logger.Warn("presence lease not renewed", "gateway", t.cfg.Gateway, "err", err)
			continue
		}
		if time.Since(last) >= t.cfg.LeaseTTL {
			// The lease may have expired meanwhile and the presence service
			// then deleted our keys: write them again.
			t.rewriteAll()
		}
		last = time.Now()
	}
}

func (t *Tracker) rewriteAll() {
	t.mu.Lock()
	all := make(map[string]Conn, len(t.conns))
	for k, v := range t.conns {
		all[k] = v
	}
	t.mu.Unlock()
	for k, v := range all {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		data, _ := json.Marshal(v)
		if _, err := t.kv.Put(ctx, k, data); err != nil {
			t.cfg.Logger.Warn("presence key not rewritten", "key", k, "err", err)
		}
		cancel()
	}
}

// Connected records a new connection of uid.
func (t *Tracker) Connected(ctx context.Context, uid, session, device string) error {
	key := connKey(uid, t.cfg.Gateway, session)
	c := Conn{Device: device, Since: time.Now().UTC()}
	data, _ := json.Marshal(c)
	t.mu.Lock()
	t.conns[key] = c
	t.mu.Unlock()
	if _, err := t.kv.Put(ctx, key, data); err != nil {
		return fmt.Errorf("record connection: %w", err)
	}
	return nil
}

// Disconnected removes a connection of uid.
func (t *Tracker) Disconnected(ctx context.Context, uid, session string) error {
	key := connKey(uid, t.cfg.Gateway, session)
	t.mu.Lock()
	delete(t.conns, key)
	t.mu.Unlock()
	if err := t.kv.Delete(ctx, key); err != nil {
		return fmt.Errorf("remove connection: %w", err)
	}
	return nil
}

// Close stops the lease and deletes it, so the presence service knows at
// once that nothing of this gateway is left. Connections should have been
// Disconnected before.
func (t *Tracker) Close(ctx context.Context) error {
	var err error
	t.once.Do(func() {
		close(t.stop)
		<-t.done
		err = t.kv.Delete(ctx, leaseKey(t.cfg.Gateway))
	})
	return err
}

// Get returns the recorded state of uid; a user never seen is offline.
func Get(ctx context.Context, kv jetstream.KeyValue, uid string) (State, error) {
	var s State
	e, err := kv.Get(ctx, userKey(uid))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("presence of %s: %w", uid, err)
	}
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return s, fmt.Errorf("decode presence of %s: %w", uid, err)
	}
	return s, nil
}
