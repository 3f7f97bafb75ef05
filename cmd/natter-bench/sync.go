package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/protocol"
)

func runSync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	finish := c.register(fs, time.Minute)
	clients := fs.Int("clients", 1000, "clients offline while the messages are sent, then reconnecting together")
	missed := fs.Int("missed", 100, "messages each client misses")
	size := fs.Int("size", 100, "message body bytes")
	settle := fs.Duration("settle", 2*time.Second, "wait after the last ack before the reconnect: by then the history store has the messages (0: read them from the stream tail as far as the store has not caught up)")
	rounds := fs.Int("rounds", 1, "reconnect storms to run (each catches up the same messages)")
	limit := fs.Int("limit", protocol.MaxLimit, "messages per sync page")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return err
	}
	c.eventBuffer = 256
	c.dialers = max(c.dialers, *clients)
	res := newResult("sync")
	res.Params["clients"], res.Params["missed"], res.Params["settle"], res.Params["rounds"], res.Params["limit"] = *clients, *missed, settle.String(), *rounds, *limit
	res.Params["load_avg_start"] = loadAvg()

	users := make([]string, *clients)
	for i := range users {
		users[i] = c.user("s", i)
	}
	c.setupClients(*clients + 1)
	p := &progress{name: "sync", start: time.Now()}
	pctx, pstop := context.WithCancel(ctx)
	defer pstop()
	go p.run(pctx, stderr)

	w, err := c.dial(ctx, *clients, c.user("w", 0))
	if err != nil {
		return err
	}
	defer w.Close()
	conv, err := w.CreateGroup(ctx, "sync bench", users...)
	if err != nil {
		return fmt.Errorf("create the group: %w", err)
	}
	after := conv.LastSeq
	// The clients are offline: send what they will miss, pipelined.
	sendStart := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var sendErr atomic.Pointer[error]
	for i := 0; i < *missed; i++ {
		wg.Add(1)
		sem <- struct{}{}
		p.sent.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := sendPaced(ctx, w, conv.Conv, newBody(time.Now(), *size)); err != nil {
				sendErr.Store(&err)
				return
			}
			p.acked.Add(1)
		}()
	}
	wg.Wait()
	if e := sendErr.Load(); e != nil {
		return fmt.Errorf("send: %w", *e)
	}
	fmt.Fprintf(stderr, "%d messages sent in %s; settling %s\n", *missed, time.Since(sendStart).Round(time.Millisecond), *settle)
	sleepCtx(ctx, *settle)

	total := newLatency()    // storm start → caught up, per client
	syncOnly := newLatency() // first sync request → caught up, per client
	var worst time.Duration
	var short, failed int64
	for r := 0; r < *rounds; r++ {
		cpu0 := readProcs(c.serverPIDs)
		start := time.Now()
		var mu sync.Mutex
		conns := make([]*client.Client, *clients)
		var rwg sync.WaitGroup
		for i := range users {
			rwg.Add(1)
			go func() {
				defer rwg.Done()
				cl, err := c.dial(ctx, i, users[i])
				if err != nil {
					atomic.AddInt64(&failed, 1)
					p.failed.Add(1)
					return
				}
				conns[i] = cl
				p.connected.Add(1)
				t0 := time.Now()
				got, err := catchUp(ctx, cl, conv.Conv, after, *limit)
				if err != nil {
					atomic.AddInt64(&failed, 1)
					p.errors.Add(1)
					return
				}
				p.delivered.Add(int64(got))
				if got < *missed {
					atomic.AddInt64(&short, int64(*missed-got))
				}
				done := time.Now()
				total.record(done.Sub(start))
				syncOnly.record(done.Sub(t0))
				mu.Lock()
				worst = max(worst, done.Sub(start))
				mu.Unlock()
			}()
		}
		rwg.Wait()
		cpu1 := readProcs(c.serverPIDs)
		fmt.Fprintf(stderr, "round %d: %d clients caught up in %s (load %s)\n", r+1, *clients, time.Since(start).Round(time.Millisecond), loadAvg())
		if cpu0.ok && cpu1.ok {
			res.set(fmt.Sprintf("round%d_server_cpu_ms", r+1), float64((cpu1.cpu - cpu0.cpu).Milliseconds()))
		}
		closeAll(conns)
	}
	pstop()
	res.set("messages_sent", p.acked.Load())
	res.set("all_caught_up_worst_round_ms", float64(worst.Microseconds())/1000)
	res.set("messages_synced", p.delivered.Load())
	res.set("messages_short", short)
	res.set("clients_failed", failed)
	res.set("load_avg_end", loadAvg())
	res.Latency["storm_start_to_caught_up"] = total.summary()
	res.Latency["first_sync_to_caught_up"] = syncOnly.summary()
	return res.print(stdout, c.jsonOut)
}

// catchUp pages through conv after seq until the server says there is no
// more, and returns how many messages it read.
func catchUp(ctx context.Context, cl *client.Client, conv string, after uint64, limit int) (int, error) {
	n := 0
	for {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		f, err := cl.Sync(rctx, conv, after, limit)
		cancel()
		if err != nil {
			return n, err
		}
		n += len(f.Messages)
		if len(f.Messages) > 0 {
			after = f.Messages[len(f.Messages)-1].Seq
		}
		if !f.More || len(f.Messages) == 0 {
			return n, nil
		}
	}
}

// sendPaced sends one message, waiting out the server's per-connection
// rate limit (the same client_id makes a retry idempotent).
func sendPaced(ctx context.Context, cl *client.Client, conv string, body json.RawMessage) error {
	id := client.NewClientID()
	for {
		_, err := cl.Send(ctx, conv, id, body)
		var pe *protocol.Error
		if errors.As(err, &pe) && pe.Code == protocol.CodeRateLimited {
			sleepCtx(ctx, 100*time.Millisecond)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		return err
	}
}
