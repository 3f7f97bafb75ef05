package pushnotify

import (
	"container/list"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Clock is the time source of the Coalescer; tests inject a fake one.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d and returns a function
	// that cancels the call, reporting whether it did (time.AfterFunc).
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock is the Clock of package time.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Message is what the dispatcher hands the Coalescer: one new message for
// one offline recipient.
type Message struct {
	User      string // the recipient
	Conv      string // the conversation
	ConvTitle string // the group's title; empty for direct conversations
	Sender    string // who wrote it, as shown to the recipient
	Text      string // the message text; never shown when the push is private
	Seq       uint64 // the message's seq
	// Request marks the one notification of a new message request: it
	// says so, and never carries text.
	Request bool
}

// Batch is what a closed window yields: the messages of one conversation
// for one recipient, merged.
type Batch struct {
	User, Conv, ConvTitle string
	// FirstSeq and LastSeq are the seqs of the oldest and newest message.
	FirstSeq, LastSeq uint64
	// Count is the number of messages merged.
	Count int
	// Last is the newest message.
	Last Message
	// Opened is when the first message arrived.
	Opened time.Time
}

func (b *Batch) merge(m Message) {
	b.Count++
	b.FirstSeq = min(b.FirstSeq, m.Seq)
	if m.Seq >= b.LastSeq {
		b.LastSeq = m.Seq
		b.Last = m
		if m.ConvTitle != "" {
			b.ConvTitle = m.ConvTitle
		}
	}
}

// Notification builds the notification of b for one device. A single
// message shows its text (prefixed by the sender in groups) unless private
// is set; several show "3 new messages in Team". The collapse id is the
// conversation, so a newer summary replaces an older one on the device.
func (b *Batch) Notification(platform, token string, private bool) *Notification {
	title := b.ConvTitle
	if title == "" {
		title = b.Last.Sender
	}
	var body string
	switch {
	case b.Count > 1 && b.ConvTitle != "":
		body = fmt.Sprintf("%d new messages in %s", b.Count, b.ConvTitle)
	case b.Count > 1:
		body = fmt.Sprintf("%d new messages", b.Count)
	case b.Last.Request:
		body = "New message request"
	case private || b.Last.Text == "":
		body = "New message"
	case b.ConvTitle != "" && b.Last.Sender != "":
		body = b.Last.Sender + ": " + b.Last.Text
	default:
		body = b.Last.Text
	}
	return &Notification{
		Platform:   platform,
		Token:      token,
		Title:      title,
		Body:       body,
		Conv:       b.Conv,
		Seq:        b.LastSeq,
		Count:      b.Count,
		CollapseID: b.Conv,
		Data: map[string]string{
			"conv":  b.Conv,
			"seq":   fmt.Sprint(b.LastSeq),
			"count": fmt.Sprint(b.Count),
		},
		Private: private,
	}
}

// CoalescerConfig configures a Coalescer.
type CoalescerConfig struct {
	// Window is how long the first message of a (user, conversation) waits
	// for others to join it (default 2 s).
	Window time.Duration
	// MaxOpen caps the open windows (default 10,000). When it is reached the
	// oldest window is flushed early: less merging, never a lost message.
	MaxOpen int
	// Flush receives every batch (required). It is called from timer
	// goroutines, from Add when a window is flushed early and from Stop,
	// possibly concurrently, and never with a lock held; it should hand the
	// batch on quickly.
	Flush func(Batch)
	// Clock defaults to SystemClock.
	Clock Clock
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Coalescer merges the messages of a conversation for a recipient that
// arrive within a window into one Batch. Memory is bounded by MaxOpen. It
// starts no goroutine of its own: windows are timers.
type Coalescer struct {
	cfg CoalescerConfig

	mu       sync.Mutex
	open     map[windowKey]*window
	order    *list.List // of *window, oldest first
	stopped  bool
	inflight sync.WaitGroup // Flush calls under way
}

type windowKey struct{ user, conv string }

type window struct {
	key   windowKey
	batch Batch
	stop  func() bool
	elem  *list.Element
}

// NewCoalescer returns a Coalescer; call Stop when done with it.
func NewCoalescer(cfg CoalescerConfig) (*Coalescer, error) {
	if cfg.Flush == nil {
		return nil, errors.New("pushnotify: CoalescerConfig.Flush is required")
	}
	if cfg.Window <= 0 {
		cfg.Window = 2 * time.Second
	}
	if cfg.MaxOpen <= 0 {
		cfg.MaxOpen = 10_000
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Coalescer{cfg: cfg, open: make(map[windowKey]*window), order: list.New()}, nil
}

// Add adds m to its (user, conversation) window, opening one if needed. It
// returns ErrStopped after Stop.
func (c *Coalescer) Add(m Message) error {
	k := windowKey{m.User, m.Conv}
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return ErrStopped
	}
	if w, ok := c.open[k]; ok {
		w.batch.merge(m)
		c.mu.Unlock()
		return nil
	}
	var evicted *window
	if len(c.open) >= c.cfg.MaxOpen {
		evicted = c.order.Front().Value.(*window)
		c.remove(evicted)
		c.inflight.Add(1)
	}
	w := &window{key: k, batch: Batch{
		User: m.User, Conv: m.Conv, ConvTitle: m.ConvTitle,
		FirstSeq: m.Seq, LastSeq: m.Seq, Count: 1, Last: m,
		Opened: c.cfg.Clock.Now(),
	}}
	w.elem = c.order.PushBack(w)
	c.open[k] = w
	w.stop = c.cfg.Clock.AfterFunc(c.cfg.Window, func() { c.expire(w) })
	c.mu.Unlock()

	if evicted != nil {
		c.cfg.Logger.Debug("Coalescer full, flushing the oldest window early.",
			"user", evicted.key.user, "conv", evicted.key.conv, "max_open", c.cfg.MaxOpen)
		c.flush(evicted)
	}
	return nil
}

// Open returns the number of open windows.
func (c *Coalescer) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.open)
}

// Stop flushes every open window, waits for Flush calls under way and
// leaves no timer behind. Later Adds return ErrStopped. It is idempotent.
func (c *Coalescer) Stop() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		c.inflight.Wait()
		return
	}
	c.stopped = true
	pending := make([]*window, 0, len(c.open))
	for e := c.order.Front(); e != nil; e = e.Next() {
		pending = append(pending, e.Value.(*window))
	}
	for _, w := range pending {
		c.remove(w)
	}
	c.inflight.Add(len(pending))
	c.mu.Unlock()

	for _, w := range pending {
		c.flush(w)
	}
	c.inflight.Wait()
}

// expire runs when a window's timer fires.
func (c *Coalescer) expire(w *window) {
	c.mu.Lock()
	if c.stopped || c.open[w.key] != w {
		c.mu.Unlock() // flushed early or by Stop
		return
	}
	c.remove(w)
	c.inflight.Add(1)
	c.mu.Unlock()
	c.flush(w)
}

// remove forgets w and cancels its timer; c.mu must be held.
func (c *Coalescer) remove(w *window) {
	delete(c.open, w.key)
	c.order.Remove(w.elem)
	if w.stop != nil {
		w.stop()
	}
}

// flush hands w's batch to cfg.Flush; the caller did c.inflight.Add(1).
func (c *Coalescer) flush(w *window) {
	defer c.inflight.Done()
	c.cfg.Flush(w.batch)
}
