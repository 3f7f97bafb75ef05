// Command natter-bench is Natter's load generator. It drives any running
// Natter (one process or several gateways) through the Go client and
// reports throughput, latency percentiles (HdrHistogram) and, when the
// server runs on this machine, its memory and CPU.
//
//	natter-bench conns    --url ws://127.0.0.1:8080/v1/ws --data ./data -n 19000 --procs 2 --server-pid $(pgrep -n natter)
//	natter-bench p2p      --pairs 500 --rate 10000 --duration 30s
//	natter-bench fanout   --members 5000 --rate 40 --duration 20s
//	natter-bench sync     --clients 1000 --missed 100
//	natter-bench presence -n 5000 --nats-url "$(cat data/nats.url)"
//
// Every scenario is bounded: it stops by itself after --duration (plus a
// bounded drain) and prints a table, or one JSON object with --json.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "natter-bench:", err)
		os.Exit(1)
	}
}

const usage = `usage: natter-bench <conns|p2p|fanout|sync|presence> [flags]
  conns     open N authenticated idle connections, hold them, report server RSS per connection
  p2p       P pairs at an aggregate rate R msg/s: delivered msg/s, send→ack and send→deliver latency
  fanout    one group of M connected members, R msg/s into it: deliveries/s and latency
  sync      K clients offline while X messages are sent, then all reconnect at once: time to catch up
  presence  N connected users: presence KV writes/s and server CPU
Run natter-bench <scenario> -h for the flags.`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errors.New("no scenario")
	}
	scenarios := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"conns":    runConns,
		"p2p":      runP2P,
		"fanout":   runFanout,
		"sync":     runSync,
		"presence": runPresence,
	}
	fn, ok := scenarios[args[0]]
	if !ok {
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("unknown scenario %q", args[0])
	}
	return fn(ctx, args[1:], stdout, stderr)
}
