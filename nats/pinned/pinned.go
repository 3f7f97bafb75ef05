// Package pinned runs one handler on a durable JetStream consumer whose
// priority policy is pinned_client. Every process may run a worker on the
// same consumer: the server hands messages to one of them at a time and
// moves the pin to another when that one hands over or stops pulling
// (after the consumer's PinnedTTL). One worker at a time, each handling its
// messages one after the other and never passing one it could not handle,
// is what keeps stream order for the fan-out and the push dispatcher. The
// consumers themselves are declared in nats/schema.
package pinned

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// headerPinID is the header in which the server names the pin of the
// worker a message was delivered to.
const headerPinID = HeaderPinID

// HeaderPinID is the header that names the pin a message was delivered
// under: a handler that keeps state across messages tells by it that
// another worker held the consumer in between.
const HeaderPinID = "Nats-Pin-Id"

// Config names the consumer a worker reads.
type Config struct {
	// Stream and Consumer name the durable pull consumer.
	Stream, Consumer string
	// Group is the consumer's pinned priority group.
	Group string
	// MaxMessages is the most messages one pull takes: how far the worker
	// reads ahead of its handler (default 256).
	MaxMessages int
	// Wait is how long one pull waits for messages (default 500 ms). A
	// stopping worker lets its open pull end before it hands over, so that
	// nothing is still on its way to it: Wait bounds the handover.
	Wait time.Duration
	// InOrder hands over in stream order: the handler acks each message
	// before it returns nil, and a stopping worker rewinds the consumer to
	// its ack floor, so what it was given but did not finish goes to the
	// next worker first, in order, not after AckWait behind newer
	// messages. Without it such messages are nak'd: they come back at
	// once, in no particular order.
	InOrder bool
	// MaxBackoff bounds the pause between two tries of a message the
	// handler failed (default 1 s).
	MaxBackoff time.Duration
	// Logger; slog.Default by default.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxMessages <= 0 {
		c.MaxMessages = 256
	}
	if c.Wait <= 0 {
		c.Wait = 500 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Handler takes one message. Nil means done: the handler acked or termed
// the message (or holds it and will). An error means "not yet": the
// runner tries the same message again after a pause, keeps it and the
// messages read after it from being redelivered meanwhile, and hands the
// handler no later message until this one is done or the worker stops.
// Calls are serial, in delivery order. ctx is not cancelled when Run's
// context ends, so the message in hand is finished.
type Handler func(ctx context.Context, msg jetstream.Msg) error

// Run hands the consumer's messages to h until ctx ends. Then it finishes
// the message in hand, lets its open pull end, gives back what it read but
// did not handle (see Config.InOrder) and unpins the consumer, so that a
// standby worker takes over at once rather than after PinnedTTL. It
// returns an error only when it could not start consuming.
func Run(ctx context.Context, js jetstream.JetStream, cfg Config, h Handler) error {
	if cfg.Stream == "" || cfg.Consumer == "" || cfg.Group == "" {
		return ErrConfig
	}
	cfg = cfg.withDefaults()
	stream, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return fmt.Errorf("pinned: stream %s: %w", cfg.Stream, err)
	}
	cons, err := stream.Consumer(ctx, cfg.Consumer)
	if err != nil {
		return fmt.Errorf("pinned: consumer %s: %w", cfg.Consumer, err)
	}
	c := cons.CachedInfo().Config
	if c.PriorityPolicy != jetstream.PriorityPolicyPinned || !slices.Contains(c.PriorityGroups, cfg.Group) {
		return fmt.Errorf("%w: %s, group %s", ErrNotPinned, cfg.Consumer, cfg.Group)
	}
	w := &worker{cfg: cfg, js: js, stream: stream, cons: cons, h: h, ackWait: c.AckWait, maxPause: cfg.MaxBackoff}
	if c.PinnedTTL > 0 {
		// A pause pulls once: several pulls per PinnedTTL keep the pin.
		w.maxPause = min(w.maxPause, c.PinnedTTL/4)
	}
	w.run(ctx)
	return nil
}

// worker is one Run: its pulls, what it holds and its pin.
type worker struct {
	cfg     Config
	js      jetstream.JetStream
	stream  jetstream.Stream
	cons    jetstream.Consumer
	h       Handler
	ackWait time.Duration
	// maxPause bounds the pause between tries: MaxBackoff, or less so
	// that the pauses' pulls keep the pin.
	maxPause time.Duration

	pulled <-chan jetstream.Msg // the open pull's messages, nil when it ended
	held   []jetstream.Msg      // read from pulled while the handler was stuck
	undone []jetstream.Msg      // delivered but not handled, in order
	pin    string               // the pin the last message came with
	last   uint64               // stream seq of the last message handled
	lost   bool                 // the pin moved while a message was stuck
	// rewinding: this worker got the pin while an earlier worker's
	// messages were still unacknowledged; it handles nothing until it
	// rewound the consumer.
	rewinding bool
}

