package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	// ReconcileEvery is how often the tracker compares this gateway's
	// connection keys in the bucket with its live connections, deleting
	// strays and writing missing ones: the repair of last resort for
	// anything the retries and the lease did not fix. Default 1 minute.
	ReconcileEvery time.Duration
	// Logger; slog.Default by default.
	Logger *slog.Logger
}

// Tracker is a gateway's side of presence: connection keys and the lease.
type Tracker struct {
	cfg TrackerConfig
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	// markerTTL is how long a purge's marker stays in the bucket: the
	// bucket's LimitMarkerTTL, so deleted keys leave nothing behind.
	markerTTL time.Duration

	mu       sync.Mutex
	conns    map[string]Conn     // live connections: key -> value
	unpurged map[string]struct{} // closed connections whose purge failed

	ctx    context.Context // ends with Close; bounds the background work
	cancel context.CancelFunc
	wake   chan struct{} // a purge failed: retry soon
	wg     sync.WaitGroup
	once   sync.Once
}

// NewTracker opens the PRESENCE bucket and starts refreshing the lease.
func NewTracker(ctx context.Context, cfg TrackerConfig, js jetstream.JetStream) (*Tracker, error) {
	if cfg.Gateway == "" {
		return nil, ErrNoGateway
	}
	if cfg.LeaseTTL < time.Second {
		cfg.LeaseTTL = time.Second
	}
	if cfg.ReconcileEvery <= 0 {
		cfg.ReconcileEvery = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	kv, err := js.KeyValue(ctx, schema.BucketPresence)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", schema.BucketPresence, err)
	}
	ttl, err := markerTTL(ctx, kv)
	if err != nil {
		return nil, err
	}
	t := &Tracker{
		cfg: cfg, js: js, kv: kv, markerTTL: ttl,
		conns: make(map[string]Conn), unpurged: make(map[string]struct{}),
		wake: make(chan struct{}, 1),
	}
	if err := t.renew(ctx); err != nil {
		return nil, err
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(2)
	go t.leaseLoop()
	go t.repairLoop()
	return t, nil
}

// markerTTL reads the bucket's LimitMarkerTTL, the life of a purge marker;
// zero on a bucket without markers, where purges keep theirs.
func markerTTL(ctx context.Context, kv jetstream.KeyValue) (time.Duration, error) {
	st, err := kv.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("status of bucket %s: %w", schema.BucketPresence, err)
	}
	return st.LimitMarkerTTL(), nil
}

