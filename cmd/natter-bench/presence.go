package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-chat/natter/nats/schema"
)

func runPresence(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("presence", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	finish := c.register(fs, 30*time.Second)
	n := fs.Int("n", 5000, "users to connect (one connection each)")
	natsURL := fs.String("nats-url", "", "NATS URL with credentials, to count the presence bucket's writes (default: <data>/nats.url)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return err
	}
	if *natsURL == "" && c.data != "" {
		b, err := os.ReadFile(filepath.Join(c.data, "nats.url"))
		if err != nil {
			return fmt.Errorf("no --nats-url: %w", err)
		}
		*natsURL = strings.TrimSpace(string(b))
	}
	if *natsURL == "" {
		return fmt.Errorf("presence needs --nats-url or --data to count KV writes")
	}
	nc, err := nats.Connect(*natsURL, nats.Name("natter-bench"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	writes := func() uint64 {
		st, err := js.Stream(ctx, schema.KVStream(schema.BucketPresence))
		if err != nil {
			return 0
		}
		return st.CachedInfo().State.LastSeq
	}
	c.eventBuffer = 64
	res := newResult("presence")
	res.Params["n"], res.Params["duration"] = *n, c.duration.String()
	res.Params["load_avg_start"] = loadAvg()
	users := make([]string, *n)
	for i := range users {
		users[i] = c.user("p", i)
	}
	c.setupClients(*n)
	p := &progress{name: "presence", start: time.Now()}
	pctx, pstop := context.WithCancel(ctx)
	defer pstop()
	w0 := writes()
	p.extra = func() string { return fmt.Sprintf("kv_writes=%d", writes()-w0) }
	go p.run(pctx, stderr)

	phase := func(name string, fn func()) {
		cpu0, wr0, t0 := readProcs(c.serverPIDs), writes(), time.Now()
		fn()
		el := time.Since(t0)
		cpu1, wr1 := readProcs(c.serverPIDs), writes()
		res.set(name+"_s", el.Seconds())
		res.set(name+"_kv_writes", wr1-wr0)
		res.set(name+"_kv_writes_per_s", float64(wr1-wr0)/el.Seconds())
		if cpu0.ok && cpu1.ok {
			res.set(name+"_server_cpu_cores", (cpu1.cpu-cpu0.cpu).Seconds()/el.Seconds())
			res.set(name+"_server_cpu_us_per_user", float64((cpu1.cpu-cpu0.cpu).Microseconds())/float64(*n))
		}
	}
	var conns []interface{ Close() error }
	phase("connect", func() {
		cs, failed, err := c.dialAll(ctx, users, p, nil)
		if failed > 0 {
			res.set("connect_failures", failed)
			res.set("first_error", err.Error())
		}
		for _, cl := range cs {
			if cl != nil {
				conns = append(conns, cl)
			}
		}
	})
	phase("hold", func() { sleepCtx(ctx, c.duration) })
	phase("disconnect", func() {
		for _, cl := range conns {
			_ = cl.Close()
		}
		time.Sleep(time.Second) // the server notices the closes
	})
	pstop()
	res.set("load_avg_end", loadAvg())
	return res.print(stdout, c.jsonOut)
}