func (w *worker) run(ctx context.Context) {
	hctx := context.WithoutCancel(ctx)
	for ctx.Err() == nil {
		batch, err := w.cons.Fetch(w.cfg.MaxMessages,
			jetstream.FetchMaxWait(w.cfg.Wait), jetstream.FetchPriorityGroup(w.cfg.Group))
		if err != nil {
			w.cfg.Logger.Debug("pinned pull failed", "consumer", w.cfg.Consumer, "err", err)
			sleep(ctx, w.cfg.Wait)
			continue
		}
		w.pulled = batch.Messages()
		for msg := range w.next {
			if pin := msg.Headers().Get(headerPinID); pin != "" && pin != w.pin {
				w.pin = pin
				// Rare (a worker starts or takes over) and what an
				// operator needs to tell which process delivers.
				w.cfg.Logger.Info("pinned worker holds the pin", "consumer", w.cfg.Consumer, "pin", pin)
				w.rewinding = w.cfg.InOrder && !w.contiguous(ctx, msg)
			}
			if ctx.Err() != nil || w.lost || w.rewinding || !w.handle(ctx, hctx, msg) {
				w.undone = append(w.undone, msg)
			}
		}
		if err := batch.Error(); err != nil {
			w.cfg.Logger.Debug("pinned pull ended", "consumer", w.cfg.Consumer, "err", err)
		}
		if w.rewinding && ctx.Err() == nil {
			// The previous worker died holding messages: start over at
			// the first one not acked, which comes next, in order.
			w.cfg.Logger.Warn("pinned worker took over from one that stopped without handing over; rewinding to the ack floor", "consumer", w.cfg.Consumer)
			if _, err := w.js.ResetConsumer(hctx, w.cfg.Stream, w.cfg.Consumer); err != nil {
				w.cfg.Logger.Warn("pinned worker could not rewind its consumer", "consumer", w.cfg.Consumer, "err", err)
				w.nakUndone()
			}
			w.undone, w.rewinding = nil, false
		}
		if w.lost && ctx.Err() == nil {
			// Another worker holds the pin: what this one still has goes
			// back now rather than after AckWait.
			w.cfg.Logger.Warn("pinned worker lost its pin with messages in hand", "consumer", w.cfg.Consumer, "messages", len(w.undone))
			w.nakUndone()
			w.lost, w.pin = false, ""
		}
	}
	w.handOver()
}

// next yields the messages of the open pull in delivery order, those
// moved to held first, until the pull ends.
func (w *worker) next(yield func(jetstream.Msg) bool) {
	for {
		if len(w.held) > 0 {
			msg := w.held[0]
			w.held = w.held[1:]
			if !yield(msg) {
				return
			}
			continue
		}
		if w.pulled == nil {
			return
		}
		msg, ok := <-w.pulled
		if !ok {
			w.pulled = nil
			return
		}
		if !yield(msg) {
			return
		}
	}
}

// handle hands msg to the handler until it is done. It reports false when
// the worker stopped, or lost its pin, while the handler kept failing.
func (w *worker) handle(ctx, hctx context.Context, msg jetstream.Msg) bool {
	backoff := min(50*time.Millisecond, w.maxPause)
	progressed := time.Now()
	for attempt := 1; ; attempt++ {
		err := w.h(hctx, msg)
		if err == nil {
			if meta, err := msg.Metadata(); err == nil {
				w.last = meta.Sequence.Stream
			}
			return true
		}
		if ctx.Err() != nil {
			// Stopping: the message goes to the next worker (a handler
			// may give up for that very reason), no warning.
			w.cfg.Logger.Debug("pinned handler failed while stopping", "consumer", w.cfg.Consumer, "err", err)
			return false
		}
		if attempt == 1 || attempt%20 == 0 {
			w.cfg.Logger.Warn("pinned handler failed, retrying the same message", "consumer", w.cfg.Consumer, "attempt", attempt, "err", err)
		}
		if !w.pause(ctx, backoff) {
			w.lost = true
			return false
		}
		backoff = min(2*backoff, w.maxPause)
		if time.Since(progressed) >= w.ackWait/4 {
			// Neither this message nor those read after it may be
			// redelivered while it is retried: that would reorder them.
			w.holdPulled()
			_ = msg.InProgress()
			for _, m := range w.held {
				_ = m.InProgress()
			}
			progressed = time.Now()
		}
	}
}

