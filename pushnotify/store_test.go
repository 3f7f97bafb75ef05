package pushnotify_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
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
