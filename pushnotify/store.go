package pushnotify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// ErrTooLarge is returned by Register for a token over MaxTokenBytes.
var ErrTooLarge = errors.New("pushnotify: device token too large")

// MaxTokenBytes bounds a device token (a Web Push subscription is the
// longest, a few hundred bytes in practice).
const MaxTokenBytes = 4 << 10

// DefaultMaxDevices is how many devices a user may register before the
// oldest is evicted.
const DefaultMaxDevices = 20

// Device is a registered device.
type Device struct {
	// ID is DeviceID(Platform, Token).
	ID       string    `json:"id"`
	Platform string    `json:"platform"`
	Token    string    `json:"token"`
	Added    time.Time `json:"added"`
}

// DeviceID is a device's id: the first 16 hex digits of SHA-256 of
// platform, a zero byte and token. It fingerprints the token without
// revealing it, and the client that holds the token can compute it.
func DeviceID(platform, token string) string {
	h := sha256.New()
	h.Write([]byte(platform))
	h.Write([]byte{0})
	h.Write([]byte(token))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// StoreConfig configures a Store.
type StoreConfig struct {
	// MaxDevices per user (default DefaultMaxDevices); registering one
	// more evicts the oldest: stale tokens of reinstalled apps pile up and
	// must not lock a user out.
	MaxDevices int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Store keeps devices and mutes in the PUSH bucket: d.<uid> is the JSON
// list of a user's devices, changed with compare-and-set; m.<uid>.<conv>
// holds a mute's end. Callers validate uid and conv as ids.
type Store struct {
	kv  jetstream.KeyValue
	cfg StoreConfig
}

// NewStore returns a Store on kv, the PUSH bucket (schema.PushBucket).
func NewStore(cfg StoreConfig, kv jetstream.KeyValue) *Store {
	if cfg.MaxDevices <= 0 {
		cfg.MaxDevices = DefaultMaxDevices
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{kv: kv, cfg: cfg}
}

func devicesKey(uid string) string    { return "d." + uid }
func muteKey(uid, conv string) string { return "m." + uid + "." + conv }
func (s *Store) now() time.Time       { return s.cfg.Now().UTC() }
func isExists(err error) bool         { return errors.Is(err, jetstream.ErrKeyExists) }
func isNotFound(err error) bool       { return errors.Is(err, jetstream.ErrKeyNotFound) }
func isWrongRevision(err error) bool  { return isExists(err) || schema.IsWrongLastSeq(err) }

// Devices returns uid's devices, oldest first.
func (s *Store) Devices(ctx context.Context, uid string) ([]Device, error) {
	ds, _, err := s.get(ctx, uid)
	return ds, err
}

func (s *Store) get(ctx context.Context, uid string) ([]Device, uint64, error) {
	e, err := s.kv.Get(ctx, devicesKey(uid))
	if isNotFound(err) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("pushnotify: devices of %s: %w", uid, err)
	}
	var ds []Device
	if err := json.Unmarshal(e.Value(), &ds); err != nil {
		return nil, 0, fmt.Errorf("pushnotify: decode devices of %s: %w", uid, err)
	}
	return ds, e.Revision(), nil
}

// change applies fn to uid's devices with compare-and-set, retrying lost
// races. fn reports whether it changed anything.
func (s *Store) change(ctx context.Context, uid string, fn func([]Device) ([]Device, bool)) error {
	for attempt := 0; attempt < 20; attempt++ {
		ds, rev, err := s.get(ctx, uid)
		if err != nil {
			return err
		}
		next, changed := fn(ds)
		if !changed {
			return nil
		}
		val, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("pushnotify: encode devices: %w", err)
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, devicesKey(uid), val)
		} else {
			_, err = s.kv.Update(ctx, devicesKey(uid), val, rev)
		}
		if err == nil {
			return nil
		}
		if !isWrongRevision(err) {
			return fmt.Errorf("pushnotify: write devices of %s: %w", uid, err)
		}
	}
	return fmt.Errorf("pushnotify: devices of %s: too many concurrent changes", uid)
}

// Register adds a device to uid, or keeps it when the same platform and
// token are registered already. At MaxDevices the oldest device goes.
func (s *Store) Register(ctx context.Context, uid, platform, token string) (Device, error) {
	if len(token) > MaxTokenBytes {
		return Device{}, ErrTooLarge
	}
	d := Device{ID: DeviceID(platform, token), Platform: platform, Token: token, Added: s.now()}
	err := s.change(ctx, uid, func(ds []Device) ([]Device, bool) {
		for _, have := range ds {
			if have.ID == d.ID && have.Token == token {
				d = have
				return ds, false
			}
		}
		if over := len(ds) + 1 - s.cfg.MaxDevices; over > 0 {
			ds = ds[over:]
		}
		return append(slices.Clone(ds), d), true
	})
	return d, err
}

// Remove removes uid's devices for which match is true and returns how
// many went.
func (s *Store) Remove(ctx context.Context, uid string, match func(Device) bool) (int, error) {
	var n int
	err := s.change(ctx, uid, func(ds []Device) ([]Device, bool) {
		next := slices.DeleteFunc(slices.Clone(ds), match)
		n = len(ds) - len(next)
		return next, n > 0
	})
	return n, err
}

// muteValue is the value of m.<uid>.<conv>. A value written before mute
// levels has no level: it silences everything (protocol.MuteAll).
type muteValue struct {
	Level string     `json:"level,omitempty"`
	Until *time.Time `json:"until,omitempty"`
}

// Mute sets uid's mute level of conv (protocol.MuteAll, MuteMentions or
// MuteNone) until the given time, zero for no end. MuteNone, or an until
// that is not in the future, unmutes.
func (s *Store) Mute(ctx context.Context, uid, conv, level string, until time.Time) error {
	key := muteKey(uid, conv)
	if level == protocol.MuteNone || !until.IsZero() && !until.After(s.now()) {
		if err := s.kv.Delete(ctx, key); err != nil && !isNotFound(err) {
			return fmt.Errorf("pushnotify: unmute: %w", err)
		}
		return nil
	}
	v := muteValue{Level: level}
	if !until.IsZero() {
		u := until.UTC()
		v.Until = &u
	}
	val, _ := json.Marshal(v)
	if _, err := s.kv.Put(ctx, key, val); err != nil {
		return fmt.Errorf("pushnotify: mute: %w", err)
	}
	return nil
}

// MuteLevel returns uid's mute level of conv now: protocol.MuteAll,
// MuteMentions, or MuteNone when it is not muted (or the mute ended).
func (s *Store) MuteLevel(ctx context.Context, uid, conv string) (string, error) {
	e, err := s.kv.Get(ctx, muteKey(uid, conv))
	if isNotFound(err) {
		return protocol.MuteNone, nil
	}
	if err != nil {
		return "", fmt.Errorf("pushnotify: mute of %s in %s: %w", uid, conv, err)
	}
	var m muteValue
	if err := json.Unmarshal(e.Value(), &m); err != nil {
		return protocol.MuteNone, nil // an unreadable mute does not silence anyone
	}
	if m.Until != nil && !m.Until.After(s.now()) {
		return protocol.MuteNone, nil
	}
	switch m.Level {
	case "":
		return protocol.MuteAll, nil
	case protocol.MuteAll, protocol.MuteMentions:
		return m.Level, nil
	}
	return protocol.MuteNone, nil
}
