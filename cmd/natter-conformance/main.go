// Command natter-conformance checks a client of Natter's protocol v1
// against the machine-readable spec (protocol/spec): every frame the client
// sends and receives is validated against its schema, every reply against
// the per-request table (reply type, error codes), and replies must come
// in request order.
//
//	natter-conformance run -- ./my-sdk-tests      # a fresh natter, a recording proxy, your command
//	natter-conformance run --upstream ws://host:8080/v1/ws --jwt-secret "$S" -- ./my-sdk-tests
//	natter-conformance check traffic.jsonl        # a log your client recorded
//
// run starts a natter in-process (embedded NATS in a temporary directory)
// unless --upstream names one, and a WebSocket proxy in front of it that
// sees every frame in wire order. It runs the command with
// NATTER_WS_URL (the proxy's ws:// URL) and NATTER_TOKEN_ALICE,
// NATTER_TOKEN_BOB and NATTER_TOKEN_CAROL (tokens valid one hour) in its
// environment, then prints what broke the spec, per connection, and the
// request and frame types the command exercised. It exits 1 when the
// command failed or anything broke the spec.
//
// check reads JSON lines {"conn":"c1","dir":"sent"|"recv","frame":{...}}
// ("conn" optional, one checker per value; "frame" may also be a JSON
// string holding the frame's text) and checks them the same way.
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
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errNonConformant) {
			fmt.Fprintln(os.Stderr, "natter-conformance:", err)
		}
		os.Exit(1)
	}
}

var errNonConformant = errors.New("the traffic breaks the spec")

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: natter-conformance run [flags] -- command [args] | natter-conformance check file.jsonl|-")
	}
	switch args[0] {
	case "run":
		return runCommand(ctx, args[1:], stdout, stderr)
	case "check":
		if len(args) != 2 {
			return errors.New("usage: natter-conformance check file.jsonl|-")
		}
		in := stdin
		if args[1] != "-" {
			f, err := os.Open(args[1])
			if err != nil {
				return err
			}
			defer f.Close()
			in = f
		}
		return checkLog(in, stdout)
	}
	return fmt.Errorf("unknown subcommand %q", args[0])
}
