package events_test

import (
	"testing"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/services/events"
)

// The same seq in two partition streams makes two event ids (the id is
// the Nats-Msg-Id that de-duplicates SVC_EVENTS); on CHAT it stays
// <seq>.<service>.
func TestEventIDIn(t *testing.T) {
	if got := events.EventIDIn(schema.StreamChat, 12, "alerts"); got != "12.alerts" {
		t.Fatalf("on CHAT: %s", got)
	}
	a, b := events.EventIDIn(schema.PartitionStream(0), 12, "alerts"), events.EventIDIn(schema.PartitionStream(3), 12, "alerts")
	if a != "0-12.alerts" || b != "3-12.alerts" {
		t.Fatalf("on partition streams: %s, %s", a, b)
	}
}
