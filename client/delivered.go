package client

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// DefaultDeliveredDelay is Options.DeliveredDelay when zero.
const DefaultDeliveredDelay = time.Second

// deliveredMarks coalesces the delivered markers the client reports on
// its own: every message of another user that reaches it (a live push,
// or a page of sync or history) raises its conversation's pending marker,
// and once per delay the pending markers are sent, one delivered frame
// per conversation, without an id. A burst of messages costs one frame.
type deliveredMarks struct {
	c     *Client
	delay time.Duration // ≤ 0: off
	mu    sync.Mutex
	due   map[string]uint64 // conv → seq to report
	sent  map[string]uint64 // conv → seq last reported
	timer *time.Timer       // armed while due is not empty
}

// note raises conv's pending marker to seq.
func (d *deliveredMarks) note(conv string, seq uint64) {
	if d.delay <= 0 || conv == "" || seq == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if seq <= d.sent[conv] || seq <= d.due[conv] {
		return
	}
	if d.due == nil {
		d.due, d.sent = make(map[string]uint64), make(map[string]uint64)
	}
	d.due[conv] = seq
	if d.timer == nil {
		d.timer = time.AfterFunc(d.delay, d.flush)
	}
}

// noteMessages notes the messages of a page that others sent.
func (d *deliveredMarks) noteMessages(f *protocol.MessagesFrame) {
	var top uint64
	for _, m := range f.Messages {
		if m.Sender != d.c.welcome.User {
			top = max(top, m.Seq)
		}
	}
	d.note(f.Conv, top)
}

// flush sends the pending markers. One that cannot be written is dropped:
// the next message of the conversation reports it again, cumulatively.
func (d *deliveredMarks) flush() {
	d.mu.Lock()
	due := d.due
	d.due = make(map[string]uint64, len(due))
	for conv, seq := range due {
		d.sent[conv] = seq
	}
	d.timer = nil
	d.mu.Unlock()
	for conv, seq := range due {
		select {
		case <-d.c.done:
			return
		default:
		}
		b, _ := json.Marshal(protocol.Request{Type: protocol.TypeDelivered, Conv: conv, Seq: int64(seq)})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = d.c.WriteRaw(ctx, b)
		cancel()
	}
}

// stop disarms the timer; the connection has ended.
func (d *deliveredMarks) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

// MarkDelivered moves the caller's delivered marker in conv to seq and
// waits for ok. The client reports deliveries on its own (see
// Options.DeliveredDelay); this is for clients that turned that off.
func (c *Client) MarkDelivered(ctx context.Context, conv string, seq uint64) error {
	return c.call(ctx, protocol.Request{Type: protocol.TypeDelivered, Conv: conv, Seq: int64(seq)}, protocol.TypeOK, nil)
}

// Receipts returns every member's delivered and read markers in conv, a
// conversation of at most protocol.MaxReceiptsMembers members.
func (c *Client) Receipts(ctx context.Context, conv string) (*protocol.ReceiptsFrame, error) {
	f := new(protocol.ReceiptsFrame)
	if err := c.call(ctx, protocol.Request{Type: protocol.TypeReceipts, Conv: conv}, protocol.TypeReceipts, f); err != nil {
		return nil, err
	}
	return f, nil
}
