package pushnotify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/nats/schema"
	"github.com/natter-chat/natter/presence"
)

// Outcomes counted per provider by Dispatcher.Counters.
const (
	OutcomeSent         = "sent"          // the provider accepted it
	OutcomeInvalidToken = "invalid_token" // the device was removed
	OutcomeDeadLetter   = "dead_letter"   // it kept failing; see PUSH_DLQ
	OutcomeDuplicate    = "duplicate"     // already sent for this message
	OutcomeRequeued     = "requeued"      // cut short; the message comes back
)

// Counter names one counter: a provider (platform) and an outcome.
type Counter struct {
	Provider string
	Outcome  string
}

// Counters returns a snapshot of the dispatcher's counters, the numbers a
// Prometheus exporter would publish as natter_push_total{provider,outcome}.
func (d *Dispatcher) Counters() map[Counter]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.counters)
}

func (d *Dispatcher) count(provider, outcome string) {
	d.mu.Lock()
	d.counters[Counter{provider, outcome}]++
	d.mu.Unlock()
}

// DeadLetter is what the dispatcher publishes on chat.push.dead.<platform>
// in the PUSH_DLQ stream for a notification it gave up on.
type DeadLetter struct {
	User     string    `json:"user"`
	Conv     string    `json:"conv"`
	Seq      uint64    `json:"seq"`
	Count    int       `json:"count"`
	DeviceID string    `json:"device_id"`
	Platform string    `json:"platform"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// send notifies every device of b.User and reports whether the batch is
// done with (sent, dropped or dead-lettered) rather than to be retried.
func (d *Dispatcher) send(b Batch) bool {
	ctx, cancel := context.WithTimeout(d.sendCtx, d.cfg.SendTimeout)
	defer cancel()
	log := d.cfg.Logger.With("user", b.User, "conv", b.Conv, "seq", b.LastSeq)
	// The user may have come online during the window: they see it live.
	if st, err := presence.Get(ctx, d.deps.Presence, b.User); err == nil && st.Online {
		return true
	}
	devices, err := d.deps.Devices.Devices(ctx, b.User)
	if err != nil {
		log.Warn("pushnotify cannot read the devices, will retry", "err", err)
		return false
	}
	ok := true
	for _, dev := range devices {
		key := DedupKey(b.Conv, b.LastSeq, dev.Platform, dev.Token)
		seen, err := d.deps.Sent.Seen(ctx, key)
		if err != nil {
			log.Warn("pushnotify cannot record a send, will retry", "err", err)
			ok = false
			continue
		}
		if seen {
			d.count(dev.Platform, OutcomeDuplicate)
			continue
		}
		n := b.Notification(dev.Platform, dev.Token, d.cfg.Private)
		err = Retry(ctx, d.deps.Sender, n, d.cfg.Policy)
		switch {
		case err == nil:
			d.count(dev.Platform, OutcomeSent)
		case errors.Is(err, ErrInvalidToken):
			d.count(dev.Platform, OutcomeInvalidToken)
			log.Info("Push provider says the device is gone, removing it.", "device_id", dev.ID, "platform", dev.Platform, "err", err)
			if _, rerr := d.deps.Devices.Remove(ctx, b.User, func(x Device) bool { return x.ID == dev.ID && x.Token == dev.Token }); rerr != nil {
				log.Warn("pushnotify cannot remove an invalid device", "device_id", dev.ID, "err", rerr)
			}
		case d.sendCtx.Err() != nil:
			// Shutting down: the next dispatcher tries again.
			d.count(dev.Platform, OutcomeRequeued)
			d.forget(key)
			ok = false
		default:
			d.count(dev.Platform, OutcomeDeadLetter)
			log.Warn("Push notification failed for good, dead-lettering it.", "device_id", dev.ID, "platform", dev.Platform, "err", err)
			if derr := d.deadLetter(b, dev, err); derr != nil {
				log.Warn("pushnotify cannot dead-letter, will retry", "err", derr)
				ok = false
			}
			d.forget(key)
		}
	}
	return ok
}

// forget drops a dedup key, even while shutting down.
func (d *Dispatcher) forget(key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(d.sendCtx), 5*time.Second)
	defer cancel()
	if err := d.deps.Sent.Forget(ctx, key); err != nil {
		d.cfg.Logger.Warn("pushnotify cannot forget a send", "key", key, "err", err)
	}
}

func (d *Dispatcher) deadLetter(b Batch, dev Device, reason error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(d.sendCtx), 5*time.Second)
	defer cancel()
	data, err := json.Marshal(DeadLetter{
		User: b.User, Conv: b.Conv, Seq: b.LastSeq, Count: b.Count,
		DeviceID: dev.ID, Platform: dev.Platform, Reason: reason.Error(), At: d.cfg.Clock.Now().UTC(),
	})
	if err != nil {
		return err
	}
	msg := &nats.Msg{
		Subject: schema.PushDead(dev.Platform),
		Data:    data,
		Header:  nats.Header{schema.HeaderMsgID: []string{DedupKey(b.Conv, b.LastSeq, dev.Platform, dev.Token)}},
	}
	if _, err := d.deps.JS.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("pushnotify: dead-letter: %w", err)
	}
	return nil
}
