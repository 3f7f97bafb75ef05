// Package lease holds a key of the LEASES bucket (schema.BucketLeases):
// the once-per-cluster parts that keep state of their own, such as the
// history writer of an embedded store or the indexer of an embedded search
// index, take one so that no second process, with another store, consumes
// the same durable consumer and gets part of the messages.
//
// A lease's value names its owner (the store: host and directory) and
// the claim ("<owner> <nuid>"); its per-message TTL makes it expire when
// the holder dies without releasing it. A claim by the same owner takes
// the lease over at once: only one process can have a store directory
// open, so the holder is a dead predecessor.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/natter-chat/natter/nats/schema"
)

var (
	// ErrHeld is returned by Claim when another owner holds the lease.
	ErrHeld = errors.New("lease: held by another owner")
	// ErrLost is returned when another claim took the lease (a takeover
	// by the same owner included) while this one held it.
	ErrLost = errors.New("lease: lost")
	// ErrLapsed (wrapping ErrLost) is returned by Hold when the lease
	// could not be renewed for a whole TTL but nobody is known to have
	// taken it: the holder stops working and takes it back (Retake)
	// once the bucket answers, rather than stopping for good.
	ErrLapsed = fmt.Errorf("%w: not renewed within its TTL", ErrLost)
)

// Config names a lease.
type Config struct {
	// Key is the lease's key in schema.BucketLeases.
	Key string
	// Owner names the holder's store; it must stay the same across
	// restarts on the same store.
	Owner string
	// TTL is how long the lease outlives a holder that died without
	// releasing it; it is renewed every third of it.
	TTL time.Duration
	// What names the holder in logs ("history writer").
	What string
	// Logger; slog.Default by default.
	Logger *slog.Logger
}

// Lease is one claim of a lease.
type Lease struct {
	cfg   Config
	js    jetstream.JetStream
	kv    jetstream.KeyValue
	value []byte
	rev   uint64
}

// Owner is the owner a lease value names.
func Owner(value []byte) string {
	owner, _, _ := strings.Cut(string(value), " ")
	return owner
}

// Claim takes the lease for cfg.Owner. Held by another owner, it fails
// with ErrHeld; held by the same owner, it takes it over.
func Claim(ctx context.Context, js jetstream.JetStream, cfg Config) (*Lease, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	kv, err := js.KeyValue(ctx, schema.BucketLeases)
	if err != nil {
		return nil, fmt.Errorf("%s lease: %w", cfg.What, err)
	}
	l := &Lease{cfg: cfg, js: js, kv: kv, value: []byte(cfg.Owner + " " + nuid.Next())}
	rev, err := kv.Create(ctx, cfg.Key, l.value, jetstream.KeyTTL(cfg.TTL))
	if err == nil {
		l.rev = rev
		return l, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("%s lease: %w", cfg.What, err)
	}
	e, err := kv.Get(ctx, cfg.Key)
	if err != nil {
		// Expired or released since Create: try once more next start.
		return nil, fmt.Errorf("%w: %s (%v)", ErrHeld, cfg.Key, err)
	}
	if Owner(e.Value()) != cfg.Owner {
		return nil, fmt.Errorf("%w: %q holds %s; or wait %s after that one stopped", ErrHeld, Owner(e.Value()), cfg.Key, cfg.TTL)
	}
	l.rev = e.Revision()
	if err := l.renew(ctx); err != nil {
		return nil, err
	}
	cfg.Logger.Info(cfg.What+" lease taken over from a previous run on the same store", "owner", cfg.Owner)
	return l, nil
}

// renew writes the lease again with its TTL, if this claim still has it.
// A KV Update cannot carry a TTL, so it is published to the bucket's
// subject with the revision check Update would do.
func (l *Lease) renew(ctx context.Context) error {
	ack, err := l.js.Publish(ctx, schema.KVKey(schema.BucketLeases, l.cfg.Key), l.value,
		jetstream.WithExpectLastSequencePerSubject(l.rev), jetstream.WithMsgTTL(l.cfg.TTL))
	if err != nil {
		if schema.IsWrongLastSeq(err) {
			// A renewal whose answer was lost (the bucket's leader died
			// after storing it) moved the revision: still this claim's.
			return l.adopt(ctx)
		}
		return fmt.Errorf("renew %s lease: %w", l.cfg.What, err)
	}
	l.rev = ack.Sequence
	return nil
}

