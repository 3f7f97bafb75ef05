package fanout

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/protocol"
)

// onDelivered tells the other members that a delivered marker moved. The
// user's own devices are not told: delivery is news to the senders.
func (f *Fanout) onDelivered(msg *nats.Msg) {
	conv := schema.ConvFromSubject(msg.Subject)
	var n schema.DeliveredNotice
	if conv == "" || json.Unmarshal(msg.Data, &n) != nil || !protocol.ValidID(n.User) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mem, err := f.cache.get(ctx, conv)
	if err != nil || !mem.doc.IsMember(n.User) {
		return
	}
	to := noticeAudience(mem.doc.Members, n.User, n.Except)
	if len(to) == 0 {
		return
	}
	frame, _ := json.Marshal(protocol.Delivered{Type: protocol.TypeDelivered, Conv: conv, User: n.User, Seq: n.Seq})
	for _, u := range to {
		_ = f.nc.Publish(schema.User(u, schema.EventDelivered), frame)
	}
}
