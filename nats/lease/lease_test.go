package lease

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/natstest"
	"github.com/natter-chat/natter/nats/schema"
)

// A renewal the bucket stored but whose answer was lost (its leader died
// after storing it) moves the lease's revision: the next renewal finds a
// wrong last sequence and must recognise the lease as its own, not stop
// the writer. A later claim of the same store (a takeover) is not its
// own; a lease that expired is taken again while free.
func TestLeaseRenewAfterLostAnswer(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	l, err := Claim(ctx, js, Config{Key: schema.LeaseHistoryWriter, Owner: "host:/data", TTL: 10 * time.Second, What: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// The lost renewal: stored, its revision never seen by the holder.
	key := schema.KVKey(schema.BucketLeases, schema.LeaseHistoryWriter)
	lostAck, err := js.Publish(ctx, key, l.value, jetstream.WithExpectLastSequencePerSubject(l.rev), jetstream.WithMsgTTL(l.cfg.TTL))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.renew(ctx); err != nil {
		t.Fatalf("renew after a renewal whose answer was lost: %v", err)
	}
	if l.rev != lostAck.Sequence {
		t.Fatalf("revision %d, want the lost renewal's %d", l.rev, lostAck.Sequence)
	}
	if err := l.renew(ctx); err != nil {
		t.Fatalf("the next renewal: %v", err)
	}

	// Expired (here: deleted) and free: lapsed, and taken again.
	if err := l.kv.Delete(ctx, schema.LeaseHistoryWriter); err != nil {
		t.Fatal(err)
	}
	if err := l.renew(ctx); !errors.Is(err, ErrLapsed) {
		t.Fatalf("renew of a deleted lease = %v, want ErrLapsed", err)
	}
	if err := l.Retake(ctx); err != nil {
		t.Fatalf("retake a free lease: %v", err)
	}
	if err := l.renew(ctx); err != nil {
		t.Fatalf("renew after retake: %v", err)
	}

	// A later run on the same store takes it over: this one lost it.
	if _, err := Claim(ctx, js, Config{Key: schema.LeaseHistoryWriter, Owner: "host:/data", TTL: 10 * time.Second, What: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := l.renew(ctx); !errors.Is(err, ErrLost) || errors.Is(err, ErrLapsed) {
		t.Fatalf("renew after a takeover = %v, want ErrLost, not lapsed", err)
	}
	if err := l.Retake(ctx); !errors.Is(err, ErrLost) || errors.Is(err, ErrLapsed) {
		t.Fatalf("retake after a takeover = %v, want ErrLost", err)
	}
}

// Work that returns its context's error, wrapped, when a lapse cancels it
// (the history writer reading the stream layout as the lease's bucket
// loses its leader) must pause and go on, not stop: Run takes the lease
// back and runs work again.
func TestRunGoesOnAfterLapseWhateverWorkReturns(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := schema.Ensure(ctx, js, schema.Config{}); err != nil {
		t.Fatal(err)
	}
	l, err := Claim(ctx, js, Config{Key: schema.LeaseHistoryWriter, Owner: "host:/data", TTL: time.Second, What: "test"})
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	err = Run(runCtx, l, func(wctx context.Context) error {
		runs++
		if runs == 1 {
			// Expired (deleted): renewals fail until Hold says lapsed.
			if err := l.kv.Delete(ctx, schema.LeaseHistoryWriter); err != nil {
				return err
			}
			<-wctx.Done()
			return fmt.Errorf("history writer: layout of CHAT: %w", wctx.Err())
		}
		stop() // the second run: the lease was taken back
		return nil
	})
	if err != nil {
		t.Fatalf("Run = %v after a lapse, want it to go on", err)
	}
	if runs != 2 {
		t.Fatalf("work ran %d times, want 2 (again after the lapse)", runs)
	}
}
