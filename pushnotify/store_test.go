package pushnotify_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
	"github.com/natter-chat/natter/pushnotify"
)

// The PUSH bucket's value limit holds a full device list of the largest
// tokens JSON can make, and nothing much larger.
func TestStoreFitsBucketLimit(t *testing.T) {
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	kv, err := js.CreateKeyValue(t.Context(), schema.PushBucket(schema.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	store := pushnotify.NewStore(pushnotify.StoreConfig{}, kv)
	for i := range pushnotify.DefaultMaxDevices {
		// & is escaped as \u0026: the token grows six times in JSON.
		token := fmt.Sprintf("%04d", i) + strings.Repeat("&", pushnotify.MaxTokenBytes-4)
		if _, err := store.Register(t.Context(), "alice", pushnotify.PlatformFCM, token); err != nil {
			t.Fatalf("device %d: %v", i, err)
		}
	}
	ds, err := store.Devices(t.Context(), "alice")
	if err != nil || len(ds) != pushnotify.DefaultMaxDevices {
		t.Fatalf("Devices: %d, %v", len(ds), err)
	}
	if _, err := kv.Put(t.Context(), "d.mallory", make([]byte, schema.PushMaxValue+1)); err == nil {
		t.Fatal("the bucket took a value over PushMaxValue")
	}
}

// Mute levels, their end, and mutes stored before levels existed (a bare
// until, which silenced everything).
func TestStoreMuteLevels(t *testing.T) {
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	kv, err := js.CreateKeyValue(t.Context(), schema.PushBucket(schema.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	store := pushnotify.NewStore(pushnotify.StoreConfig{Now: func() time.Time { return now }}, kv)
	ctx := t.Context()
	level := func() string {
		t.Helper()
		l, err := store.MuteLevel(ctx, "alice", "g1")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if got := level(); got != protocol.MuteNone {
		t.Fatalf("never muted: %q", got)
	}
	for _, tc := range []struct {
		level string
		until time.Time
		want  string
	}{
		{protocol.MuteMentions, time.Time{}, protocol.MuteMentions},
		{protocol.MuteAll, now.Add(time.Minute), protocol.MuteAll},
		{protocol.MuteNone, time.Time{}, protocol.MuteNone},
		{protocol.MuteMentions, now.Add(-time.Minute), protocol.MuteNone},
	} {
		if err := store.Mute(ctx, "alice", "g1", tc.level, tc.until); err != nil {
			t.Fatal(err)
		}
		if got := level(); got != tc.want {
			t.Fatalf("Mute(%s, %v): level %q, want %q", tc.level, tc.until, got, tc.want)
		}
	}
	if err := store.Mute(ctx, "alice", "g1", protocol.MuteMentions, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	if got := level(); got != protocol.MuteNone {
		t.Fatalf("after its end: %q", got)
	}
	if _, err := kv.Put(ctx, "m.alice.g1", []byte(`{"until":"2026-03-04T06:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	if got := level(); got != protocol.MuteAll {
		t.Fatalf("a mute stored before levels: %q, want all", got)
	}
}

// MuteLevels answers as MuteLevel does for each conversation, in batched
// reads with StoreConfig.NC and one Get each without.
func TestStoreMuteLevelsBatch(t *testing.T) {
	s := natstest.Start(t)
	nc, js := natstest.Connect(t, s)
	kv, err := js.CreateKeyValue(t.Context(), schema.PushBucket(schema.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	ctx := t.Context()
	writer := pushnotify.NewStore(pushnotify.StoreConfig{Now: func() time.Time { return now }}, kv)
	for conv, level := range map[string]string{"g1": protocol.MuteAll, "g2": protocol.MuteMentions, "g3": protocol.MuteAll} {
		if err := writer.Mute(ctx, "alice", conv, level, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := writer.Mute(ctx, "alice", "g3", protocol.MuteNone, time.Time{}); err != nil { // unmuted
		t.Fatal(err)
	}
	if err := writer.Mute(ctx, "bob", "g4", protocol.MuteAll, time.Time{}); err != nil { // someone else's
		t.Fatal(err)
	}
	if err := writer.Mute(ctx, "alice", "g5", protocol.MuteAll, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	later := now.Add(2 * time.Minute) // g5's mute ended
	for _, batched := range []bool{true, false} {
		cfg := pushnotify.StoreConfig{Now: func() time.Time { return later }}
		if batched {
			cfg.NC = nc
		}
		got, err := pushnotify.NewStore(cfg, kv).MuteLevels(ctx, "alice", []string{"g1", "g2", "g3", "g4", "g5", "g6"})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(map[string]string{"g1": protocol.MuteAll, "g2": protocol.MuteMentions}) {
			t.Fatalf("batched %v: %v", batched, got)
		}
	}
}
