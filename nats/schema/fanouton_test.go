package schema

import (
	"slices"
	"testing"
)

// The fan-out consumers on each message stream are those its partitions
// run, and the eraser (which waits for them before dropping a quote) may
// look each of them up: on a partition stream CHAT_p only fanout-p exists,
// and asking CHAT_0 for fanout-1 was a permissions violation that failed
// every erasure with a quote (NATTER_E2E_TOPOLOGY=cluster3x4).
func TestFanoutConsumersOnEachStream(t *testing.T) {
	perms, ok := RolePermissions(RoleEraser)
	if !ok {
		t.Fatal("no eraser role")
	}
	for _, c := range []struct {
		l    Layout
		want map[string][]string
	}{
		{Layout{}, map[string][]string{StreamChat: nil}},
		{Layout{Partitions: 4}, map[string][]string{StreamChat: {"fanout-0", "fanout-1", "fanout-2", "fanout-3"}}},
		{Layout{Partitions: 4, Streams: 4}, map[string][]string{"CHAT_0": {"fanout-0"}, "CHAT_1": {"fanout-1"}, "CHAT_2": {"fanout-2"}, "CHAT_3": {"fanout-3"}}},
	} {
		for _, stream := range c.l.ChatStreams() {
			got := c.l.FanoutConsumersOn(stream)
			if !slices.Equal(got, c.want[stream]) {
				t.Errorf("layout %+v, stream %s: %v, want %v", c.l, stream, got, c.want[stream])
			}
			for _, name := range append(got, ChatConsumers()...) {
				if subj := jsAPIPrefix + "CONSUMER.INFO." + stream + "." + name; !slices.Contains(perms.Publish, subj) {
					t.Errorf("layout %+v: the eraser may not publish %s", c.l, subj)
				}
			}
		}
	}
}
