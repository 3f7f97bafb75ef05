package pinned_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natsrv"
	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/pinned"
)

const (
	stream   = "T"
	consumer = "work"
	group    = "g"
)

// setup starts a server with a stream and a consumer on it, pinned with
// pinnedTTL unless policy says otherwise.
func setup(t *testing.T, policy jetstream.PriorityPolicy, pinnedTTL time.Duration) jetstream.JetStream {
	t.Helper()
	_, js := setupServer(t, policy, pinnedTTL)
	return js
}

// setupServer is setup that also returns the server, for more connections.
func setupServer(t *testing.T, policy jetstream.PriorityPolicy, pinnedTTL time.Duration) (*natsrv.Server, jetstream.JetStream) {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	cc := jetstream.ConsumerConfig{Durable: consumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second}
	if policy == jetstream.PriorityPolicyPinned {
		cc.PriorityPolicy = policy
		cc.PriorityGroups = []string{group}
		cc.PinnedTTL = pinnedTTL
	}
	if _, err := js.CreateConsumer(ctx, stream, cc); err != nil {
		t.Fatal(err)
	}
	return srv, js
}

func publish(t *testing.T, js jetstream.JetStream, from, to int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := from; i < to; i++ {
		// Two subjects, so order across subjects is checked too.
		if _, err := js.Publish(ctx, fmt.Sprintf("t.%d", i%2), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// journal records which worker handled which message, in handling order.
type journal struct {
	mu   sync.Mutex
	got  map[string][]int
	more chan struct{}
}

func newJournal() *journal { return &journal{got: map[string][]int{}, more: make(chan struct{}, 1)} }

func (l *journal) handler(worker string) pinned.Handler {
	return func(_ context.Context, msg jetstream.Msg) error {
		n, _ := strconv.Atoi(string(msg.Data()))
		l.mu.Lock()
		l.got[worker] = append(l.got[worker], n)
		l.mu.Unlock()
		_ = msg.Ack()
		select {
		case l.more <- struct{}{}:
		default:
		}
		return nil
	}
}

func (l *journal) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, g := range l.got {
		n += len(g)
	}
	return n
}

func (l *journal) waitTotal(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for l.total() < n {
		select {
		case <-l.more:
		case <-deadline:
			t.Fatalf("handled %d messages, want %d: %v", l.total(), n, l.snapshot())
		}
	}
}

func (l *journal) snapshot() map[string][]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[string][]int{}
	for k, v := range l.got {
		m[k] = append([]int(nil), v...)
	}
	return m
}

// worker runs pinned.Run until the returned stop is called; stop waits
// for Run to return and reports its error.
func worker(js jetstream.JetStream, h pinned.Handler) (stop func() error) {
	return workerWith(js, pinned.Config{InOrder: true}, h)
}

func workerWith(js jetstream.JetStream, cfg pinned.Config, h pinned.Handler) (stop func() error) {
	cfg.Stream, cfg.Consumer, cfg.Group = stream, consumer, group
	if cfg.MaxMessages == 0 {
		cfg.MaxMessages = 8
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pinned.Run(ctx, js, cfg, h) }()
	return func() error { cancel(); return <-done }
}

func inOrder(t *testing.T, got []int, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Fatalf("got %d messages %v, want %d..%d", len(got), got, from, to-1)
	}
	for i, n := range got {
		if n != from+i {
			t.Fatalf("message %d is %d, want %d: %v", i, n, from+i, got)
		}
	}
}

func TestOneWorkerAtATimeInOrder(t *testing.T) {
	// The TTL of the schema's consumers: the pin stays put while the
	// pinned worker pulls.
	js := setup(t, jetstream.PriorityPolicyPinned, 5*time.Second)
	l := newJournal()
	stopA := worker(js, l.handler("a"))
	stopB := worker(js, l.handler("b"))
	defer stopB()
	defer stopA()
	publish(t, js, 0, 200)
	l.waitTotal(t, 200, 20*time.Second)
	got := l.snapshot()
	if len(got) != 1 {
		t.Fatalf("messages went to %d workers, want one: %v", len(got), got)
	}
	for _, g := range got {
		inOrder(t, g, 0, 200)
	}
}

func TestStandbyTakesOver(t *testing.T) {
	// A short TTL, so the standby takes over within the test's time.
	js := setup(t, jetstream.PriorityPolicyPinned, time.Second)
	l := newJournal()
	stopA := worker(js, l.handler("a"))
	publish(t, js, 0, 10)
	l.waitTotal(t, 10, 10*time.Second)
	// B starts once A holds the pin, so A is the pinned one.
	stopB := worker(js, l.handler("b"))
	defer stopB()
	if err := stopA(); err != nil {
		t.Fatalf("Run returned %v after its context ended", err)
	}
	publish(t, js, 10, 30)
	// The pin moves once the server has heard nothing from A for the
	// consumer's PinnedTTL.
	l.waitTotal(t, 30, 20*time.Second)
	got := l.snapshot()
	inOrder(t, got["a"], 0, 10)
	inOrder(t, got["b"], 10, 30)
}

