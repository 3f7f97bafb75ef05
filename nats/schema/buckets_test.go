package schema_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/presence"
)

// PRESENCE takes a connection with the longest device label a client may
// send, escaped as badly as JSON can, and refuses values beyond the limit
// so a client cannot make the server store an unbounded label.
func TestPresenceBucketValueLimit(t *testing.T) {
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	if err := schema.Ensure(t.Context(), js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), schema.BucketPresence)
	if err != nil {
		t.Fatal(err)
	}
	worst, _ := json.Marshal(presence.Conn{Device: strings.Repeat("<", 128), Since: time.Now()})
	if _, err := kv.Put(t.Context(), "c.alice.gw1.s1", worst); err != nil {
		t.Fatalf("a 128-byte label (%d bytes of JSON): %v", len(worst), err)
	}
	big, _ := json.Marshal(presence.Conn{Device: strings.Repeat("x", schema.PresenceMaxValue), Since: time.Now()})
	if _, err := kv.Put(t.Context(), "c.alice.gw1.s2", big); err == nil {
		t.Fatalf("PRESENCE took a %d-byte value", len(big))
	}
}
