package presence

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// env is a real in-process JetStream with the schema in place.
type env struct {
	srv *natsrv.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	kv  jetstream.KeyValue // PRESENCE
}

// testMarkerTTL is the PRESENCE bucket's LimitMarkerTTL in these tests:
// the shortest the server allows, so markers are seen to expire.
const testMarkerTTL = time.Second

func setup(t *testing.T) *env {
	t.Helper()
	t.Cleanup(natstest.CheckGoroutines(t))
	srv := natstest.Start(t)
	nc, js := natstest.Connect(t, srv)
	ctx := context.Background()
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	cfg := schema.PresenceBucket(schema.Config{})
	cfg.LimitMarkerTTL = testMarkerTTL
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, nc: nc, js: js, kv: kv}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newTracker starts a tracker that test cleanup closes.
func newTracker(t *testing.T, js jetstream.JetStream, cfg TrackerConfig) *Tracker {
	t.Helper()
	cfg.Logger = testLogger(t)
	tr, err := NewTracker(context.Background(), cfg, js)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tr.Close(ctx)
	})
	return tr
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stored says whether key has a value in the bucket.
func stored(t *testing.T, kv jetstream.KeyValue, key string) bool {
	t.Helper()
	_, err := kv.Get(context.Background(), key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false
	}
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return true
}

var errInjected = errors.New("injected fault")

// faultJS is the real JetStream with faults a test switches on: lease
// renewals that fail, and a PRESENCE bucket whose deletes can fail and
// whose puts and deletes can be held. Everything else goes to the real server.
type faultJS struct {
	jetstream.JetStream
	kv        *faultKV
	failLease atomic.Bool
}

func newFaultJS(t *testing.T, e *env) *faultJS {
	t.Helper()
	return &faultJS{JetStream: e.js, kv: &faultKV{KeyValue: e.kv, holds: make(map[string]*hold)}}
}

// Publish fails lease renewals while failLease is set.
func (f *faultJS) Publish(ctx context.Context, subj string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if f.failLease.Load() && strings.HasPrefix(subj, "$KV."+schema.BucketPresence+"."+leasePrefix) {
		return nil, errInjected
	}
	return f.JetStream.Publish(ctx, subj, data, opts...)
}

// KeyValue hands out the faulty PRESENCE bucket.
func (f *faultJS) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	if bucket == schema.BucketPresence {
		return f.kv, nil
	}
	return f.JetStream.KeyValue(ctx, bucket)
}

type faultKV struct {
	jetstream.KeyValue
	failDeletes atomic.Int32 // this many more deletes and purges fail

	mu    sync.Mutex
	holds map[string]*hold
}

// hold is a put waiting for the test.
type hold struct {
	held    chan struct{} // closed when the put arrives
	release chan struct{} // closed by the test to let it go on
	done    chan struct{} // closed when the real put has returned
}

// holdPut holds the next put of key until the test closes release.
func (f *faultKV) holdPut(key string) *hold { return f.hold("put " + key) }

// holdDelete holds the next delete or purge of key likewise.
func (f *faultKV) holdDelete(key string) *hold { return f.hold("delete " + key) }

func (f *faultKV) hold(op string) *hold {
	h := &hold{held: make(chan struct{}), release: make(chan struct{}), done: make(chan struct{})}
	f.mu.Lock()
	f.holds[op] = h
	f.mu.Unlock()
	return h
}

// wait holds op if the test asked for it; the returned func marks the
// real operation done.
func (f *faultKV) wait(op string) func() {
	f.mu.Lock()
	h := f.holds[op]
	delete(f.holds, op)
	f.mu.Unlock()
	if h == nil {
		return func() {}
	}
	close(h.held)
	<-h.release
	return func() { close(h.done) }
}

func (f *faultKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	defer f.wait("put " + key)()
	return f.KeyValue.Put(ctx, key, value)
}

func (f *faultKV) fail() bool {
	for {
		n := f.failDeletes.Load()
		if n <= 0 {
			return false
		}
		if f.failDeletes.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

func (f *faultKV) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	defer f.wait("delete " + key)()
	if f.fail() {
		return errInjected
	}
	return f.KeyValue.Delete(ctx, key, opts...)
}

func (f *faultKV) Purge(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	defer f.wait("delete " + key)()
	if f.fail() {
		return errInjected
	}
	return f.KeyValue.Purge(ctx, key, opts...)
}
