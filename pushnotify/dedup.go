package pushnotify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// Deduper remembers which notifications were sent, so a dispatcher that
// restarts and gets messages redelivered does not notify a device twice.
type Deduper interface {
	// Seen records key and reports whether it was already recorded. Only
	// one of any number of concurrent callers with the same key gets false.
	Seen(ctx context.Context, key string) (bool, error)
}

// DedupKey is the Deduper key of the notification of message seq in conv
// to one device: "<conv>.<seq>.<device hash>". The device is hashed because
// tokens (Web Push subscriptions above all) are long and hold characters KV
// keys cannot; conv is kept because seqs are per stream and the scale-out
// layout has several streams. conv must be a valid id ([A-Za-z0-9_-]).
func DedupKey(conv string, seq uint64, platform, token string) string {
	h := sha256.New()
	h.Write([]byte(platform))
	h.Write([]byte{0})
	h.Write([]byte(token))
	return conv + "." + strconv.FormatUint(seq, 10) + "." + hex.EncodeToString(h.Sum(nil)[:16])
}

// KVDedup is a Deduper on a JetStream KV bucket: Seen is a KV Create, which
// fails when the key exists, so the server arbitrates between dispatchers;
// the bucket's TTL forgets keys.
//
// Call Seen before sending: a crash between Seen and the send loses that
// one notification rather than sending it twice. Call Forget when the send
// failed in a way that should be tried again on redelivery.
type KVDedup struct {
	kv jetstream.KeyValue
}

var _ Deduper = (*KVDedup)(nil)

// NewKVDedup returns a KVDedup on kv, the PUSH_SENT bucket
// (schema.PushSentBucket).
func NewKVDedup(kv jetstream.KeyValue) *KVDedup {
	return &KVDedup{kv: kv}
}

// Seen implements Deduper.
func (d *KVDedup) Seen(ctx context.Context, key string) (bool, error) {
	_, err := d.kv.Create(ctx, key, []byte{1})
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		return true, nil
	default:
		return false, fmt.Errorf("pushnotify: record %q: %w", key, err)
	}
}

// Forget removes key, so the next Seen for it reports false.
func (d *KVDedup) Forget(ctx context.Context, key string) error {
	if err := d.kv.Delete(ctx, key); err != nil {
		return fmt.Errorf("pushnotify: forget %q: %w", key, err)
	}
	return nil
}