func TestRefusesAConsumerThatIsNotPinned(t *testing.T) {
	js := setup(t, jetstream.PriorityPolicyNone, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := pinned.Run(ctx, js, pinned.Config{Stream: stream, Consumer: consumer, Group: group}, func(context.Context, jetstream.Msg) error { return nil })
	if !errors.Is(err, pinned.ErrNotPinned) {
		t.Fatalf("Run on an unpinned consumer returned %v, want ErrNotPinned", err)
	}
}

func TestConfigIsChecked(t *testing.T) {
	for _, c := range []pinned.Config{
		{Consumer: consumer, Group: group},
		{Stream: stream, Group: group},
		{Stream: stream, Consumer: consumer},
	} {
		err := pinned.Run(context.Background(), nil, c, nil)
		if !errors.Is(err, pinned.ErrConfig) {
			t.Errorf("Run(%+v) returned %v, want ErrConfig", c, err)
		}
	}
}

// A message the handler fails is tried again before any later one, for
// longer than PinnedTTL: the worker keeps its pin meanwhile, so the
// standby gets nothing.
func TestFailedMessageIsRetriedInPlace(t *testing.T) {
	js := setup(t, jetstream.PriorityPolicyPinned, time.Second)
	l := newJournal()
	var mu sync.Mutex
	var failingSince time.Time
	tries := 0
	ok := l.handler("a")
	stopA := worker(js, func(ctx context.Context, msg jetstream.Msg) error {
		if string(msg.Data()) == "5" {
			mu.Lock()
			tries++
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			failing := time.Since(failingSince) < 2500*time.Millisecond
			mu.Unlock()
			if failing {
				return errors.New("not yet")
			}
		}
		return ok(ctx, msg)
	})
	defer stopA()
	publish(t, js, 0, 1)
	l.waitTotal(t, 1, 10*time.Second)
	stopB := worker(js, l.handler("b"))
	defer stopB()
	publish(t, js, 1, 20)
	l.waitTotal(t, 20, 20*time.Second)
	got := l.snapshot()
	if len(got["b"]) != 0 {
		t.Fatalf("the standby got %v while the pinned worker retried", got["b"])
	}
	inOrder(t, got["a"], 0, 20)
	mu.Lock()
	defer mu.Unlock()
	if tries < 3 {
		t.Fatalf("message 5 was tried %d times", tries)
	}
}

// A stopping worker hands over what it read ahead but did not handle:
// the standby takes over at once, long before PinnedTTL, and the two
// together handle every message once, in stream order.
func TestHandOverInOrder(t *testing.T) {
	js := setup(t, jetstream.PriorityPolicyPinned, 5*time.Second)
	l := newJournal()
	ok := l.handler("a")
	slow := func(ctx context.Context, msg jetstream.Msg) error {
		time.Sleep(5 * time.Millisecond)
		return ok(ctx, msg)
	}
	stopA := workerWith(js, pinned.Config{InOrder: true, MaxMessages: 32}, slow)
	publish(t, js, 0, 1)
	l.waitTotal(t, 1, 10*time.Second)
	stopB := worker(js, l.handler("b"))
	defer stopB()
	publish(t, js, 1, 300)
	l.waitTotal(t, 40, 20*time.Second)
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	l.mu.Lock()
	handledByA := len(l.got["a"])
	l.mu.Unlock()
	if handledByA >= 300 {
		t.Fatal("the first worker handled everything before it stopped")
	}
	l.waitTotal(t, handledByA+1, 3*time.Second)
	if took := time.Since(stopped); took > 1500*time.Millisecond {
		t.Errorf("the standby took over after %v, want about a second at most", took)
	}
	l.waitTotal(t, 300, 20*time.Second)
	time.Sleep(200 * time.Millisecond) // room for a duplicate to show
	got := l.snapshot()
	inOrder(t, append(got["a"], got["b"]...), 0, 300)
}

// Without InOrder, what a stopping worker read ahead is nak'd, so it
// comes back at once rather than after AckWait (30 s here).
func TestHandOverNaksWhatWasReadAhead(t *testing.T) {
	js := setup(t, jetstream.PriorityPolicyPinned, 5*time.Second)
	l := newJournal()
	ok := l.handler("a")
	slow := func(ctx context.Context, msg jetstream.Msg) error {
		time.Sleep(5 * time.Millisecond)
		return ok(ctx, msg)
	}
	stopA := workerWith(js, pinned.Config{MaxMessages: 32}, slow)
	publish(t, js, 0, 1)
	l.waitTotal(t, 1, 10*time.Second)
	stopB := workerWith(js, pinned.Config{MaxMessages: 32}, l.handler("b"))
	defer stopB()
	publish(t, js, 1, 200)
	l.waitTotal(t, 20, 20*time.Second)
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	l.waitTotal(t, 200, 5*time.Second)
	seen := map[int]bool{}
	for _, g := range l.snapshot() {
		for _, n := range g {
			seen[n] = true
		}
	}
	if len(seen) != 200 {
		t.Fatalf("handled %d distinct messages, want 200", len(seen))
	}
}

// A worker whose connection dies in the middle of a batch hands nothing
// over; the standby that gets the pin after PinnedTTL rewinds to the ack
// floor first, so what the dead one had pulled comes next, in order,
// rather than after AckWait (30 s here) behind newer messages.
func TestTakeOverFromAKilledWorker(t *testing.T) {
	srv, js := setupServer(t, jetstream.PriorityPolicyPinned, time.Second)
	ncA, jsA := natstest.Connect(t, srv)
	l := newJournal()
	ok := l.handler("a")
	var killed atomic.Bool
	slow := func(ctx context.Context, msg jetstream.Msg) error {
		time.Sleep(5 * time.Millisecond)
		if killed.Load() {
			return errors.New("dead") // a killed process handles nothing more
		}
		return ok(ctx, msg)
	}
	stopA := workerWith(jsA, pinned.Config{InOrder: true, MaxMessages: 32}, slow)
	defer stopA()
	publish(t, js, 0, 1)
	l.waitTotal(t, 1, 10*time.Second)
	stopB := worker(js, l.handler("b"))
	defer stopB()
	publish(t, js, 1, 300)
	l.waitTotal(t, 40, 20*time.Second)
	killed.Store(true)
	ncA.Close() // no hand-over: acks and the unpin cannot reach the server
	l.waitTotal(t, 300, 15*time.Second)
	time.Sleep(200 * time.Millisecond)
	got := l.snapshot()
	a, b := got["a"], got["b"]
	inOrder(t, a, 0, len(a))
	if len(b) == 0 || b[0] > len(a) {
		t.Fatalf("the standby started at %v after the killed worker handled 0..%d", b[:min(len(b), 1)], len(a)-1)
	}
	// The message whose ack was cut off may come twice; nothing else.
	inOrder(t, b, b[0], 300)
}

// warnings is a slog handler that keeps the messages of WARN and above.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	w.msgs = append(w.msgs, r.Message)
	w.mu.Unlock()
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

// TestCleanHandOverOnAFilteredConsumer: the fan-out's consumers are
// filtered on one partition, so the stream sequences they see have gaps
// (other partitions' messages). A worker that takes the pin after a
// clean hand-over must see that nothing is outstanding and go on, not
// warn that its predecessor died and rewind (it did on every pin take
// when continuity was judged by the stream sequence).
func TestCleanHandOverOnAFilteredConsumer(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable: consumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, FilterSubject: "t.0",
		PriorityPolicy: jetstream.PriorityPolicyPinned, PriorityGroups: []string{group}, PinnedTTL: 5 * time.Second,
	}); err != nil {
		t.Fatal(err)
	}
	l := newJournal()
	var warnA, warnB warnings
	stopA := workerWith(js, pinned.Config{InOrder: true, Logger: slog.New(&warnA)}, l.handler("a"))
	publish(t, js, 0, 100) // 50 on t.0, between 50 on t.1
	l.waitTotal(t, 50, 10*time.Second)
	stopB := workerWith(js, pinned.Config{InOrder: true, Logger: slog.New(&warnB)}, l.handler("b"))
	defer stopB()
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	publish(t, js, 100, 200)
	l.waitTotal(t, 100, 10*time.Second)
	time.Sleep(200 * time.Millisecond) // room for a duplicate to show
	got := l.snapshot()
	if len(got["b"]) == 0 {
		t.Fatalf("the standby handled nothing after the hand-over: %v", got)
	}
	var evens []int
	for _, n := range append(got["a"], got["b"]...) {
		evens = append(evens, n/2)
	}
	inOrder(t, evens, 0, 100)
	warnB.mu.Lock()
	defer warnB.mu.Unlock()
	if len(warnB.msgs) != 0 {
		t.Errorf("after a clean hand-over the new worker warned: %q", warnB.msgs)
	}
}
