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

func runFanout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	finish := c.register(fs, 20*time.Second)
	members := fs.Int("members", 5000, "members of the group, all connected (the sender is one of them)")
	rate := fs.Float64("rate", 40, "messages per second into the group")
	senders := fs.Int("senders", 1, "members that send, sharing the rate")
	size := fs.Int("size", 100, "message body bytes")
	warmup := fs.Duration("warmup", 2*time.Second, "first part of the run left out of the latency figures")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return err
	}
	if *senders < 1 || *senders > *members {
		return fmt.Errorf("--senders must be 1…%d", *members)
	}
	c.eventBuffer = 1024
	res := newResult("fanout")
	res.Params["members"], res.Params["rate"], res.Params["senders"], res.Params["size"], res.Params["duration"] = *members, *rate, *senders, *size, c.duration.String()
	res.Params["load_avg_start"] = loadAvg()

	users := make([]string, *members)
	for i := range users {
		users[i] = c.user("m", i)
	}
	c.setupClients(len(users))
	p := &progress{name: "fanout", start: time.Now()}
	pctx, pstop := context.WithCancel(ctx)
	defer pstop()
	go p.run(pctx, stderr)

	// The owner creates the group before the others connect, so they do
	// not each get a push per member added.
	owner, err := c.dial(ctx, 0, users[0])
	if err != nil {
		return err
	}
	setupStart := time.Now()
	conv, err := owner.CreateGroup(ctx, "bench", users[1:]...)
	if err != nil {
		owner.Close()
		return fmt.Errorf("create the group: %w", err)
	}
	fmt.Fprintf(stderr, "group %s of %d members created in %s\n", conv.Conv, *members, time.Since(setupStart).Round(time.Millisecond))
	p.connected.Add(1)
	rest, failed, err := c.dialAll(ctx, users[1:], p, nil)
	conns := append([]*client.Client{owner}, rest...)
	defer closeAll(conns)
	if failed > 0 {
		return fmt.Errorf("%d of %d connections failed: %w", failed, len(users), err)
	}

	lr := &loadRun{p: p, ack: newLatency(), deliver: newLatency()}
	// Every receiver must see each seq once: count per connection.
	perConn := make([]atomic.Int64, len(conns))
	var recv sync.WaitGroup
	for i, cl := range conns {
		recv.Add(1)
		go func() { defer recv.Done(); lr.receive(cl, func(uint64) { perConn[i].Add(1) }) }()
	}
	interval := time.Duration(float64(time.Second) * float64(*senders) / *rate)
	start := time.Now().Add(100 * time.Millisecond)
	lr.measureAt = start.Add(*warmup)
	lr.stopAt = start.Add(*warmup + c.duration)
	for i := 0; i < *senders; i++ {
		s := &sender{cl: conns[i], conv: conv.Conv, interval: interval, size: *size,
			phase: time.Duration(i) * interval / time.Duration(*senders), inflight: make(chan struct{}, 64)}
		lr.wg.Add(1)
		go lr.send(ctx, s, start)
	}
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
	// Each acked message is due to every member but its sender.
	want := func() int64 { return p.acked.Load() * int64(*members-1) }
	lr.drain(want, 30*time.Second)
	drained := time.Since(lr.stopAt)
	pstop()
	closeAll(conns)
	recv.Wait()

	// A member that does not send is due every acked message once.
	var short, extra int64
	for i := *senders; i < len(conns); i++ {
		due, got := p.acked.Load(), perConn[i].Load()
		if got < due {
			short += due - got
		} else {
			extra += got - due
		}
	}
	res.set("sent", p.sent.Load())
	res.set("acked", p.acked.Load())
	res.set("deliveries_expected", want())
	res.set("delivered", p.delivered.Load())
	res.set("missing_deliveries", want()-p.delivered.Load())
	res.set("receivers_short", short)
	res.set("receivers_extra", extra)
	res.set("errors", p.errors.Load())
	res.set("delivered_pushes", lr.receipts.Load())
	res.set("deliveries_per_s", float64(del1-del0)/window.Seconds())
	res.set("drain_after_stop_s", drained.Seconds())
	if cpu0.ok && cpu1.ok && del1 > del0 {
		res.set("server_cpu_us_per_delivery", float64((cpu1.cpu-cpu0.cpu).Microseconds())/float64(del1-del0))
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