// purgeKey removes key and its history. The marker it leaves tells
// watchers the key is gone, then expires after ttl, so the bucket does
// not keep a tombstone per connection ever made.
func purgeKey(ctx context.Context, kv jetstream.KeyValue, key string, ttl time.Duration, opts ...jetstream.KVDeleteOpt) error {
	if ttl > 0 {
		opts = append(opts, jetstream.PurgeTTL(ttl))
	}
	return kv.Purge(ctx, key, opts...)
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

func (t *Tracker) leaseLoop() {
	defer t.wg.Done()
	every := t.cfg.LeaseTTL / 4
	tick := time.NewTicker(every)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(t.ctx, every)
		err := t.renew(ctx)
		cancel()
		if err != nil {
			t.cfg.Logger.Warn("presence lease not renewed", "gateway", t.cfg.Gateway, "err", err)
			continue
		}
		if time.Since(last) >= t.cfg.LeaseTTL {
			// The lease may have expired meanwhile and the presence service
			// then deleted our keys, closed connections' included: write
			// the live ones again; the failed purges are moot.
			t.mu.Lock()
			clear(t.unpurged)
			t.mu.Unlock()
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
		ctx, cancel := context.WithTimeout(t.ctx, opTimeout)
		if err := t.write(ctx, k, v); err != nil {
			t.cfg.Logger.Warn("presence key not rewritten", "key", k, "err", err)
		}
		cancel()
	}
}

// opTimeout bounds one background KV operation.
const opTimeout = 5 * time.Second

func (t *Tracker) live(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.conns[key]
	return ok
}

// write puts key unless its connection has closed. A close racing the
// put takes the connection out of conns before it purges the key, so if
// the connection is gone after the put, the put may have landed after
// that purge and resurrected the key: it is purged again. The check runs
// even when the put failed, since a put that timed out may still land.
func (t *Tracker) write(ctx context.Context, key string, c Conn) error {
	if !t.live(key) {
		return nil
	}
	data, _ := json.Marshal(c)
	_, err := t.kv.Put(ctx, key, data)
	if !t.live(key) {
		_ = t.remove(ctx, key)
	}
	return err
}

// remove purges the key of a closed connection; when that fails the key
// is retried in the background until it is gone.
func (t *Tracker) remove(ctx context.Context, key string) error {
	err := purgeKey(ctx, t.kv, key, t.markerTTL)
	if err == nil {
		return nil
	}
	t.mu.Lock()
	if _, live := t.conns[key]; !live {
		t.unpurged[key] = struct{}{}
	}
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return err
}

// Connected records a new connection of uid.
func (t *Tracker) Connected(ctx context.Context, uid, session, device string) error {
	key := connKey(uid, t.cfg.Gateway, session)
	c := Conn{Device: device, Since: time.Now().UTC()}
	t.mu.Lock()
	t.conns[key] = c
	delete(t.unpurged, key)
	t.mu.Unlock()
	if err := t.write(ctx, key, c); err != nil {
		return fmt.Errorf("record connection: %w", err)
	}
	return nil
}

// Disconnected removes a connection of uid. An error means the key is
// still in the bucket for now; the tracker keeps retrying, so the caller
// only has to log it.
func (t *Tracker) Disconnected(ctx context.Context, uid, session string) error {
	key := connKey(uid, t.cfg.Gateway, session)
	t.mu.Lock()
	delete(t.conns, key)
	t.mu.Unlock()
	if err := t.remove(ctx, key); err != nil {
		return fmt.Errorf("remove connection (will retry): %w", err)
	}
	return nil
}

// Close stops the lease and the repairs, tries the failed purges once
// more and deletes the lease, so the presence service knows at once that
// nothing of this gateway is left. Connections should have been
// Disconnected before.
func (t *Tracker) Close(ctx context.Context) error {
	var err error
	t.once.Do(func() {
		t.cancel()
		t.wg.Wait()
		t.retryPurges(ctx)
		err = purgeKey(ctx, t.kv, leaseKey(t.cfg.Gateway), t.markerTTL)
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

// Connection is one open connection of a user, as its gateway recorded
// it: what an operator sees (natter admin user show).
type Connection struct {
	Gateway string    `json:"gateway"`
	Session string    `json:"session"`
	Device  string    `json:"device,omitempty"`
	Since   time.Time `json:"since"`
}

// Connections lists uid's connection keys in kv, the PRESENCE bucket,
// by gateway and session. A gateway that died leaves its keys until its
// lease expires and the presence service purges them.
func Connections(ctx context.Context, kv jetstream.KeyValue, uid string) ([]Connection, error) {
	l, err := kv.ListKeysFiltered(ctx, connPrefix+uid+".>")
	if err != nil {
		return nil, fmt.Errorf("connections of %s: %w", uid, err)
	}
	var keys []string
	for k := range l.Keys() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys) // a lister may repeat a key written meanwhile
	var out []Connection
	for _, k := range keys {
		u, gw, ok := parseConnKey(k)
		if !ok || u != uid {
			continue
		}
		c := Connection{Gateway: gw, Session: k[len(connPrefix+uid+"."+gw+"."):]}
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // closed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("connection %s: %w", k, err)
		}
		var v Conn
		if json.Unmarshal(e.Value(), &v) == nil {
			c.Device, c.Since = v.Device, v.Since
		}
		out = append(out, c)
	}
	return out, nil
}
