package history_test

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natter-chat/natter/history"
	"github.com/natter-chat/natter/nats/schema"
)

// A reconnect storm: many clients sync the same conversation from the same
// seq at once. They share reads of the stream instead of each doing its
// own, and each gets the page a read of its own would give.
func TestReaderSharesConcurrentAfter(t *testing.T) {
	e := newEnv(t)
	var texts100 []string
	for i := range 120 {
		texts100 = append(texts100, itoa(uint64(i)))
	}
	seqs := e.say("c", texts100...)
	w := run(t, history.NewWriter(history.WriterConfig{}, e.js, e.store))
	e.waitFloor(seqs[len(seqs)-1])
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	r := e.reader()
	nc := e.js.Conn()
	var gets atomic.Int64
	sub, err := nc.Subscribe(schema.DirectGetAPI(schema.StreamChat), func(*nats.Msg) { gets.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	counted := func() int64 {
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		for n := gets.Load(); ; n = gets.Load() {
			time.Sleep(50 * time.Millisecond)
			if gets.Load() == n {
				return n
			}
		}
	}
	after := seqs[19]
	want, wantMore, err := r.After(ctxT(t), "c", after, 100)
	if err != nil || len(want) != 100 || wantMore {
		t.Fatalf("After: %d rows, more %v, %v", len(want), wantMore, err)
	}
	one := counted()
	if one == 0 {
		t.Fatal("a sync made no direct get: the count sees nothing")
	}

	const callers = 64
	gets.Store(0)
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, callers)
	for range callers {
		wg.Go(func() {
			<-start
			page, more, err := r.After(ctxT(t), "c", after, 100)
			switch {
			case err != nil:
				errs <- err.Error()
			case more != wantMore || !slices.Equal(texts(page), texts(want)) || page[0].Prev != want[0].Prev:
				errs <- "a shared page differs from a read of its own"
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Each caller reading for itself makes callers × one gets; sharing
	// makes a few reads' worth (the one in progress when a caller asks,
	// and the next).
	if got := counted(); got > 8*one {
		t.Fatalf("%d concurrent syncs made %d direct gets, one alone makes %d: reads are not shared", callers, got, one)
	}
}

// A caller never takes the answer of a read that began before it asked:
// that read may have missed a message the caller saw acknowledged.
func TestReaderAfterSharesNoEarlierRead(t *testing.T) {
	e := newEnv(t)
	e.say("c", "a")
	r := e.reader()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	history.SetAfterHook(r, func() {
		once.Do(func() {
			close(entered)
			<-release
		})
	})
	first := make(chan []string, 1)
	go func() {
		page, _, err := r.After(ctxT(t), "c", 0, 50)
		if err != nil {
			t.Error(err)
		}
		first <- texts(page)
	}()
	<-entered // the first read is done and not yet handed out
	e.say("c", "b")
	second := make(chan []string, 1)
	go func() {
		page, _, err := r.After(ctxT(t), "c", 0, 50)
		if err != nil {
			t.Error(err)
		}
		second <- texts(page)
	}()
	time.Sleep(100 * time.Millisecond) // the second caller is waiting
	close(release)
	if got := <-first; !slices.Equal(got, []string{"1:a"}) {
		t.Fatalf("first read: %v", got)
	}
	if got := <-second; !slices.Equal(got, []string{"1:a", "2:b"}) {
		t.Fatalf("a sync asked after b was acknowledged read %v", got)
	}
}
