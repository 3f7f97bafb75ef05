package history

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

// lease is the history writer lease (schema.LeaseHistoryWriter) held by
// one writer of an embedded store. Its value names the store and the
// claim ("<owner> <nuid>"); its per-message TTL makes it expire when the
// holder dies without releasing it.
type lease struct {
	js    jetstream.JetStream
	kv    jetstream.KeyValue
	owner string
	// value is what this claim wrote: the owner and a nonce, so that a
	// renewal whose answer was lost (a KV leader that died after storing
	// it) is recognised as this holder's own, and a takeover by a later
	// run on the same store is not.
	value []byte
	ttl   time.Duration
	log   *slog.Logger
	rev   uint64
}

// errLeaseLapsed is ErrLeaseLost when the lease could not be renewed for a
// whole TTL but nobody is known to have taken it: the writer pauses and
// takes it again once the bucket answers (retake), rather than stopping
// for good as it must when another writer holds it.
var errLeaseLapsed = fmt.Errorf("%w: not renewed within its TTL", ErrLeaseLost)

// leaseOwner is the store a lease value names.
func leaseOwner(value []byte) string {
	owner, _, _ := strings.Cut(string(value), " ")
	return owner
}

// claimLease takes the lease for owner. A lease already held under the
// same owner is taken over: owner names one store directory on one host,
// which only one process can have open, so its holder is a dead
// predecessor. Held by another owner, it fails with ErrWriterRunning.
func claimLease(ctx context.Context, js jetstream.JetStream, owner string, ttl time.Duration, log *slog.Logger) (*lease, error) {
	kv, err := js.KeyValue(ctx, schema.BucketLeases)
	if err != nil {
		return nil, fmt.Errorf("history writer lease: %w", err)
	}
	l := &lease{js: js, kv: kv, owner: owner, value: []byte(owner + " " + nuid.Next()), ttl: ttl, log: log}
	rev, err := kv.Create(ctx, schema.LeaseHistoryWriter, l.value, jetstream.KeyTTL(ttl))
	if err == nil {
		l.rev = rev
		return l, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("history writer lease: %w", err)
	}
	e, err := kv.Get(ctx, schema.LeaseHistoryWriter)
	if err != nil {
		// Expired or released since Create: try once more next start.
		return nil, fmt.Errorf("%w: %s (%v)", ErrWriterRunning, schema.LeaseHistoryWriter, err)
	}
	if leaseOwner(e.Value()) != owner {
		return nil, fmt.Errorf("%w: %q holds it; one embedded history store per cluster (use --cql for several writers), or wait %s after that writer stopped",
			ErrWriterRunning, leaseOwner(e.Value()), ttl)
	}
	l.rev = e.Revision()
	if err := l.renew(ctx); err != nil {
		return nil, err
	}
	log.Info("history writer lease taken over from a previous run on the same store", "owner", owner)
	return l, nil
}

// renew writes the lease again with its TTL, if this holder still has it.
// A KV Update cannot carry a TTL, so it is published to the bucket's
// subject with the revision check Update would do.
func (l *lease) renew(ctx context.Context) error {
	ack, err := l.js.Publish(ctx, schema.KVKey(schema.BucketLeases, schema.LeaseHistoryWriter), l.value,
		jetstream.WithExpectLastSequencePerSubject(l.rev), jetstream.WithMsgTTL(l.ttl))
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			// A renewal whose answer was lost (the bucket's leader died
			// after storing it) moved the revision: still this claim's.
			return l.adopt(ctx)
		}
		return fmt.Errorf("renew history writer lease: %w", err)
	}
	l.rev = ack.Sequence
	return nil
}

// adopt takes the lease's current revision if it still holds this claim's
// value, and fails with ErrLeaseLost if another claim's.
func (l *lease) adopt(ctx context.Context) error {
	e, err := l.kv.Get(ctx, schema.LeaseHistoryWriter)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return errLeaseLapsed
	case err != nil:
		return fmt.Errorf("read history writer lease: %w", err)
	case string(e.Value()) != string(l.value):
		return fmt.Errorf("%w: %q took it", ErrLeaseLost, e.Value())
	}
	l.rev = e.Revision()
	return nil
}

// retake takes the lease again after it lapsed (errLeaseLapsed): back if
// it still holds this claim's value, anew if it expired and is free. It
// fails with ErrLeaseLost if another claim holds it, and with another
// error while the bucket does not answer.
func (l *lease) retake(ctx context.Context) error {
	err := l.adopt(ctx)
	if !errors.Is(err, errLeaseLapsed) {
		return err
	}
	rev, err := l.kv.Create(ctx, schema.LeaseHistoryWriter, l.value, jetstream.KeyTTL(l.ttl))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return l.adopt(ctx) // someone was quicker, or this very Create's lost answer
	}
	if err != nil {
		return fmt.Errorf("take history writer lease: %w", err)
	}
	l.rev = rev
	return nil
}

// hold renews the lease every third of its TTL until ctx ends, then
// releases it so a successor need not wait for it to expire. It returns
// ErrLeaseLost when the lease was taken, errLeaseLapsed (wrapping it)
// when it could not be renewed for a whole TTL: either way the writer
// must stop appending, another may be.
func (l *lease) hold(ctx context.Context) error {
	tick := time.NewTicker(l.ttl / 3)
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
		case errors.Is(err, ErrLeaseLost):
			return err
		case errors.Is(err, errLeaseLapsed):
			return err
		case time.Since(renewed) >= l.ttl:
			return fmt.Errorf("%w: for %s: %v", errLeaseLapsed, l.ttl, err)
		default:
			l.log.Warn("history writer lease not renewed; retrying", "err", err)
		}
	}
}

// release deletes the lease if this holder still has it.
func (l *lease) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.kv.Delete(ctx, schema.LeaseHistoryWriter, jetstream.LastRevision(l.rev)); err != nil {
		l.log.Warn("history writer lease not released; it expires by itself", "err", err, "ttl", l.ttl)
	}
}
