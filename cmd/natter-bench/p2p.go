package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natter-chat/natter/client"
)

// sender paces one connection's sends at a fixed interval, open loop:
// latency is measured from when a message was due, so a stalled server
// cannot hide behind a slowed-down generator.
type sender struct {
	cl       *client.Client
	conv     string
	interval time.Duration
	phase    time.Duration
	size     int
	inflight chan struct{} // bounds the requests in flight on the connection
}

// loadRun is the shared state of a rate-driven scenario.
type loadRun struct {
	p         *progress
	ack       *latency
	deliver   *latency
	measureAt time.Time // latencies of messages due before it are not recorded
	stopAt    time.Time
	errOnce   sync.Once
	firstErr  error
	wg        sync.WaitGroup
	// receipts counts the delivered pushes the connections got.
	receipts atomic.Int64
}

func (lr *loadRun) fail(err error) {
	lr.p.errors.Add(1)
	lr.errOnce.Do(func() { lr.firstErr = err })
}

// send runs s until stopAt.
func (lr *loadRun) send(ctx context.Context, s *sender, start time.Time) {
	defer lr.wg.Done()
	for k := 0; ; k++ {
		due := start.Add(s.phase + time.Duration(k)*s.interval)
		if !due.Before(lr.stopAt) || ctx.Err() != nil {
			return
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		select {
		case s.inflight <- struct{}{}:
		case <-ctx.Done():
			return
		}
		lr.p.sent.Add(1)
		lr.wg.Add(1)
		go func() {
			defer lr.wg.Done()
			defer func() { <-s.inflight }()
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, err := s.cl.Send(rctx, s.conv, "", newBody(due, s.size))
			if err != nil {
				lr.fail(err)
				return
			}
			lr.p.acked.Add(1)
			if !due.Before(lr.measureAt) {
				lr.ack.record(time.Since(due))
			}
		}()
	}
}

// receive counts and times the message pushes of one connection until it
// ends. seen, if not nil, is called with each message's seq.
func (lr *loadRun) receive(cl *client.Client, seen func(seq uint64)) {
	h := newLatency()
	defer lr.deliver.merge(h)
	for ev := range cl.Events() {
		if ev.Type == "delivered" {
			lr.receipts.Add(1)
		}
		if ev.Type != "message" {
			continue
		}
		now := time.Now()
		lr.p.delivered.Add(1)
		if seen != nil {
			seen(seqOf(ev.Raw))
		}
		if t, ok := sentAt(ev.Raw); ok && !t.Before(lr.measureAt) {
			h.record(now.Sub(t))
		}
	}
}

// drain waits until want() deliveries have arrived or timeout passes.
func (lr *loadRun) drain(want func() int64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if lr.p.delivered.Load() >= want() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func runP2P(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("p2p", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	finish := c.register(fs, 20*time.Second)
	pairs := fs.Int("pairs", 500, "pairs of users, each with a direct conversation; both send")
	rate := fs.Float64("rate", 10_000, "aggregate messages per second")
	size := fs.Int("size", 100, "message body bytes")
	warmup := fs.Duration("warmup", 2*time.Second, "first part of the run left out of the latency figures")
	maxInflight := fs.Int("inflight", 32, "requests in flight per connection")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return err
	}
	c.eventBuffer = 4096
	res := newResult("p2p")
	res.Params["pairs"], res.Params["rate"], res.Params["size"], res.Params["duration"], res.Params["warmup"] = *pairs, *rate, *size, c.duration.String(), warmup.String()
	res.Params["load_avg_start"] = loadAvg()

	users := make([]string, 2**pairs)
	for i := 0; i < *pairs; i++ {
		users[2*i], users[2*i+1] = c.user("a", i), c.user("b", i)
	}
	c.setupClients(len(users))
	p := &progress{name: "p2p", start: time.Now()}
	pctx, pstop := context.WithCancel(ctx)
	defer pstop()
	go p.run(pctx, stderr)
	conns, failed, err := c.dialAll(ctx, users, p, nil)
	defer closeAll(conns)
	if failed > 0 {
		return fmt.Errorf("%d of %d connections failed: %w", failed, len(users), err)
	}
	convs := make([]string, *pairs)
	var setupErr atomic.Pointer[error]
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range convs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cv, err := conns[2*i].CreateDirect(ctx, users[2*i+1])
			if err != nil {
				setupErr.Store(&err)
				return
			}
			convs[i] = cv.Conv
		}()
	}
	wg.Wait()
	if e := setupErr.Load(); e != nil {
		return fmt.Errorf("create direct conversations: %w", *e)
	}
	// Conversation pushes of the setup are not messages; start counting now.
	lr := &loadRun{p: p, ack: newLatency(), deliver: newLatency()}
	interval := time.Duration(float64(time.Second) * float64(len(conns)) / *rate)
	start := time.Now().Add(100 * time.Millisecond)
	lr.measureAt = start.Add(*warmup)
	lr.stopAt = start.Add(*warmup + c.duration)
	var recv sync.WaitGroup
	for _, cl := range conns {
		recv.Add(1)
		go func() { defer recv.Done(); lr.receive(cl, nil) }()
	}
	for i, cl := range conns {
		s := &sender{cl: cl, conv: convs[i/2], interval: interval, size: *size,
			phase:    time.Duration(i) * interval / time.Duration(len(conns)),
			inflight: make(chan struct{}, *maxInflight)}
		lr.wg.Add(1)
		go lr.send(ctx, s, start)
	}
	// Measure the server over the measured window only.
	sleepUntil(ctx, lr.measureAt)
	cpu0 := readProcs(c.serverPIDs)
	del0 := p.delivered.Load()
	t0 := time.Now()
	sleepUntil(ctx, lr.stopAt)
	cpu1 := readProcs(c.serverPIDs)
	del1 := p.delivered.Load()
	window := time.Since(t0)
	loadEnd := loadAvg()
	lr.wg.Wait()
	lr.drain(p.acked.Load, 10*time.Second)
	pstop()
	closeAll(conns)
	recv.Wait()

	res.set("sent", p.sent.Load())
	res.set("acked", p.acked.Load())
	res.set("delivered", p.delivered.Load())
	res.set("errors", p.errors.Load())
	res.set("lost", p.acked.Load()-p.delivered.Load())
	res.set("delivered_per_s", float64(del1-del0)/window.Seconds())
	if cpu0.ok && cpu1.ok && del1 > del0 {
		res.set("server_cpu_us_per_delivered", float64((cpu1.cpu-cpu0.cpu).Microseconds())/float64(del1-del0))
		res.set("server_cpu_cores", (cpu1.cpu-cpu0.cpu).Seconds()/window.Seconds())
	}
	res.set("load_avg_end", loadEnd)
	if lr.firstErr != nil {
		res.set("first_error", lr.firstErr.Error())
	}
	res.Latency["send_to_ack"] = lr.ack.summary()
	res.Latency["send_to_deliver"] = lr.deliver.summary()
	return res.print(stdout, c.jsonOut)
}

func sleepUntil(ctx context.Context, t time.Time) { sleepCtx(ctx, time.Until(t)) }
