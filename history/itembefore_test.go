package history_test

import (
	"runtime"
	"testing"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/protocol"
)

// Every sync from a seq asks the stream for the item before its page
// (Stream.ItemBefore). It must cost next to nothing in memory: through
// jetstreamext.GetLastMsgsFor it made a 65,536-slot channel (512 KiB) per
// call, which a storm of a thousand syncs turned into half a gigabyte of
// garbage.
func TestItemBeforeAllocatesLittle(t *testing.T) {
	e := newEnv(t)
	e.say("c", "a")
	e.publish("c", envelope("u1", protocol.KindEdit, 1, "A"))
	e.say("other", "x")
	last := e.say("c", "b")[0]
	st, err := history.NewStream(ctxT(t), e.js)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if prev, err := st.ItemBefore(ctx, "c", last); err != nil || prev != 2 {
		t.Fatalf("ItemBefore(%d) = %d, %v, want 2", last, prev, err)
	}
	const calls = 20
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range calls {
		if _, err := st.ItemBefore(ctx, "c", last); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&m1)
	if per := (m1.TotalAlloc - m0.TotalAlloc) / calls; per > 64<<10 {
		t.Fatalf("ItemBefore allocates %d bytes a call", per)
	}
}