// adopt takes the lease's current revision if it still holds this claim's
// value, and fails with ErrLost if another claim's.
func (l *Lease) adopt(ctx context.Context) error {
	e, err := l.kv.Get(ctx, l.cfg.Key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return ErrLapsed
	case err != nil:
		return fmt.Errorf("read %s lease: %w", l.cfg.What, err)
	case string(e.Value()) != string(l.value):
		return fmt.Errorf("%w: %q took it", ErrLost, e.Value())
	}
	l.rev = e.Revision()
	return nil
}

// Retake takes the lease again after it lapsed (ErrLapsed): back if it
// still holds this claim's value, anew if it expired and is free. It
// fails with ErrLost if another claim holds it, and with another error
// while the bucket does not answer.
func (l *Lease) Retake(ctx context.Context) error {
	err := l.adopt(ctx)
	if !errors.Is(err, ErrLapsed) {
		return err
	}
	rev, err := l.kv.Create(ctx, l.cfg.Key, l.value, jetstream.KeyTTL(l.cfg.TTL))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return l.adopt(ctx) // someone was quicker, or this very Create's lost answer
	}
	if err != nil {
		return fmt.Errorf("take %s lease: %w", l.cfg.What, err)
	}
	l.rev = rev
	return nil
}

// Hold renews the lease every third of its TTL until ctx ends, then
// releases it so a successor need not wait for it to expire. It returns
// ErrLost when the lease was taken, ErrLapsed when it could not be renewed
// for a whole TTL: either way the holder must stop working, another may
// be.
func (l *Lease) Hold(ctx context.Context) error {
	tick := time.NewTicker(l.cfg.TTL / 3)
	defer tick.Stop()
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			l.release()
			return nil
		case <-tick.C:
		}
		err := l.renew(ctx)
		switch {
		case err == nil:
			renewed = time.Now()
		case ctx.Err() != nil:
			l.release()
			return nil
		case errors.Is(err, ErrLost):
			return err
		case time.Since(renewed) >= l.cfg.TTL:
			return fmt.Errorf("%w: for %s: %v", ErrLapsed, l.cfg.TTL, err)
		default:
			l.cfg.Logger.Warn(l.cfg.What+" lease not renewed; retrying", "err", err)
		}
	}
}

// release deletes the lease if this claim still has it.
func (l *Lease) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.kv.Delete(ctx, l.cfg.Key, jetstream.LastRevision(l.rev)); err != nil {
		l.cfg.Logger.Warn(l.cfg.What+" lease not released; it expires by itself", "err", err, "ttl", l.cfg.TTL)
	}
}

// Run runs work while holding l: work's context ends when the lease is
// lost or lapses. After a lapse it takes the lease back, trying every
// third of its TTL, and runs work again; it returns when ctx ends (nil),
// work returns by itself (work's error), or another claim holds the
// lease (ErrLost).
func Run(ctx context.Context, l *Lease, work func(ctx context.Context) error) error {
	for {
		err := l.runHeld(ctx, work)
		if !errors.Is(err, ErrLapsed) || ctx.Err() != nil {
			return err
		}
		if err := l.retakeLoop(ctx); err != nil || ctx.Err() != nil {
			return err
		}
	}
}

// runHeld runs work while holding l, and stops it when l is lost.
func (l *Lease) runHeld(ctx context.Context, work func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	held := make(chan error, 1)
	go func() {
		err := l.Hold(ctx)
		if errors.Is(err, ErrLapsed) {
			l.cfg.Logger.Error(l.cfg.What+" pauses: its lease lapsed; it goes on once it has it back", "err", err)
			cancel()
		} else if err != nil {
			l.cfg.Logger.Error(l.cfg.What+" stops: lease lost", "err", err)
			cancel()
		}
		held <- err
	}()
	err := work(ctx)
	cancel()
	// A lease that lapsed or was lost ended work's context: whatever work
	// returned then (often its context's error, wrapped) is the lease's
	// doing, and the lease's error decides what Run does next.
	if lerr := <-held; lerr != nil || err == nil {
		err = lerr
	}
	return err
}

// retakeLoop takes the lapsed lease back, trying every third of its TTL
// until ctx ends (nil) or another claim holds it (ErrLost).
func (l *Lease) retakeLoop(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := l.Retake(ctx)
		if err == nil {
			l.cfg.Logger.Warn(l.cfg.What+" has its lease back; going on", "attempts", attempt)
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrLost) {
			l.cfg.Logger.Error(l.cfg.What+" stops: lease lost", "err", err)
			return err
		}
		if attempt == 1 || attempt%10 == 0 {
			l.cfg.Logger.Warn(l.cfg.What+" cannot take its lease back yet; retrying", "attempt", attempt, "err", err)
		}
		t := time.NewTimer(l.cfg.TTL / 3)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
