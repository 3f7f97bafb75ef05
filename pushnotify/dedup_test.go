package pushnotify_test

import (
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/pushnotify"
)

func TestDedupKey(t *testing.T) {
	sub := `{"endpoint":"https://push.example/x?y=1","keys":{"p256dh":"BA..","auth":"q+/="}}`
	k := pushnotify.DedupKey("g_1-x", 42, pushnotify.PlatformWebPush, sub)
	if !regexp.MustCompile(`^g_1-x\.42\.[0-9a-f]{32}$`).MatchString(k) {
		t.Fatalf("DedupKey = %q, not a valid KV key of the expected shape", k)
	}
	if k == pushnotify.DedupKey("g_1-x", 42, pushnotify.PlatformFCM, sub) {
		t.Error("the platform does not change the key")
	}
	if k == pushnotify.DedupKey("g_1-x", 43, pushnotify.PlatformWebPush, sub) {
		t.Error("the seq does not change the key")
	}
}

func TestKVDedup(t *testing.T) {
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	kv, err := js.CreateKeyValue(t.Context(), schema.PushSentBucket(schema.Config{}))
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	d := pushnotify.NewKVDedup(kv)
	key := pushnotify.DedupKey("c1", 7, pushnotify.PlatformAPNs, "tok")

	if seen, err := d.Seen(t.Context(), key); err != nil || seen {
		t.Fatalf("first Seen = %v, %v; want false", seen, err)
	}
	if seen, err := d.Seen(t.Context(), key); err != nil || !seen {
		t.Fatalf("second Seen = %v, %v; want true", seen, err)
	}

	// A restarted dispatcher: a new KVDedup on a new connection.
	_, js2 := natstest.Connect(t, s)
	kv2, err := js2.KeyValue(t.Context(), "PUSH_SENT")
	if err != nil {
		t.Fatal(err)
	}
	d2 := pushnotify.NewKVDedup(kv2)
	if seen, err := d2.Seen(t.Context(), key); err != nil || !seen {
		t.Fatalf("Seen after restart = %v, %v; want true", seen, err)
	}

	if err := d2.Forget(t.Context(), key); err != nil {
		t.Fatalf("Forget: %v", err)
	}
	if seen, err := d.Seen(t.Context(), key); err != nil || seen {
		t.Fatalf("Seen after Forget = %v, %v; want false", seen, err)
	}

	// Concurrent dispatchers: exactly one wins.
	other := pushnotify.DedupKey("c1", 8, pushnotify.PlatformAPNs, "tok")
	var winners atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		dd := d
		if i%2 == 1 {
			dd = d2
		}
		wg.Go(func() {
			seen, err := dd.Seen(t.Context(), other)
			if err != nil {
				t.Errorf("Seen: %v", err)
			}
			if !seen {
				winners.Add(1)
			}
		})
	}
	wg.Wait()
	if winners.Load() != 1 {
		t.Fatalf("%d callers got Seen=false, want exactly 1", winners.Load())
	}
}

func TestKVDedupExpires(t *testing.T) {
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	kv, err := js.CreateKeyValue(t.Context(), shortTTL())
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	d := pushnotify.NewKVDedup(kv)
	if seen, err := d.Seen(t.Context(), "c1.1.ab"); err != nil || seen {
		t.Fatalf("Seen = %v, %v", seen, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		time.Sleep(250 * time.Millisecond)
		seen, err := d.Seen(t.Context(), "c1.1.ab")
		if err != nil {
			t.Fatal(err)
		}
		if !seen {
			return // the bucket's TTL forgot it
		}
		if time.Now().After(deadline) {
			t.Fatal("key still seen 10 s after a 1 s TTL")
		}
	}
}

// shortTTL is the PUSH_SENT bucket with keys expiring after a second.
func shortTTL() jetstream.KeyValueConfig {
	c := schema.PushSentBucket(schema.Config{})
	c.TTL = time.Second
	return c
}