// pause waits d while keeping the pin: it pulls with a one-byte limit,
// which no message fits, so the pull takes nothing and still tells the
// server the pinned worker is alive. It reports false when the pin moved
// to another worker.
func (w *worker) pause(ctx context.Context, d time.Duration) bool {
	start := time.Now()
	defer func() { sleep(ctx, d-time.Since(start)) }()
	batch, err := w.cons.FetchBytes(1, jetstream.FetchMaxWait(d), jetstream.FetchPriorityGroup(w.cfg.Group))
	if err != nil {
		return true
	}
	for m := range batch.Messages() {
		w.held = append(w.held, m) // none expected; kept in order if any
	}
	return !errors.Is(batch.Error(), jetstream.ErrPinIDMismatch)
}

// holdPulled moves what already arrived on the open pull to held.
func (w *worker) holdPulled() {
	for w.pulled != nil {
		select {
		case msg, ok := <-w.pulled:
			if !ok {
				w.pulled = nil
				return
			}
			w.held = append(w.held, msg)
		default:
			return
		}
	}
}

// handOver gives back what this worker was delivered but did not handle
// and unpins the consumer, once its last pull ended. A worker that is not
// (or no longer) the pinned one leaves the pin alone.
func (w *worker) handOver() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if w.pin == "" || !w.pinned(ctx) {
		w.nakUndone()
		return
	}
	if len(w.undone) > 0 {
		if w.cfg.InOrder {
			w.rewind(ctx)
		} else {
			w.nakUndone()
		}
	}
	if err := w.stream.UnpinConsumer(ctx, w.cfg.Consumer, w.cfg.Group); err != nil {
		w.cfg.Logger.Warn("pinned worker could not unpin; the next one starts after PinnedTTL", "consumer", w.cfg.Consumer, "err", err)
	}
}

// contiguous reports whether first, the first message under a new pin,
// follows the consumer's ack floor: whether no earlier message is still
// out with a worker that stopped without handing over. An error counts as
// not contiguous; the rewind it causes costs only a redelivery.
func (w *worker) contiguous(ctx context.Context, first jetstream.Msg) bool {
	meta, err := first.Metadata()
	if err != nil {
		return false
	}
	info, err := w.cons.Info(ctx)
	if err != nil {
		return false
	}
	// A filtered consumer (a fan-out partition) sees stream sequences
	// with gaps, so the stream sequence alone says little: its own
	// delivery sequence tells that nothing was delivered and left
	// unacknowledged in between. The stream sequence still recognises
	// the first message after the floor coming again (a redelivery takes
	// a new delivery sequence).
	return meta.Sequence.Consumer == info.AckFloor.Consumer+1 || meta.Sequence.Stream == info.AckFloor.Stream+1
}

// pinned reports whether the server still has this worker's pin.
func (w *worker) pinned(ctx context.Context) bool {
	info, err := w.cons.Info(ctx)
	if err != nil {
		return false
	}
	for _, g := range info.PriorityGroups {
		if g.Group == w.cfg.Group {
			return g.PinnedClientID == w.pin
		}
	}
	return false
}

// rewind resets the consumer to its ack floor, after waiting a little for
// the acks of the handled messages to be applied, so delivery resumes at
// the first message not handled. Naks would not do: the server redelivers
// a nak'd message after newer ones once the pin moved.
func (w *worker) rewind(ctx context.Context) {
	acks, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for {
		info, err := w.cons.Info(acks)
		if err != nil || info.AckFloor.Stream >= w.last {
			break
		}
		if !sleep(acks, 10*time.Millisecond) {
			break // an ack not yet applied: its message comes again, in order
		}
	}
	if _, err := w.js.ResetConsumer(ctx, w.cfg.Stream, w.cfg.Consumer); err != nil {
		w.cfg.Logger.Warn("pinned worker could not rewind its consumer; its unhandled messages come back out of order", "consumer", w.cfg.Consumer, "err", err)
		w.nakUndone()
		return
	}
	w.undone = nil
}

func (w *worker) nakUndone() {
	for _, m := range w.undone {
		_ = m.Nak()
	}
	w.undone = nil
}

// sleep waits d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// RunStreams is Run of the consumer cfg names (cfg.Stream is ignored) on
// each of streams at once: one worker, pin and handover per stream, as a
// consumer that reads every message stream (schema.Layout) has one durable
// per partition stream. The calls of h stay serial (a mutex), in delivery
// order within each stream, so a handler written for Run needs no change;
// partitions interleave. A worker that could not start stops the others:
// it returns once every worker has stopped, with the errors of those that
// could not start.
func RunStreams(ctx context.Context, js jetstream.JetStream, cfg Config, streams []string, h Handler) error {
	if len(streams) == 1 {
		cfg.Stream = streams[0]
		return Run(ctx, js, cfg, h)
	}
	var mu sync.Mutex
	serial := func(ctx context.Context, msg jetstream.Msg) error {
		mu.Lock()
		defer mu.Unlock()
		return h(ctx, msg)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(streams))
	var wg sync.WaitGroup
	for i, name := range streams {
		c := cfg
		c.Stream = name
		wg.Go(func() {
			if errs[i] = Run(ctx, js, c, serial); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
