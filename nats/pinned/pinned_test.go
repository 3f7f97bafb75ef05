package pinned_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
	_, js := natstest.Connect(t, natstest.Start(t))
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
	return js
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
	return func(_ context.Context, msg jetstream.Msg) {
		n, _ := strconv.Atoi(string(msg.Data()))
		l.mu.Lock()
		l.got[worker] = append(l.got[worker], n)
		l.mu.Unlock()
		_ = msg.Ack()
		select {
		case l.more <- struct{}{}:
		default:
		}
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- pinned.Run(ctx, js, pinned.Config{Stream: stream, Consumer: consumer, Group: group, MaxMessages: 8}, h)
	}()
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
	err := pinned.Run(ctx, js, pinned.Config{Stream: stream, Consumer: consumer, Group: group}, func(context.Context, jetstream.Msg) {})
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
